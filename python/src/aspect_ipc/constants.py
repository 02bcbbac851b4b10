"""Names and defaults fixed by spec/PROTOCOL.md."""

from __future__ import annotations

from typing import Final

__all__ = [
    "WINDOWS_PIPE_PREFIX",
    "INT_MAX",
    "INT_MIN",
    "DEFAULT_HELLO_TIMEOUT",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "ENV_DATA_PATH",
    "ENV_MAX_FRAME_SIZE",
    "ENV_MAX_LINE_LENGTH",
    "ENV_NAMESPACE",
    "ENV_PREFIX",
    "ENV_PROTOCOL",
    "ENV_TOKEN",
    "ENV_WORKER_ID",
    "MAX_DEPTH",
    "MAX_FRAME_SIZE_LIMIT",
    "MIN_SIZE_SETTING",
    "METHOD_CANCEL",
    "METHOD_HELLO",
    "METHOD_PING",
    "METHOD_READY",
    "METHOD_SHUTDOWN",
    "PRE_HELLO_MAX_FRAME_SIZE",
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
# The smallest value ASPECT_IPC_MAX_FRAME_SIZE / ASPECT_IPC_MAX_LINE_LENGTH may take (section 5).
MIN_SIZE_SETTING: Final = 1024
# Before $/hello is answered, a data connection's first frame may not declare more than this.
PRE_HELLO_MAX_FRAME_SIZE: Final = 64 * 1024
# Containers nested in a message (the message map itself is depth 1), both channels (3.3).
MAX_DEPTH: Final = 512

ENV_PREFIX: Final = "ASPECT_IPC_"
ENV_PROTOCOL: Final = "ASPECT_IPC_PROTOCOL"
ENV_WORKER_ID: Final = "ASPECT_IPC_WORKER_ID"
ENV_NAMESPACE: Final = "ASPECT_IPC_NAMESPACE"
ENV_DATA_PATH: Final = "ASPECT_IPC_DATA_PATH"
ENV_TOKEN: Final = "ASPECT_IPC_TOKEN"
ENV_MAX_FRAME_SIZE: Final = "ASPECT_IPC_MAX_FRAME_SIZE"
ENV_MAX_LINE_LENGTH: Final = "ASPECT_IPC_MAX_LINE_LENGTH"

RESERVED_PREFIX: Final = "$/"
METHOD_READY: Final = "$/ready"
METHOD_HELLO: Final = "$/hello"
METHOD_SHUTDOWN: Final = "$/shutdown"
METHOD_PING: Final = "$/ping"
METHOD_CANCEL: Final = "$/cancelRequest"

# Every integer the spec carries (3.2: MessagePack's range; ids, codes) lies within these.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

WINDOWS_PIPE_PREFIX: Final = "\\\\.\\pipe\\"
"""How a Windows named pipe's name starts: not a path (never made absolute; this SDK refuses it
on Unix)."""
