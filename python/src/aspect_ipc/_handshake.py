"""The parent's side of the start-up handshake (spec 7): $/ready, connect, peer check, $/hello.

:func:`handshake` runs inside an incarnation, after the process has started and its control
channel is open. The caller runs it in a cancel scope that the worker's exit cancels, so a worker
that dies during its start-up is reported at once, never after the start-up timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from ._peer_check import check_peer
from .channel import Channel, HandlerTable
from .constants import METHOD_HELLO, PROTOCOL_VERSION
from .errors import (
    ChannelClosed,
    CodecError,
    DataChannelTimeout,
    IpcError,
    ProtocolError,
    ProtocolVersionMismatch,
    RemoteError,
    StartupError,
    StartupTimeout,
    TransportError,
    Unauthorized,
)
from .framing import LengthPrefixedFraming
from .jsonrpc import ErrorCode
from .options import DataChannelOptions
from .paths import _wire_path
from .transports import SocketTransport, TransportFactory

__all__ = ["Startup", "handshake", "hook_failure"]

# The scope gets a little slack beyond the deadline, so that a connection attempt that runs out
# at the deadline reports why (spec 7.6) before the scope gives up on it.
_STARTUP_SLACK = 0.25


@dataclass
class Startup:
    """What one incarnation's handshake needs to know."""

    worker_id: str
    pid: int
    data_path: str | None
    data: DataChannelOptions
    timeout: float
    token: str | None
    handlers: HandlerTable
    ready: anyio.Event
    ready_params: dict[str, Any]  # once checked by handshake()
    announced: Any = None  # the params of $/ready, as sent
    # A line of the worker's stdout that the control codec's decode hook failed on, before
    # $/ready: the parent cannot read what the worker says, $/ready included (it ends the wait).
    unreadable: IpcError | None = None
    # Why the start-up failed before $/ready was seen (it ends the wait): $/ready sent as a
    # request, say.
    failure: IpcError | None = None

    def ready_as_request(self, params: Any) -> None:
        """The control channel's handler of a ``$/ready`` request. A worker without an SDK
        that gives ``$/ready`` an id would wait for an answer, and the parent for a ``$/ready``
        it never sees: both are told at once."""
        if not self.ready.is_set():
            self.failure = StartupError(
                f"worker {self.worker_id} sent $/ready as a request (with an id): it is a "
                "notification, sent without one (spec 7.2)"
            )
            self.ready.set()
        raise RemoteError(
            ErrorCode.INVALID_REQUEST,
            "Invalid Request: $/ready is a notification: send it without an id (spec 7.2)",
        )


async def handshake(startup: Startup, task_group: TaskGroup) -> Channel | None:
    """Wait for ``$/ready``, then (data channel enabled) connect and authenticate.

    Returns the running data channel, or None for a control-only worker.

    Raises:
        StartupTimeout, DataChannelTimeout: the handshake did not complete in time.
        StartupError, ProtocolVersionMismatch, Unauthorized: it failed (see spec 7.6).
    """
    worker = startup.worker_id
    deadline = anyio.current_time() + startup.timeout
    with anyio.move_on_after(startup.timeout + _STARTUP_SLACK) as scope:
        with anyio.move_on_after(startup.timeout):
            await startup.ready.wait()
        if not startup.ready.is_set():
            scope.cancel()  # no $/ready in time: the timeout error below
            await anyio.lowlevel.checkpoint()
        if startup.failure is not None:
            raise startup.failure
        if startup.unreadable is not None:
            raise StartupError(
                f"worker {worker}: a message on its control channel cannot be read, so its "
                f"$/ready cannot be seen: {startup.unreadable} (ControlChannelOptions' codec)"
            )
        params = _ready_params(startup)
        if startup.data_path is None:
            return None
        if not params.get("dataPath"):
            raise StartupError(
                f"worker {worker} did not open the data channel ($/ready has dataPath null): "
                "does it read ASPECT_IPC_DATA_PATH?"
            )
        given = _wire_path(startup.data_path)  # what ASPECT_IPC_DATA_PATH held (spec 5.1)
        if params["dataPath"] != given:
            raise StartupError(
                f"worker {worker} announced the data path {params['dataPath']!r} in $/ready, "
                f"not the one it was given ({given!r} in ASPECT_IPC_DATA_PATH)"
            )
        transport = await _connect(startup, max(deadline - anyio.current_time(), 0.001))
        try:
            pid = startup.ready_params.get("pid")
            check_peer(transport, startup.data_path, pid, startup.pid, startup.worker_id)
        except Unauthorized:
            await transport.aclose()
            raise
        data = Channel(
            transport,
            LengthPrefixedFraming(startup.data.max_frame_size),
            startup.data.codec,
            name=f"worker {worker} data channel",
            log_extra={"worker_id": worker},
        )
        data.busy_poll = startup.data.busy_poll
        data.receive_wait = startup.data.receive_wait
        startup.handlers.install(data, "data")
        await task_group.start(_run_channel, data)
        await _hello(startup, data)
        return data
    if not startup.ready.is_set():
        if startup.data_path is None:
            raise StartupTimeout(
                f"start-up timeout: worker {worker} did not send $/ready within "
                f"{startup.timeout:g} s. Likely causes: it does not use an aspect-ipc SDK (or "
                "never starts it), it waits for something before starting it, or it is slow to "
                "start (raise startup_timeout)."
            )
        raise DataChannelTimeout(
            f"data channel connection timeout: worker {worker} did not send $/ready within "
            f"{startup.timeout:g} s. Likely causes: the worker does not use an aspect-ipc SDK "
            "(or never starts it); it ignores ASPECT_IPC_DATA_PATH; it is slow to start (raise "
            "startup_timeout)."
        )
    raise DataChannelTimeout(
        f"data channel connection timeout: worker {worker} did not complete the data channel "
        f"handshake ($/hello) within {startup.timeout:g} s"
    )


