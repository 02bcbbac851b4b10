"""Channels: JSON-RPC over a framed, encoded transport, concurrent in both directions.

Theory of operation: one reader task turns bytes into frames (framing), frames into values
(codec) and values into messages (jsonrpc). Responses complete pending requests by id. Requests
run as tasks in the channel's task group, at most ``max_concurrent_handlers`` at once (the reader
waits for a free slot: backpressure, nothing dropped). Notifications go, in order, through a
bounded queue to one dispatcher task, so the reader never waits on a notification handler and a
handler may call the peer. Writes are serialized by a lock, and a send waits for the transport.
When the reader ends (EOF, transport error, fatal framing error) or the channel is closed, every
pending request fails at once and every task is cancelled.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._channel_parts import Buffer, _Deadlines, _Outgoing, _Pending
from .codecs import Codec, JsonCodec, MessagePackCodec
from .constants import METHOD_CANCEL, METHOD_PING, RESERVED_PREFIX
from .errors import (
    ChannelClosed,
    CodecError,
    FramingError,
    IpcError,
    ProtocolError,
    RemoteError,
    RequestTimeout,
    SizeLimitError,
    TransportError,
    fresh,
)
from .framing import (
    FrameDecoder,
    Framing,
    LengthPrefixedDecoder,
    LengthPrefixedFraming,
    LineDelimitedFraming,
)
from .jsonrpc import (
    ABSENT,
    ErrorCode,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    MessageId,
    Notification,
    Request,
    Response,
    error_for_exception,
)
from .recovery import recover_id
from .transports import FdTransport, SocketTransport, Transport

__all__ = [
    "BadInputHook",
    "Channel",
    "ChannelBuilder",
    "Handler",
    "HandlerTable",
    "current_request",
]

logger = logging.getLogger("aspect_ipc.channel")

# Senders wait while more than this is queued and not yet taken by the writer.
_OUTBOX_LIMIT = 256 * 1024
# How long a closing channel keeps trying to send what was queued before it closed.
_FLUSH_TIMEOUT = 1.0
# How long drain() waits for cancelled handlers to answer -32002 before it gives up on them.
_CANCELLED_GRACE = 0.5

Handler = Callable[[Any], Any]
"""A request or notification handler: ``handler(params)``, sync or async."""

BadInputHook = Callable[[bytes | bytearray | None, IpcError], bool]
"""Called with an undecodable frame (or None) and the error; returns True if it handled it."""


current_request: ContextVar[Request | None] = ContextVar("current_request", default=None)
"""The request whose handler is running in this task (None outside handlers)."""


class Channel:
    """A JSON-RPC 2.0 endpoint over one transport; an async context manager.

    Use :class:`ChannelBuilder` to make one. Inside ``async with channel:`` the channel reads,
    dispatches and answers; leaving the block closes it and fails what is still pending.
    """

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
    ) -> None:
        self.name = name
        self._decoder = decoder or framing.decoder()
        self.transport = transport
        self.framing = framing
        self.codec = codec
        self.protocol = protocol or JsonRpcProtocol()
        self.default_timeout = default_timeout
        self.bad_input_hook: BadInputHook | None = None
        self._request_handlers: dict[str, tuple[Handler, bool]] = {METHOD_PING: (_ping, False)}
        self._notification_handlers: dict[str, tuple[Handler, bool]] = {}
        self._receive_hooks: dict[tuple[bool, str], Callable[[Any], None]] = {}
        self._pending: dict[MessageId, _Pending] = {}
        self._running: dict[MessageId, anyio.CancelScope] = {}
        self._request_finished = anyio.Event()  # set, and replaced, as requests finish
        self._request_watchers = 0
        self._deadlines = _Deadlines()
        self._slots = anyio.Semaphore(max_concurrent_handlers, fast_acquire=True)
        # Outgoing frames queue here and one writer task sends whatever has queued up with one
        # system call: the responses that arrive together produce requests that leave together.
        self._outbox: list[_Outgoing] = []
        self._outbox_bytes = 0
        self._outbox_ready = anyio.Event()
        self._outbox_taken = anyio.Event()
        self._writer_done = anyio.Event()
        self._notifications_in, self._notifications_out = anyio.create_memory_object_stream[
            tuple[Handler, bool, Any]
        ](max_queued_notifications)
        self._task_group: TaskGroup | None = None
        self._task_scopes: set[anyio.CancelScope] = set()
        self._closed = False
        self._closed_event = anyio.Event()
        self._draining = False
        self._close_reason: IpcError = ChannelClosed(f"{name}: the channel is not open")

    # -- registration --------------------------------------------------------------------------

    def on_request(self, method: str, handler: Handler) -> None:
        """Answer requests for ``method`` with ``handler(params)`` (its return value, or error)."""
        _check_user_method(method)
        self._request_handlers[method] = (handler, inspect.iscoroutinefunction(handler))

    def on_notification(self, method: str, handler: Handler) -> None:
        """Call ``handler(params)`` for each notification ``method``, in arrival order."""
        _check_user_method(method)
        self._notification_handlers[method] = (handler, inspect.iscoroutinefunction(handler))

    def _on_reserved_request(
        self, method: str, handler: Handler, *, on_receive: Callable[[Any], None] | None = None
    ) -> None:
        """Like :meth:`on_request`; ``on_receive(params)`` runs in the reader, as the request
        is read, before anything after it is (the handler itself runs as a task)."""
        self._request_handlers[method] = (handler, inspect.iscoroutinefunction(handler))
        if on_receive is not None:
            self._receive_hooks[False, method] = on_receive

    def _on_reserved_notification(
        self, method: str, handler: Handler, *, on_receive: Callable[[Any], None] | None = None
    ) -> None:
        self._notification_handlers[method] = (handler, inspect.iscoroutinefunction(handler))
        if on_receive is not None:
            self._receive_hooks[True, method] = on_receive

    def refuse_new_requests(self) -> None:
        """Answer every request read from now on with ``-32004`` (shutting down)."""
        self._draining = True

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the channel has stopped (it accepts no more requests)."""
        return self._closed

    async def __aenter__(self) -> Channel:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._closed = False
        self._spawn(self._read_loop)
        self._spawn(self._notification_loop)
        self._spawn(self._deadline_loop)
        self._task_group.start_soon(self._write_loop)  # not cancelled: it flushes, then ends
        return self

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

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self.close(ChannelClosed(f"{self.name}: the channel was closed"))
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            # The body's own exception propagates as itself, not wrapped in an ExceptionGroup.
            await self._task_group.__aexit__(None, None, None)
            return None
        finally:
            self._task_group = None
            self._notifications_in.close()  # unclosed, they warn (ResourceWarning) when freed
            self._notifications_out.close()
            await self.transport.aclose()

    def close(self, reason: IpcError | None = None) -> None:
        """Stop the channel now: pending requests fail with ``reason`` (or ChannelClosed)."""
        if self._closed:
            return
        self._closed = True
        self._closed_event.set()
        self._close_reason = reason or ChannelClosed(f"{self.name}: the channel was closed")
        pending = list(self._pending.values())
        self._pending.clear()  # the same dict: the deadline task holds it
        for waiter in pending:
            waiter.error = self._close_reason
            waiter.event.set()
        for scope in [*self._task_scopes, *self._running.values()]:
            scope.cancel()
        self._outbox_ready.set()  # the writer sends what is queued, then ends
        self._outbox_taken.set()  # and senders waiting for room see the close
        if self._task_group is not None:  # the peer sees the close at once, not at __aexit__
            self._task_group.start_soon(self._close_transport)
        else:
            self._writer_done.set()

    async def _close_transport(self) -> None:
        with anyio.CancelScope(shield=True):
            # What was queued before the close is sent first (a response to a shutdown request,
            # say), unless the peer does not take it within the flush timeout.
            with anyio.move_on_after(_FLUSH_TIMEOUT):
                await self._writer_done.wait()
            await self.transport.aclose()

    @property
    def close_reason(self) -> IpcError:
        """Why the channel closed (meaningful once :attr:`closed` is true)."""
        return self._close_reason

    async def wait_closed(self) -> None:
        """Wait until the channel has closed, for whatever reason."""
        await self._closed_event.wait()

    async def drain(self, timeout: float, *, keep: MessageId | None = None) -> None:
        """Refuse new requests (``-32004``), let running ones finish for up to ``timeout``
        seconds, then cancel the rest (answered ``-32002``). ``keep`` is left running."""
        self.refuse_new_requests()

        def only_keep_runs() -> bool:
            return all(request_id == keep for request_id in self._running)

        with anyio.move_on_after(timeout):
            await self.wait_requests(only_keep_runs)
        for request_id, scope in list(self._running.items()):
            if request_id != keep:
                scope.cancel()
        # Handlers that ignore the cancellation are not waited for longer: their answers drop.
        with anyio.move_on_after(_CANCELLED_GRACE):
            await self.wait_requests(only_keep_runs)

    async def wait_requests(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` is true, checking it each time an incoming request finishes."""
        self._request_watchers += 1
        try:
            while not done():
                await self._request_finished.wait()
        finally:
            self._request_watchers -= 1

    # -- outgoing ------------------------------------------------------------------------------

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call ``method`` on the peer and return its result.

        ``timeout`` (seconds) defaults to the channel's ``default_timeout``; ``math.inf`` waits
        forever. A timeout or a cancelled caller sends the peer ``$/cancelRequest``.

        Raises:
            RemoteError: the peer answered with an error (``code``, ``message``, ``data``).
            RequestTimeout: no answer within ``timeout``.
            ChannelClosed: the channel closed (a subclass says why, e.g. WorkerCrashed).
            CodecError, FramingError: the request cannot be encoded or is too large; not sent.
        """
        if self._closed:
            raise fresh(self._close_reason)
        message = self.protocol.request(method, params)
        request_id = message["id"]
        waiter = _Pending()
        self._pending[request_id] = waiter
        limit = self.default_timeout if timeout is None else timeout
        if limit is not None and not math.isinf(limit):
            self._deadlines.add(anyio.current_time() + limit, request_id)
        answered = False
        try:
            with _named_size_error("request"):
                await self._send(message, waiter)
            await waiter.event.wait()
            answered = True
        finally:
            if not answered and self._pending.pop(request_id, None) is not None:
                self._cancel_remote(request_id)  # the caller was cancelled, or the send failed
        if waiter.timed_out:
            raise RequestTimeout(
                f"{self.name}: no response to {method!r} (id {request_id}) within {limit:g} s; "
                "the peer was sent $/cancelRequest"
            )
        if waiter.error is not None:
            raise fresh(waiter.error)
        return waiter.result

    async def _deadline_loop(self) -> None:
        deadlines, pending = self._deadlines, self._pending
        while True:
            earliest = deadlines.next(pending)
            if earliest is None:
                await deadlines.wake.wait()
                deadlines.wake = anyio.Event()
                continue
            deadline, request_id = earliest
            delay = deadline - anyio.current_time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await deadlines.wake.wait()
                    deadlines.wake = anyio.Event()
                continue
            deadlines.pop()
            waiter = pending.pop(request_id)
            waiter.timed_out = True
            waiter.event.set()
            self._wake_senders()  # its request may still be waiting for room in the queue
            self._cancel_remote(request_id)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no answer is expected)."""
        if self._closed:
            raise fresh(self._close_reason)
        with _named_size_error("notification"):
            await self._send(self.protocol.notification(method, params))

    async def _send(self, message: dict[str, Any], waiter: _Pending | None = None) -> None:
        """Queue ``message`` for the writer; wait only while the queue is over its limit.

        A request whose ``waiter`` completes meanwhile (its timeout passed), or a caller that is
        cancelled, takes its message back out of the queue if the writer has not taken it yet:
        a peer that stops reading holds up senders, never an ever longer queue.
        """
        parts = self._frame(message)
        if self._closed:
            raise fresh(self._close_reason)
        entry = _Outgoing(parts)
        self._outbox.append(entry)
        self._outbox_bytes += entry.size
        self._outbox_ready.set()
        queued = True
        try:
            while self._outbox_bytes > _OUTBOX_LIMIT and entry.queued:  # backpressure
                await self._outbox_taken.wait()
                if self._closed:
                    raise fresh(self._close_reason)
                if waiter is not None and waiter.event.is_set():
                    return  # timed out while queued: never sent
            queued = False
        finally:
            if queued and entry.queued:
                entry.queued = False
                try:
                    self._outbox.remove(entry)
                except ValueError:  # the queue was dropped: the channel failed
                    pass
                else:
                    self._outbox_bytes -= entry.size

    def _frame(self, message: dict[str, Any]) -> list[Buffer]:
        codec, framing = self.codec, self.framing
        if type(codec) is MessagePackCodec and type(framing) is LengthPrefixedFraming:
            body = codec.encode_parts(message)  # large binaries are not copied
            if len(body) > 1:
                return [framing.header(sum(map(len, body))), *body]
            return framing.encode_parts(body[0])
        return framing.encode_parts(codec.encode(message))

    def _wake_senders(self) -> None:
        taken, self._outbox_taken = self._outbox_taken, anyio.Event()
        taken.set()

    async def _write_loop(self) -> None:
        try:
            with anyio.CancelScope(shield=True):
                while True:
                    if not self._outbox:
                        if self._closed:
                            return
                        await self._outbox_ready.wait()
                        self._outbox_ready = anyio.Event()
                        continue
                    entries, self._outbox, self._outbox_bytes = self._outbox, [], 0
                    parts = []
                    for entry in entries:
                        entry.queued = False
                        parts += entry.parts
                    self._wake_senders()
                    try:
                        await self.transport.send_all(parts)
                    except TransportError as exc:
                        self._outbox.clear()
                        self.close(ChannelClosed(f"{self.name}: {exc}"))
                        return
        finally:
            self._writer_done.set()

    def _cancel_remote(self, request_id: MessageId) -> None:
        if self._closed or self._task_group is None:
            return
        message = self.protocol.notification(METHOD_CANCEL, {"id": request_id})
        self._spawn(self._send_quietly, message)

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except IpcError as exc:
            logger.debug("%s: could not send %s: %s", self.name, message.get("method"), exc)

    # -- incoming ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        decoder = self._decoder
        # Large frames are received straight into their own buffer where both sides allow it.
        transport = self.transport
        in_place: tuple[LengthPrefixedDecoder, SocketTransport] | None = None
        if isinstance(decoder, LengthPrefixedDecoder) and isinstance(transport, SocketTransport):
            in_place = (decoder, transport)
        reason: IpcError = ChannelClosed(f"{self.name}: the peer closed the channel")
        try:
            at_eof = False
            while True:  # frames fed to the decoder before the channel started go first
                while True:
                    try:
                        frame = decoder.next_frame()
                    except FramingError as exc:
                        await self._bad_input(None, exc)
                        if exc.fatal:
                            reason = ChannelClosed(f"{self.name}: {exc}")
                            return
                        continue
                    if frame is None:
                        break
                    await self._dispatch(frame)
                if at_eof:
                    return
                space = in_place[0].writable() if in_place is not None else None
                if in_place is not None and space is not None:
                    with space:
                        received = await in_place[1].receive_into(space)
                    if received:
                        in_place[0].wrote(received)
                        continue
                else:
                    data = await transport.receive()
                    if data:
                        decoder.feed(data)
                        continue
                decoder.feed_eof()
                at_eof = True
        except TransportError as exc:
            reason = ChannelClosed(f"{self.name}: {exc}")
        finally:
            self.close(reason)

    async def _dispatch(self, frame: bytes | bytearray) -> None:
        try:
            value = self.codec.decode(frame)
        except CodecError as exc:
            await self._bad_input(frame, exc)
            return
        message = JsonRpcProtocol.parse(value)
        kind = type(message)
        if kind is Response:
            assert isinstance(message, Response)
            self._complete(message.id, message.result, None)
        elif kind is Request:
            assert isinstance(message, Request)
            await self._start_request(message)
        elif kind is Notification:
            assert isinstance(message, Notification)
            await self._queue_notification(message)
        elif kind is ErrorResponse:
            assert isinstance(message, ErrorResponse)
            error = RemoteError(message.code, message.message, _data(message.data))
            if message.id is None:
                logger.warning("%s: the peer reported an error: %s", self.name, error)
            else:
                self._complete(message.id, None, error)
        else:
            assert isinstance(message, InvalidMessage)
            if not message.reply and message.id is not None and message.id in self._pending:
                # An invalid answer to a request of ours: that request fails now, with why.
                self._complete(message.id, None, ProtocolError(f"{self.name}: {message.reason}"))
                return
            hook = self.bad_input_hook
            if hook is not None and hook(frame, ProtocolError(message.reason)):
                return
            if message.reply:
                await self._reply_error(message.id, message.code, message.reason)
            else:
                logger.warning("%s: dropped an invalid response: %s", self.name, message.reason)

    async def _bad_input(self, frame: bytes | bytearray | None, error: IpcError) -> None:
        if self.bad_input_hook is not None and self.bad_input_hook(frame, error):
            return
        if isinstance(error, CodecError):
            logger.warning("%s: the peer sent an undecodable message: %s", self.name, error)
            request_id = None if frame is None else recover_id(self.codec.name, frame)
            await self._reply_error(request_id, ErrorCode.PARSE_ERROR, f"Parse error: {error}")
        elif isinstance(error, SizeLimitError):
            await self._reply_error(None, ErrorCode.MESSAGE_TOO_LARGE, str(error), error.data)
        else:
            logger.warning("%s: %s", self.name, error)

    async def _reply_error(
        self, request_id: MessageId | None, code: int, text: str, data: Any = ABSENT
    ) -> None:
        await self._send_quietly(self.protocol.error_response(request_id, code, text, data))

    def _complete(self, request_id: MessageId, result: Any, error: BaseException | None) -> None:
        waiter = self._pending.pop(request_id, None)
        if waiter is None:
            logger.debug("%s: dropped a response to unknown id %r", self.name, request_id)
            return
        waiter.result, waiter.error = result, error
        waiter.event.set()

    async def _start_request(self, request: Request) -> None:
        if self._draining:
            await self._reply_error(request.id, ErrorCode.SHUTTING_DOWN, "shutting down")
            return
        entry = self._request_handlers.get(request.method)
        if entry is None:
            text = f"Method not found: {request.method}"
            await self._reply_error(request.id, ErrorCode.METHOD_NOT_FOUND, text)
            return
        if request.id in self._running:
            text = f"Invalid Request: id {request.id!r} is already in use by a running request"
            await self._reply_error(request.id, ErrorCode.INVALID_REQUEST, text)
            return
        if self._receive_hooks:
            hook = self._receive_hooks.get((False, request.method))
            if hook is not None:
                hook(request.params)
        await self._slots.acquire()
        assert self._task_group is not None
        scope = anyio.CancelScope()
        self._running[request.id] = scope
        self._task_group.start_soon(self._run_request, request, entry, scope)  # own scope

    async def _run_request(
        self, request: Request, entry: tuple[Handler, bool], scope: anyio.CancelScope
    ) -> None:
        handler, is_async = entry
        response: dict[str, Any] | None = None
        current_request.set(request)
        try:
            with scope:
                try:
                    result = await handler(request.params) if is_async else handler(request.params)
                    if not is_async and inspect.isawaitable(result):
                        result = await result
                    response = self.protocol.response(request.id, result)
                except Exception as exc:
                    code, text, data = error_for_exception(exc)
                    response = self.protocol.error_response(request.id, code, text, data)
            if response is None:  # our scope caught the cancellation: $/cancelRequest or drain
                response = self.protocol.error_response(
                    request.id, ErrorCode.REQUEST_CANCELLED, "request cancelled"
                )
            await self._send_response(request, response)
        finally:
            self._running.pop(request.id, None)
            self._slots.release()
            if self._request_watchers:
                finished, self._request_finished = self._request_finished, anyio.Event()
                finished.set()

    async def _send_response(self, request: Request, response: dict[str, Any]) -> None:
        try:
            await self._send(response)
        except SizeLimitError as exc:  # any response, result or error: the caller is answered
            limit = "max_frame_size" if exc.kind == "frame_too_large" else "max_line_length"
            text = f"response of {exc.size} bytes exceeds {limit} of {exc.limit} bytes"
            await self._reply_error(request.id, ErrorCode.MESSAGE_TOO_LARGE, text, exc.data)
        except CodecError as exc:
            text = f"the result of {request.method!r} cannot be sent: {exc}"
            await self._reply_error(request.id, ErrorCode.INTERNAL_ERROR, text)
        except ChannelClosed:
            pass

    async def _queue_notification(self, message: Notification) -> None:
        if message.method == METHOD_CANCEL:
            params = message.params
            if isinstance(params, dict) and type(params.get("id")) in (int, str):
                scope = self._running.get(params["id"])
                if scope is not None:
                    scope.cancel()
            return
        entry = self._notification_handlers.get(message.method)
        if self._receive_hooks:
            hook = self._receive_hooks.get((True, message.method))
            if hook is not None:
                hook(message.params)
        if entry is None:
            if not message.method.startswith(RESERVED_PREFIX):
                logger.debug("%s: no handler for notification %r", self.name, message.method)
            return
        await self._notifications_in.send((entry[0], entry[1], message.params))

    async def _notification_loop(self) -> None:
        async for handler, is_async, params in self._notifications_out:
            try:
                result = await handler(params) if is_async else handler(params)
                if not is_async and inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("%s: notification handler %r failed", self.name, handler)


class HandlerTable:
    """Handlers declared for a worker's two channels, before and across the channels' lives.

    A parent's handle and a worker both let users declare handlers at any time, while the
    channels they belong on come and go (a restart makes new ones): the table keeps them and
    installs them on each new channel, and on the live one when one is declared late.
    """

    CHANNELS = ("control", "data")

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, bool], dict[str, Handler]] = {
            (via, notification): {} for via in self.CHANNELS for notification in (False, True)
        }

    def add(
        self, via: str, method: str, handler: Handler, *, notification: bool, live: Channel | None
    ) -> None:
        """Keep ``handler`` for ``method`` on channel ``via``; install it on ``live`` too."""
        self.check(via, method)
        self._handlers[via, notification][method] = handler
        if live is not None:
            (live.on_notification if notification else live.on_request)(method, handler)

    def check(self, via: str, method: str) -> None:
        """Raise ValueError unless ``via`` names a channel and ``method`` is not reserved."""
        if via not in self.CHANNELS:
            raise ValueError(f"via must be 'control' or 'data', not {via!r}")
        _check_user_method(method)

    def install(self, channel: Channel, via: str) -> None:
        """Register every handler kept for ``via`` on ``channel``."""
        for method, handler in self._handlers[via, False].items():
            channel.on_request(method, handler)
        for method, handler in self._handlers[via, True].items():
            channel.on_notification(method, handler)


class ChannelBuilder:
    """Assembles a :class:`Channel` (the design's builder).

    Defaults: a transport over pipes gets line-delimited JSON, any other transport
    length-prefixed MessagePack; the protocol is :class:`JsonRpcProtocol`.
    """

    def __init__(self) -> None:
        self._transport: Transport | None = None
        self._framing: Framing | None = None
        self._codec: Codec | None = None
        self._protocol: JsonRpcProtocol | None = None
        self._options: dict[str, Any] = {}

    def with_transport(self, transport: Transport) -> ChannelBuilder:
        self._transport = transport
        return self

    def with_framing(self, framing: Framing) -> ChannelBuilder:
        self._framing = framing
        return self

    def with_serialization(self, codec: Codec) -> ChannelBuilder:
        self._codec = codec
        return self

    def with_protocol(self, protocol: JsonRpcProtocol) -> ChannelBuilder:
        self._protocol = protocol
        return self

    def with_options(
        self,
        *,
        name: str | None = None,
        max_concurrent_handlers: int | None = None,
        max_queued_notifications: int | None = None,
        default_timeout: float | None = None,
    ) -> ChannelBuilder:
        """Set the channel's name (used in errors and logs), limits and default timeout."""
        given = {
            "name": name,
            "max_concurrent_handlers": max_concurrent_handlers,
            "max_queued_notifications": max_queued_notifications,
            "default_timeout": default_timeout,
        }
        self._options.update({k: v for k, v in given.items() if v is not None})
        return self

    def build(self) -> Channel:
        """Return the channel; ``async with`` it to run it."""
        if self._transport is None:
            raise ValueError("ChannelBuilder needs a transport: call with_transport() first")
        on_pipes = isinstance(self._transport, FdTransport)
        framing = self._framing or (LineDelimitedFraming() if on_pipes else LengthPrefixedFraming())
        codec = self._codec or (
            JsonCodec() if isinstance(framing, LineDelimitedFraming) else MessagePackCodec()
        )
        return Channel(self._transport, framing, codec, self._protocol, **self._options)


@contextmanager
def _named_size_error(what: str) -> Iterator[None]:
    """Say what could not be sent: "request of 5000 bytes exceeds max_frame_size of ..."."""
    try:
        yield
    except SizeLimitError as exc:
        limit = "max_frame_size" if exc.kind == "frame_too_large" else "max_line_length"
        advice = "split the payload" if exc.kind == "frame_too_large" else "use the data channel"
        raise SizeLimitError(
            exc.kind,
            f"{what} of {exc.size} bytes exceeds {limit} of {exc.limit} bytes; raise {limit} "
            f"or {advice}",
            fatal=False,
            size=exc.size,
            limit=exc.limit,
        ) from None


def _check_user_method(method: str) -> None:
    if method.startswith(RESERVED_PREFIX):
        raise ValueError(f"method names starting with {RESERVED_PREFIX!r} are reserved: {method!r}")


def _ping(params: Any) -> dict[str, Any]:
    return {}


def _data(data: Any) -> Any:
    return None if data is ABSENT else data
