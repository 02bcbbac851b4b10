"""The single error hierarchy of aspect-ipc.

Users catch these, never ``OSError`` or anyio's stream errors: foreign exceptions are translated
at exactly one boundary, the transport.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = [
    "AddressInUse",
    "ChannelClosed",
    "CodecError",
    "DataChannelTimeout",
    "ExecutableNotFound",
    "FramingError",
    "IpcError",
    "ProtocolError",
    "ProtocolVersionMismatch",
    "RemoteError",
    "RemoteTraceback",
    "RequestTimeout",
    "SizeLimitError",
    "SizeSettingError",
    "TextSettingError",
    "StartupError",
    "StartupTimeout",
    "TransportError",
    "Unauthorized",
    "WorkerCrashed",
    "WorkerExitedDuringStartup",
    "WorkerHung",
    "WorkerIdInUse",
    "WorkerUnavailable",
]


class IpcError(Exception):
    """Base class of every error raised by aspect-ipc."""


_E = TypeVar("_E", bound=BaseException)


def fresh(error: _E) -> _E:
    """A copy of ``error``, to raise in one of several callers that share one cause.

    Raising one instance in many tasks would chain every raise's traceback onto it: all their
    frames, and the arguments they hold, would live as long as anyone keeps the error.
    """
    copy = type(error).__new__(type(error), *error.args)
    copy.__dict__.update(error.__dict__)
    return copy


class StartupError(IpcError):
    """A worker could not be started and brought to the ready state.

    Every error ``spawn`` raises for a worker that did not start derives from it (the
    ``AddressInUse``, ``Unauthorized`` and ``ProtocolVersionMismatch`` of a spawn too), with the
    last lines of the worker's stderr in its message and in ``stderr_tail``.
    """

    stderr_tail: str = ""
    """The last lines the worker wrote to stderr (empty if it wrote nothing)."""

    def __init__(self, message: str, *, stderr_tail: str = "") -> None:
        super().__init__(with_stderr(message, stderr_tail))
        self.stderr_tail = stderr_tail


def with_stderr(message: str, stderr_tail: str) -> str:
    """A start-up error's message, followed by the worker's stderr tail if there is one."""
    if not stderr_tail:
        return message
    return f"{message}\n--- last lines of the worker's stderr ---\n{stderr_tail}"


class TransportError(IpcError):
    """The byte stream underneath a channel failed (an OS error, a refused connection...)."""


class AddressInUse(TransportError, StartupError):
    """The data path is held by a live socket, or by a file that is not a socket."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path
        """The data path (socket file) that is in use."""


