"""The state every part of a channel shares, and how a channel stops (:meth:`close`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._compiled import pack_frame
from .._loggers import library_logger
from .._streams import StreamTable
from .._trace import Tracer
from ..codecs import Codec, MessagePackCodec, PartsCodec
from ..constants import METHOD_PING
from ..errors import ChannelClosed, IpcError
from ..framing import FrameDecoder, Framing, HeaderFraming, LengthPrefixedFraming
from ..jsonrpc import JsonRpcProtocol, MessageId
from ..metrics import ChannelMetrics
from ..transports import Transport
from ._handlers import Handler, ping
from ._outbox import Buffer, Outbox
from ._pending import Deadlines, Pending, waiter_factory

__all__ = ["BadInputHook", "ChannelCore", "logger"]

logger = library_logger("aspect_ipc.channel")

# How long a closing channel keeps trying to send what was queued before it closed.
_FLUSH_TIMEOUT = 1.0

BadInputHook = Callable[[Buffer | None, IpcError], bool]
"""Called with an undecodable frame (or None) and the error; returns True if it handled it."""


class ChannelCore:
    """A channel's state: handlers, our pending requests, the peer's running ones, the outbox,
    the background tasks; and :meth:`close`, which every part may call."""

    def __init__(
        self,
        transport: Transport,
        framing: Framing,
        codec: Codec,
        protocol: JsonRpcProtocol | None = None,
        *,
        name: str = "channel",
        max_concurrent_handlers: int = 256,
        max_queued_notifications: int = 1024,
        default_timeout: float | None = None,
        decoder: FrameDecoder | None = None,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.name = name
        # The channel's records on aspect_ipc.channel, with log_extra as their attributes (a
        # worker's channels in the parent: its worker_id, as every record about it has).
        self._log: logging.Logger | logging.LoggerAdapter[logging.Logger] = (
            logger if log_extra is None else logging.LoggerAdapter(logger, dict(log_extra))
        )
        self._decoder = decoder or framing.decoder()
        # Gives a decoded frame's buffer back to the decoder, for the next large frame.
        self._recycle: Callable[[Buffer], None] | None = getattr(self._decoder, "recycle", None)
        self.transport = transport
        self.framing = framing
        self.codec = codec
        self.protocol = protocol or JsonRpcProtocol()
        self.default_timeout = default_timeout
        self.bad_input_hook: BadInputHook | None = None
        # Observability (metrics.py, _trace.py): None is off, and costs one test per message.
        # Set before the channel runs (the outbox gets the metrics when it starts).
        self.metrics: ChannelMetrics | None = None
        self.tracer: Tracer | None = None
        # Busy polling (seconds): a lone request reads for its answer without sleeping for up
        # to this long before it waits on the loop (asyncio only: see AnswerPoll.spin). 0: off.
        self.busy_poll = 0.0
        # Or it waits for it asleep in the socket's receive call (AnswerPoll.wait). 0: off.
        # Both are set before the channel runs.
        self.receive_wait = 0.0
        # AnswerPoll.poll, while it runs, if either is set.
        self._poll: Callable[[Any], bool] | None = None
        self._frame_overhead = _frame_overhead(framing)  # bytes a frame adds to its payload
        # Large binaries go out uncopied where the codec and the framing both allow it.
        self._encode_parts: Callable[[Any], list[Buffer]] | None = None
        self._header: Callable[[int], bytes] | None = None
        if isinstance(codec, PartsCodec) and isinstance(framing, HeaderFraming):
            self._encode_parts, self._header = codec.encode_parts, framing.header
        # A plain message's whole frame comes from the compiled core in one call, where the
        # codec would pack it exactly so: MessagePack without an encode hook, length-prefixed.
        self._pack_frame: Callable[[int, Any], bytes | None] | None = None
        self._frame_limit_of: LengthPrefixedFraming | None = None  # max_frame_size, read per use
        if (
            type(codec) is MessagePackCodec
            and codec.encode_hook is None
            and type(framing) is LengthPrefixedFraming
        ):
            self._pack_frame, self._frame_limit_of = pack_frame, framing
        self._request_handlers: dict[str, tuple[Handler, bool]] = {METHOD_PING: (ping, False)}
        self._notification_handlers: dict[str, tuple[Handler, bool]] = {}
        self._receive_hooks: dict[tuple[bool, str], Callable[[Any], None]] = {}
        self._pending: dict[MessageId, Pending] = {}
        self._new_waiter = waiter_factory()  # for each request's Pending: no backend lookup
        self._running: dict[MessageId, anyio.CancelScope] = {}
        # Requests answered on their handler's behalf (drain): its own answer is dropped.
        self._abandoned: set[MessageId] = set()
        self._streams: StreamTable | None = None  # made by the first stream (spec 13)
        self._request_finished = anyio.Event()  # set, and replaced, as requests finish
        self._request_watchers = 0
        self._deadlines = Deadlines(self._pending)
        self._slots = anyio.Semaphore(max_concurrent_handlers, fast_acquire=True)
        self._outbox = Outbox()
        self._notifications_in, self._notifications_out = anyio.create_memory_object_stream[
            tuple[str, Handler, bool, Any, int]
        ](max_queued_notifications)
        # The bytes of the notifications queued for their handler (spec 4.5: at most
        # QUEUED_NOTIFICATION_BYTES, one always accepted), and the event their handler sets as
        # it takes them.
        self._queued_notification_bytes = 0
        self._notification_taken = anyio.Event()
        self._task_group: TaskGroup | None = None
        self._task_scopes: set[anyio.CancelScope] = set()
        self._closed = False
        self._closed_event = anyio.Event()
        self._draining = False
        self._close_reason: IpcError = ChannelClosed(f"{name}: the channel is not open")

    @property
    def closed(self) -> bool:
        """Whether the channel has stopped (it accepts no more requests)."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """Our requests sent and not yet answered."""
        return len(self._pending)

    @property
    def queued_bytes(self) -> int:
        """Bytes queued for the writer and not yet taken by it."""
        return self._outbox.size

    @property
    def close_reason(self) -> IpcError:
        """Why the channel closed (meaningful once :attr:`closed` is true)."""
        return self._close_reason

    async def wait_closed(self) -> None:
        """Wait until the channel has closed, for whatever reason."""
        await self._closed_event.wait()

    def close(self, reason: IpcError | None = None) -> None:
        """Stop the channel now: pending requests fail with ``reason`` (or ChannelClosed)."""
        if self._closed:
            return
        self._closed = True
        self._closed_event.set()
        self._close_reason = reason or ChannelClosed(f"{self.name}: the channel was closed")
        pending = self._pending  # the same dict: the deadline task holds it
        while pending:  # popped one by one: a blocking caller's thread may add to it meanwhile
            waiter = pending.popitem()[1]
            waiter.error = self._close_reason
            waiter.event.set()
        if self._streams is not None:  # every stream's next step raises the reason (13.7)
            self._streams.close(self._close_reason)
        for scope in [*self._task_scopes, *self._running.values()]:
            scope.cancel()
        self._outbox.close(self._close_reason)  # the writer sends what is queued, then ends
        if self._task_group is not None:  # the peer sees the close at once, not at __aexit__
            self._task_group.start_soon(self._close_transport)
        else:
            self._outbox.done.set()

    async def _close_transport(self) -> None:
        with anyio.CancelScope(shield=True):
            # What was queued before the close is sent first (a response to a shutdown request,
            # say), unless the peer does not take it within the flush timeout.
            with anyio.move_on_after(_FLUSH_TIMEOUT):
                await self._outbox.done.wait()
            await self.transport.aclose()

    on_handler_exit: Callable[[BaseException], bool] | None = None
    """Called when a handler, or a codec hook run for one, calls ``sys.exit()`` or raises
    KeyboardInterrupt; True: it is taken care of (a worker exits with its code, a parent's
    manager raises it from its ``async with``) and not raised further. None: it propagates."""

    def _handler_exited(self, exc: BaseException) -> bool:
        """Whether ``exc`` ends the program and is now in the hands of :attr:`on_handler_exit`:
        its request is not answered."""
        if isinstance(exc, SystemExit | KeyboardInterrupt) and self.on_handler_exit is not None:
            return self.on_handler_exit(exc)
        return False

    def _spawn(self, function: Callable[..., Any], *args: Any) -> None:
        # Background tasks get cancel scopes of their own: close() cancels them, never the
        # code running inside the caller's ``async with channel:`` block.
        assert self._task_group is not None
        self._task_group.start_soon(self._guarded, function, *args)

    async def _guarded(self, function: Callable[..., Any], *args: Any) -> None:
        with anyio.CancelScope() as scope:
            if self._closed:
                scope.cancel()
            self._task_scopes.add(scope)
            try:
                await function(*args)
            finally:
                self._task_scopes.discard(scope)


def _frame_overhead(framing: Framing) -> int:
    """What framing adds to a payload (4 for a length header, 1 for a newline): inbound bytes
    are counted as frames, as outbound ones are."""
    try:
        return sum(map(len, framing.encode_parts(b"{}"))) - 2
    except IpcError:
        return 0
