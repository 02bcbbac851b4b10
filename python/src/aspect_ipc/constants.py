"""Names and defaults fixed by spec/PROTOCOL.md."""

from __future__ import annotations

from typing import Final

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "DEFAULT_HELLO_TIMEOUT",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "ENV_DATA_PATH",
    "ENV_MAX_FRAME_SIZE",
    "ENV_NAMESPACE",
    "ENV_PREFIX",
    "ENV_PROTOCOL",
    "ENV_TOKEN",
    "ENV_WORKER_ID",
    "MAX_FRAME_SIZE_LIMIT",
    "METHOD_CANCEL",
    "METHOD_HELLO",
    "METHOD_PING",
    "METHOD_READY",
    "METHOD_SHUTDOWN",
    "PROTOCOL_VERSION",
    "RESERVED_PREFIX",
    "SDK_NAME",
    "SDK_VERSION",
]

PROTOCOL_VERSION: Final = 1
SDK_NAME: Final = "aspect-ipc-python"
SDK_VERSION: Final = "0.1.0"

DEFAULT_MAX_LINE_LENGTH: Final = 1024 * 1024
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024 * 1024
MAX_FRAME_SIZE_LIMIT: Final = 2**32 - 1
DEFAULT_HELLO_TIMEOUT: Final = 10.0

ENV_PREFIX: Final = "ASPECT_IPC_"
ENV_PROTOCOL: Final = "ASPECT_IPC_PROTOCOL"
ENV_WORKER_ID: Final = "ASPECT_IPC_WORKER_ID"
ENV_NAMESPACE: Final = "ASPECT_IPC_NAMESPACE"
ENV_DATA_PATH: Final = "ASPECT_IPC_DATA_PATH"
ENV_TOKEN: Final = "ASPECT_IPC_TOKEN"
ENV_MAX_FRAME_SIZE: Final = "ASPECT_IPC_MAX_FRAME_SIZE"

RESERVED_PREFIX: Final = "$/"
METHOD_READY: Final = "$/ready"
METHOD_HELLO: Final = "$/hello"
METHOD_SHUTDOWN: Final = "$/shutdown"
METHOD_PING: Final = "$/ping"
METHOD_CANCEL: Final = "$/cancelRequest"

# Every integer the spec carries (3.2: MessagePack's range; ids, codes) lies within these.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
