"""aspect-ipc: spawn, supervise and talk to worker processes written in any language."""

from __future__ import annotations

from ._compiled import compiled_core
from ._handle_streams import WorkerStream
from ._pool_streams import PoolStream

# Transports and channels
from .channel import Channel, ChannelBuilder, current_streams

# The sans-IO core: framing, codecs, JSON-RPC, paths (and the compiled core, if installed)
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
    RemoteTraceback,
    RequestTimeout,
    StartupError,
    StartupTimeout,
    TransportError,
    Unauthorized,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerHung,
    WorkerIdInUse,
    WorkerUnavailable,
)
from .framing import FrameDecoder, Framing, LengthPrefixedFraming, LineDelimitedFraming
from .frozen import freeze_support

# The process manager
from .handle import ProcessHandle
from .jsonrpc import (
    ErrorCode,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    Notification,
    Request,
    Response,
)
from .manager import ProcessManager
from .metrics import ChannelStats, ManagerStats, WorkerStats
from .option_types import ManagerOptions, MapOptions, SpawnOptions
from .options import (
    ControlChannelOptions,
    DataChannelOptions,
    EventKind,
    HealthCheck,
    ProcessEvent,
    RestartPolicy,
    WorkerState,
)
from .paths import PipePath
from .pool import WorkerPool
from .shutdown import ShutdownReason
from .transports import (
    FdTransport,
    PeerCredentials,
    PipeServer,
    SocketTransport,
    Transport,
    TransportFactory,
)

__version__ = "0.1.0"

__all__ = [
    "AddressInUse",
    "Channel",
    "ChannelBuilder",
    "ChannelClosed",
    "ChannelStats",
    "Codec",
    "CodecError",
    "ControlChannelOptions",
    "DataChannelOptions",
    "DataChannelTimeout",
    "ErrorCode",
    "ErrorResponse",
    "EventKind",
    "ExecutableNotFound",
    "FdTransport",
    "FrameDecoder",
    "Framing",
    "FramingError",
    "HealthCheck",
    "InvalidMessage",
    "IpcError",
    "JsonCodec",
    "JsonRpcProtocol",
    "LengthPrefixedFraming",
    "LineDelimitedFraming",
    "ManagerOptions",
    "ManagerStats",
    "MapOptions",
    "MessagePackCodec",
    "Notification",
    "PROTOCOL_VERSION",
    "PeerCredentials",
    "PipePath",
    "PipeServer",
    "PoolStream",
    "ProcessEvent",
    "ProcessHandle",
    "ProcessManager",
    "ProtocolError",
    "ProtocolVersionMismatch",
    "RemoteError",
    "RemoteTraceback",
    "Request",
    "RequestTimeout",
    "Response",
    "RestartPolicy",
    "ShutdownReason",
    "SocketTransport",
    "SpawnOptions",
    "StartupError",
    "StartupTimeout",
    "Transport",
    "TransportError",
    "TransportFactory",
    "Unauthorized",
    "WorkerCrashed",
    "WorkerExitedDuringStartup",
    "WorkerHung",
    "WorkerIdInUse",
    "WorkerPool",
    "WorkerState",
    "WorkerStats",
    "WorkerStream",
    "WorkerUnavailable",
    "compiled_core",
    "current_streams",
    "freeze_support",
]