def _ready_params(startup: Startup) -> dict[str, Any]:
    """The params of ``$/ready`` (7.2), checked: a map whose ``protocol`` is the integer 1."""
    worker, params = startup.worker_id, startup.announced
    if not isinstance(params, dict):
        raise StartupError(
            f"worker {worker} sent $/ready with params {params!r:.200}, not a map (spec 7.2): "
            "does it use an aspect-ipc SDK?"
        )
    startup.ready_params.update(params)
    protocol = params.get("protocol")
    if type(protocol) not in (int, float):  # missing, a string...: not a version at all
        shown = (
            "without a protocol" if "protocol" not in params else f"with protocol {protocol!r:.40}"
        )
        raise StartupError(
            f"worker {worker} sent $/ready {shown}: it must be the integer "
            f"{PROTOCOL_VERSION} (spec 7.2). Does it use an aspect-ipc SDK?"
        )
    if type(protocol) is not int or protocol != PROTOCOL_VERSION:  # 1.0 is a float (3.1)
        raise ProtocolVersionMismatch(
            f"protocol version mismatch: parent speaks {PROTOCOL_VERSION}, "
            f"worker {worker} speaks {protocol!r}"
        )
    return params


async def _connect(startup: Startup, timeout: float) -> SocketTransport:
    assert startup.data_path is not None
    try:
        return await TransportFactory.create_pipe_client(startup.data_path, timeout=timeout)
    except TransportError as exc:
        if isinstance(exc.__cause__, OSError):  # not a timeout: the OS refused (EACCES...)
            raise StartupError(f"worker {startup.worker_id}: {exc}") from exc.__cause__
        raise DataChannelTimeout(f"worker {startup.worker_id}: {exc}") from None


async def _hello(startup: Startup, data: Channel) -> None:
    worker = startup.worker_id
    try:
        result = await data.request(
            METHOD_HELLO,
            {"token": startup.token, "protocol": PROTOCOL_VERSION},
            timeout=math.inf,
        )
    except RemoteError as exc:
        if exc.code == ErrorCode.PROTOCOL_VERSION_MISMATCH:
            raise ProtocolVersionMismatch(f"worker {worker}: {exc.message}") from None
        raise Unauthorized(
            exc.code, f"worker {worker} refused $/hello: {exc.message}", exc.data
        ) from None
    except ChannelClosed as exc:
        raise StartupError(
            f"worker {worker} closed the data channel during $/hello: {exc}"
        ) from None
    except ProtocolError as exc:  # an answer that does not decode (a decode hook that raised)
        raise StartupError(f"worker {worker}: the answer to $/hello is unusable: {exc}") from exc
    # The result names who accepted the token (7.4): anything else is not this worker.
    if not isinstance(result, dict) or type(result.get("protocol")) is not int:
        raise StartupError(f"worker {worker} answered $/hello with {result!r:.200} (spec 7.4)")
    if result["protocol"] != PROTOCOL_VERSION:
        raise ProtocolVersionMismatch(
            f"protocol version mismatch: parent speaks {PROTOCOL_VERSION}, worker {worker}'s "
            f"data channel speaks {result['protocol']!r}"
        )
    if result.get("workerId") != worker:
        raise Unauthorized(
            ErrorCode.UNAUTHORIZED,
            f"the data socket of worker {worker} answered $/hello as worker "
            f"{result.get('workerId')!r}",
        )


async def _run_channel(channel: Channel, *, task_status: TaskStatus[None]) -> None:
    async with channel:
        task_status.started()
        await channel.wait_closed()


def hook_failure(error: IpcError) -> bool:
    """Whether a message failed to decode because the codec's decode hook failed on it (a
    decoding error that names a place: only a hook's failure does)."""
    return isinstance(error, CodecError) and error.path is not None