class FramingError(IpcError):
    """A frame or line broke the framing rules (spec sections 1 and 2).

    ``kind`` is one of ``frame_too_large``, ``empty_frame``, ``truncated``, ``line_too_long`` and
    ``invalid_line``; ``fatal`` tells whether the stream can go on after it.
    """

    def __init__(self, kind: str, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.kind = kind
        """Which rule broke: ``frame_too_large``, ``empty_frame``, ``truncated``, ``line_too_long``
        or ``invalid_line``."""
        self.fatal = fatal
        """True when the stream cannot go on after it (the connection is closed)."""


class CodecError(IpcError):
    """A value could not be encoded, or bytes could not be decoded, by a codec.

    An encoding error names the place in the message that could not be encoded, in its message
    and in :attr:`path`.
    """

    path: str | None = None
    """Where in the message the failure is, JSONPath style from the JSON-RPC message itself
    (``$.params.rows[3].when``, ``$["a b"]``); None when unknown (decoding errors)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ProtocolError(IpcError):
    """The peer broke the JSON-RPC or aspect-ipc protocol."""


class ProtocolVersionMismatch(ProtocolError, StartupError):
    """The two sides speak different protocol versions."""


class RemoteError(IpcError):
    """The peer answered a request with a JSON-RPC error object.

    Raised by a :class:`ProcessHandle`, it also names who answered: ``worker_id``, ``channel``
    (``"control"`` or ``"data"``) and ``method`` (None when raised by a bare channel), and its
    ``__cause__`` is a :class:`RemoteTraceback` when the worker sent its stack (spec 4.10), so
    that an uncaught error prints the remote stack above the local one.
    """

    worker_id: str | None = None
    """The id of the worker that answered (None from a bare channel)."""
    channel: str | None = None
    """``"control"`` or ``"data"``: the channel the request went on (None from a bare channel)."""
    method: str | None = None
    """The method of the failed request (None from a bare channel)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        """The JSON-RPC error code (spec section 12), e.g. ``-32601`` or ``-32000``."""
        self.message = message
        """The error object's message, as the peer sent it."""
        self.data = data
        """The error object's ``data`` (None if absent); for ``-32000``: ``type``, ``traceback``."""

    @property
    def remote_type(self) -> str | None:
        """The remote failure's type name (``data.type`` of a ``-32000``), if the peer sent it."""
        return _data_text(self.data, "type")

    @property
    def remote_traceback(self) -> str | None:
        """The remote stack as text, in the worker's language's format, if the peer sent it."""
        return _data_text(self.data, "traceback")


def _data_text(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class RemoteTraceback(Exception):
    """The ``__cause__`` of a :class:`RemoteError` that carries a remote stack.

    Its text is the remote traceback, set off by triple quotes as ``concurrent.futures`` does, so
    Python prints it under "The above exception was the direct cause of the following exception".
    ``traceback`` is the remote text itself.
    """

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback.rstrip(chr(10))}\n"""'


class Unauthorized(RemoteError, StartupError):
    """The worker refused the data connection (wrong token, or the peer check failed)."""


class RequestTimeout(IpcError):
    """No response arrived within the request's timeout; the peer was sent ``$/cancelRequest``."""


class ChannelClosed(IpcError):
    """The channel closed while a request was pending, or before it could be sent."""


class WorkerCrashed(ChannelClosed):
    """The worker died (non-zero exit, signal, or lost control channel) with requests pending."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        signal: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        """The worker's exit code, or None when a signal ended it."""
        self.signal = signal
        """The number of the signal that ended the worker, or None."""
        self.stderr_tail = stderr_tail
        """The last lines the worker wrote to stderr before it died."""


class WorkerHung(WorkerCrashed):
    """The worker missed a health check's deadline (it did not answer ``$/ping`` in time), so
    the parent killed it (SIGKILL to its process group): a crash, for requests and restarts."""


class WorkerUnavailable(ChannelClosed):
    """The worker is stopped, or failed for good after its restarts: nothing can be sent to it."""


class WorkerIdInUse(IpcError, ValueError):
    """``spawn`` was given an id (or data path) that a live worker of this manager already has."""


class ExecutableNotFound(StartupError):
    """The worker's executable does not exist or cannot be run."""


class WorkerExitedDuringStartup(StartupError):
    """The worker exited before the handshake completed."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None,
        signal: int | None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message, stderr_tail=stderr_tail)
        self.exit_code = exit_code
        """The worker's exit code, or None when a signal ended it."""
        self.signal = signal
        """The number of the signal that ended the worker, or None."""


class DataChannelTimeout(StartupError):
    """The handshake did not complete within the start-up timeout."""


class StartupTimeout(StartupError):
    """A worker without a data channel did not send ``$/ready`` within the start-up timeout."""


class SizeLimitError(FramingError):
    """A frame or line over its limit (``frame_too_large``, ``line_too_long``), with the numbers.

    ``size`` is the exact byte count, or None when only "more than ``limit``" is known (a line
    still without its newline); ``data`` is what a ``-32005`` error carries (spec 12).
    """

    head: bytes = b""
    """The first bytes (up to 4 KiB) of a line over its limit, as read: what tells the answer to
    a pending request apart (spec 4.9); empty where not kept."""

    def __init__(
        self, kind: str, message: str, *, fatal: bool, size: int | None, limit: int
    ) -> None:
        super().__init__(kind, message, fatal=fatal)
        self.size = size
        self.limit = limit

    @property
    def data(self) -> dict[str, int]:
        """``{"size": N, "limit": M}``, or ``{"limit": M}`` when the size is not known."""
        if self.size is None:
            return {"limit": self.limit}
        return {"size": self.size, "limit": self.limit}


class SizeSettingError(ValueError):
    """An ``ASPECT_IPC_MAX_*`` variable does not follow the grammar; the message says why.

    Raised in a worker as it starts, which then exits with code 2 (not an IpcError: nothing
    was exchanged yet).
    """


class TextSettingError(ValueError):
    """``ASPECT_IPC_WORKER_ID``, ``ASPECT_IPC_NAMESPACE`` or ``ASPECT_IPC_DATA_PATH`` is not valid
    UTF-8 (spec 5.1: a parent encodes them so whatever its locale).

    Raised in a worker as it starts, which then exits with code 2, like SizeSettingError.
    """
