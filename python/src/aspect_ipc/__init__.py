"""aspect-ipc: spawn, supervise and talk to worker processes written in any language."""

from __future__ import annotations

# The sans-IO core: framing, codecs, JSON-RPC, paths
from .codecs import Codec, JsonCodec, MessagePackCodec
from .constants import PROTOCOL_VERSION

# Errors
from .errors import (
    AddressInUse,
    ChannelClosed,
    CodecError,
    DataChannelTimeout,
    ExecutableNotFound,
    FramingError,
    IpcError,
    ProtocolError,
    ProtocolVersionMismatch,
    RemoteError,
    RequestTimeout,
    StartupError,
    TransportError,
    Unauthorized,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerUnavailable,
)
from .framing import FrameDecoder, Framing, LengthPrefixedFraming, LineDelimitedFraming
from .jsonrpc import (
    ErrorCode,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    Notification,
    Request,
    Response,
)
from .paths import PipePath

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "AddressInUse",
    "ChannelClosed",
    "Codec",
    "CodecError",
    "DataChannelTimeout",
    "ErrorCode",
    "ErrorResponse",
    "ExecutableNotFound",
    "FrameDecoder",
    "Framing",
    "FramingError",
    "InvalidMessage",
    "IpcError",
    "JsonCodec",
    "JsonRpcProtocol",
    "LengthPrefixedFraming",
    "LineDelimitedFraming",
    "MessagePackCodec",
    "Notification",
    "PipePath",
    "ProtocolError",
    "ProtocolVersionMismatch",
    "RemoteError",
    "Request",
    "RequestTimeout",
    "Response",
    "StartupError",
    "TransportError",
    "Unauthorized",
    "WorkerCrashed",
    "WorkerExitedDuringStartup",
    "WorkerUnavailable",
]
