"""What the peer sends, message by message: answers to our requests, its requests (at most
``max_concurrent_handlers`` at once: a coroutine function's as a task, a plain function's in the
reader when it can), its notifications (in order, by one task).
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar, copy_context
from time import perf_counter_ns
from typing import Any

import anyio

from .._framing_split import whole_frame
from .._handler_errors import handler_failed, scope_cancellation
from .._stream_messages import STREAM_KEY, STREAM_METHODS
from ..constants import METHOD_CANCEL, RESERVED_PREFIX
from ..errors import (
    CodecError,
    IpcError,
    ProtocolError,
    RemoteError,
    SizeLimitError,
)
from ..jsonrpc import (
    ABSENT,
    ErrorCode,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    MessageId,
    Notification,
    Request,
    Response,
)
from ..metrics import BUCKET_SHIFT, BUCKETS
from ..recovery import recover_answer_id, recover_answer_id_from_head, recover_id
from ._answering import Answering
from ._handlers import Handler
from ._outbox import OUTBOX_LIMIT, Buffer
from ._pending import FutureWaiter
from ._slots import HandlerSlot, current_slot
from ._stream_ends import RequestStreams, set_current_streams

__all__ = ["QUEUED_NOTIFICATION_BYTES", "Dispatch", "current_request"]

QUEUED_NOTIFICATION_BYTES = 16 << 20
"""The most bytes of notifications that wait for their handler (spec 4.5); one is always
taken when none waits, whatever its size."""

current_request: ContextVar[Request | None] = ContextVar("current_request", default=None)
"""The request whose handler is running in this task (None outside handlers)."""


class Dispatch(Answering):
    """Receiving, one decoded frame at a time (:meth:`_dispatch`)."""

    async def _dispatch(self, frame: Buffer) -> None:
        try:
            value = self.codec.decode(frame)
        except CodecError as exc:
            await self._bad_input(whole_frame(frame), exc)
            return
        if self.tracer is not None:
            self.tracer.received(value, len(frame) + self._frame_overhead)
        message = JsonRpcProtocol.parse(value)
        if self._recycle is not None and type(message) is not InvalidMessage:
            self._recycle(frame)  # decoded: nothing refers to the frame's bytes any more
        if not self._answer(message):
            await self._dispatch_message(frame, message)

    def _answer(self, message: Any) -> bool:
        """Act on ``message`` now if it answers a request of ours (True); False otherwise.

        Synchronous: an answer completes its request without waiting for anything, so a reader
        may complete requests in the callback that finds the bytes (see :mod:`._fast_reader`).
        """
        kind = type(message)
        if kind is Response:
            self._complete(message.id, message.result, None)
            return True
        if kind is ErrorResponse and message.id is not None:
            metrics = self.metrics
            if metrics is not None and message.id in self._pending:  # not late answers
                errors = metrics.errors_received
                errors[message.code] = errors.get(message.code, 0) + 1
            error = RemoteError(message.code, message.message, _data(message.data))
            self._complete(message.id, None, error)
            return True
        return False

    def _start_request_now(self, request: Request) -> bool:
        """Start the handler of ``request`` now if nothing has to wait for it to start (True):
        a plain request, a handler, a free slot. False: :meth:`_start_request` decides.

        Synchronous, like :meth:`_answer`: a reader may start requests in the callback that
        finds their bytes, with no trip through its task.
        """
        if self._draining or request.id in self._running:
            return False
        entry = self._request_handlers.get(request.method)
        params = request.params
        if (
            entry is None
            or (type(params) is dict and STREAM_KEY in params)
            or (self._receive_hooks and (False, request.method) in self._receive_hooks)
            or self._task_group is None
        ):
            return False
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            return False
        if self.metrics is not None:
            self.metrics.requests_received += 1
        self._run(request, entry, None)
        return True

    def _run(
        self, request: Request, entry: tuple[Handler, bool], streams: RequestStreams | None
    ) -> None:
        """Run ``request``'s handler, its slot taken: a plain function here (:meth:`_run_plain`)
        unless it has streams or the write queue is over its limit; otherwise as a task."""
        if streams is None and not entry[1] and self._outbox.size <= OUTBOX_LIMIT:
            self._run_plain(request, entry[0])
        else:
            self._start_task(request, entry, streams)

    def _start_task(
        self, request: Request, entry: tuple[Handler, bool], streams: RequestStreams | None
    ) -> None:
        assert self._task_group is not None
        scope = anyio.CancelScope()
        self._running[request.id] = scope
        self._task_group.start_soon(self._run_request, request, entry, scope, streams)

    def _run_plain(self, request: Request, handler: Handler) -> None:
        """Run a plain function's request here, in the reader, and write its answer without
        waiting. A plain function runs on the loop thread wherever it is called; calling it
        here saves the task, its cancel scopes and a trip through the loop: about a third of
        what a small request costs a worker. The reader looked at the outbox's size first, so a
        peer that stops reading still stops the reader. Releases the slot taken for it, unless
        the function returned an awaitable or an async generator: a task finishes those."""
        response: dict[str, Any] | None = None  # None: the worker is ending, no answer
        try:
            result = copy_context().run(_call_plain, handler, request)
        except BaseException as exc:
            if handler_failed(exc, None):
                response = self._failed_response(request, exc)
            elif not self._handler_exited(exc):
                raise
        else:
            if inspect.isawaitable(result) or inspect.isasyncgen(result):
                # A task awaits it, as it would the function's result (the slot goes with it).
                self._start_task(request, (lambda _params: result, False), None)
                return
            response = self.protocol.response(request.id, result)
        try:
            if response is not None:
                self._answer_now(request, response)
        finally:
            self._slots.release()
            self._request_done()

    async def _dispatch_message(self, frame: Buffer, message: Any) -> None:
        """Act on a message that is not an answer (:meth:`_answer` said False)."""
        metrics = self.metrics  # bytes in: counted by the read loop, per read
        kind = type(message)
        if kind is Request:
            assert isinstance(message, Request)
            if metrics is not None:
                metrics.requests_received += 1
            await self._start_request(message)
        elif kind is Notification:
            assert isinstance(message, Notification)
            if metrics is not None:
                metrics.notifications_received += 1
            await self._queue_notification(message, len(frame))
        elif kind is ErrorResponse:  # with id null: the peer could not tell which request
            assert isinstance(message, ErrorResponse)
            error = RemoteError(message.code, message.message, _data(message.data))
            self._log.warning("%s: the peer reported an error: %s", self.name, error)
        else:
            assert isinstance(message, InvalidMessage)
            answer = not message.reply or message.no_method  # not a request of the peer's
            if answer and message.id is not None and message.id in self._pending:
                # An invalid answer to a request of ours: that request fails now, with why.
                self._complete(message.id, None, ProtocolError(f"{self.name}: {message.reason}"))
                return
            hook = self.bad_input_hook
            if hook is not None and hook(whole_frame(frame), ProtocolError(message.reason)):
                return
            if message.reply:
                await self._reply_error(message.id, message.code, message.reason)
            else:
                self._log.warning("%s: dropped an invalid response: %s", self.name, message.reason)

    async def _bad_input(self, frame: Buffer | None, error: IpcError) -> None:
        if isinstance(error, CodecError) and frame is not None and self._pending:
            answer_id = recover_answer_id(self.codec.name, frame)
            if answer_id is not None and answer_id in self._pending:
                # The answer to a request of ours that does not decode (spec 4.8): that request
                # fails now, with why, instead of waiting for its timeout.
                text = f"{self.name}: the answer to request {answer_id!r} does not decode: {error}"
                # Its caller gets this error: a warning would say it twice (the CLI printed both).
                self._log.debug("%s", text)
                self._complete(answer_id, None, ProtocolError(text))
                return
        if isinstance(error, SizeLimitError) and error.head and self._pending:
            answer_id = recover_answer_id_from_head(error.head)
            if answer_id is not None and answer_id in self._pending:
                # An answer of ours over the line limit (a worker without an SDK: spec 4.9 has
                # the responder send -32005 instead): its request fails now, saying so, instead
                # of waiting for its timeout.
                size = f"more than {error.limit}" if error.size is None else str(error.size)
                text = (
                    f"{self.name}: the answer to request {answer_id!r} is a line of {size} bytes, "
                    f"over max_line_length of {error.limit} bytes, and was skipped (a responder "
                    "answers -32005 instead, spec 4.9: large results go on the data channel)"
                )
                self._log.debug("%s", text)
                self._complete(answer_id, None, ProtocolError(text))
                return
        if self.bad_input_hook is not None and self.bad_input_hook(frame, error):
            return
        if isinstance(error, CodecError):
            self._log.warning("%s: the peer sent an undecodable message: %s", self.name, error)
            request_id = None if frame is None else recover_id(self.codec.name, frame)
            await self._reply_error(request_id, ErrorCode.PARSE_ERROR, f"Parse error: {error}")
        elif isinstance(error, SizeLimitError):
            await self._reply_error(None, ErrorCode.MESSAGE_TOO_LARGE, str(error), error.data)
        else:
            self._log.warning("%s: %s", self.name, error)

    async def _reply_error(
        self, request_id: MessageId | None, code: int, text: str, data: Any = ABSENT
    ) -> None:
        await self._send_quietly(self.protocol.error_response(request_id, code, text, data))

    def _complete(self, request_id: MessageId, result: Any, error: BaseException | None) -> None:
        """Complete our request ``request_id`` with its result, or fail it with ``error``."""
        self._complete_answers([request_id, result], error)

    def _complete_answers(self, answers: list[Any], error: BaseException | None = None) -> None:
        """Complete the requests ``answers`` answers (flat: id, result, id, result...), or fail
        them with ``error``; then empty it. The reader gives it every answer one read brought,
        in one call: a small answer's way to its caller is a handful of calls."""
        pending, metrics = self._pending, self.metrics
        for index in range(0, len(answers), 2):
            request_id = answers[index]
            waiter = pending.pop(request_id, None)
            if waiter is None:
                self._log.debug("%s: dropped a response to unknown id %r", self.name, request_id)
                continue
            if waiter.sent:  # set only when the channel keeps metrics; observe(), inline
                assert metrics is not None
                bucket = ((perf_counter_ns() - waiter.sent) >> BUCKET_SHIFT).bit_length()
                metrics.latency[bucket if bucket < BUCKETS else BUCKETS - 1] += 1
            waiter.result, waiter.error = answers[index + 1], error
            event = waiter.event
            if type(event) is FutureWaiter:  # its set(), inline: one call fewer per answer
                if not event.done():  # done: its caller was cancelled meanwhile
                    event.set_result(None)
            else:
                event.set()
            if waiter.stream and self._streams is not None:  # the answer ends its streams (13.2)
                self._streams.on_response(request_id, waiter.result, error)
        answers.clear()

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
        streams = None
        params = request.params
        if type(params) is dict and STREAM_KEY in params:
            opened = await self._accept_streams(request)
            if opened is None:
                return
            request, streams = opened
        self._run_receive_hook(False, request.method, request.params)
        await self._slots.acquire()  # the reader waits for a free slot: nothing is dropped
        self._run(request, entry, streams)

    async def _run_request(
        self,
        request: Request,
        entry: tuple[Handler, bool],
        scope: anyio.CancelScope,
        streams: RequestStreams | None = None,
    ) -> None:
        handler, is_async = entry
        current_request.set(request)
        slot = HandlerSlot(self._slots)
        current_slot.set(slot)
        if streams is not None:
            set_current_streams(streams)
        try:
            try:
                response = await self._handled(request, handler, is_async, scope)
            except BaseException as exc:
                if self._handler_exited(exc):
                    return  # the worker is ending: no answer
                if not scope_cancellation(exc, scope):  # asyncio: see scope_cancellation
                    raise
                response = None
            if response is None:  # our scope caught the cancellation: $/cancelRequest or drain
                response = self.protocol.error_response(
                    request.id, ErrorCode.REQUEST_CANCELLED, "request cancelled"
                )
            if self._abandoned and request.id in self._abandoned:
                self._abandoned.discard(request.id)  # answered -32002 already (drain)
            elif streams is None or self._stream_answered(request.id):
                await self._send_response(request, response)
        finally:
            self._running.pop(request.id, None)
            slot.release()
            self._request_done()

    def _request_done(self) -> None:
        if self._request_watchers:
            finished, self._request_finished = self._request_finished, anyio.Event()
            finished.set()

    def _notification_now(self, message: Notification, size: int) -> bool:
        """Act on ``message`` now if nothing has to wait (True). False: its handler's queue is
        full, and :meth:`_queue_notification` waits for room. Synchronous, like :meth:`_answer`.
        """
        method = message.method
        if method in STREAM_METHODS:  # at once, in arrival order (spec 13.4)
            self._stream_table().feed(method, message.params)
            if self._streams is not None and self._streams.outbox:
                self._flush_soon()  # what the message made the table answer
            return True
        if method == METHOD_CANCEL:
            params = message.params
            if isinstance(params, dict) and type(params.get("id")) in (int, str):
                scope = self._running.get(params["id"])
                if scope is not None:
                    scope.cancel()
                    if self._streams is not None:
                        self._streams.on_peer_cancel(params["id"])
            return True
        entry = self._notification_handlers.get(method)
        if entry is not None:
            # A bounded queue to one task: the reader never waits on a notification handler,
            # and a handler may call the peer. Bounded in bytes too (spec 4.5).
            queued = self._queued_notification_bytes
            if queued and queued + size > QUEUED_NOTIFICATION_BYTES:
                return False
            try:
                self._notifications_in.send_nowait(
                    (method, entry[0], entry[1], message.params, size)
                )
            except anyio.WouldBlock:
                return False
            self._queued_notification_bytes = queued + size
        self._run_receive_hook(True, method, message.params)
        if entry is None and not method.startswith(RESERVED_PREFIX):
            self._log.debug("%s: no handler for notification %r", self.name, method)
        return True

    async def _queue_notification(self, message: Notification, size: int) -> None:
        if message.method in STREAM_METHODS:  # flushed before the next message is read
            await self._on_stream_message(message.method, message.params)
            return
        if self._notification_now(message, size):
            return
        entry = self._notification_handlers[message.method]
        while (  # backpressure: the bytes queued (the reader reads nothing meanwhile)
            self._queued_notification_bytes
            and self._queued_notification_bytes + size > QUEUED_NOTIFICATION_BYTES
        ):
            await self._notification_taken.wait()
        await self._notifications_in.send(  # backpressure: their number
            (message.method, entry[0], entry[1], message.params, size)
        )
        self._queued_notification_bytes += size
        self._run_receive_hook(True, message.method, message.params)

    def _run_receive_hook(self, notification: bool, method: str, params: Any) -> None:
        """The reserved method's ``on_receive`` hook, if it has one (see ``_on_reserved_*``)."""
        if self._receive_hooks:
            hook = self._receive_hooks.get((notification, method))
            if hook is not None:
                hook(params)

    async def _notification_loop(self) -> None:
        async for method, handler, is_async, params, size in self._notifications_out:
            self._queued_notification_bytes -= size
            taken, self._notification_taken = self._notification_taken, anyio.Event()
            taken.set()
            try:
                result = await handler(params) if is_async else handler(params)
                if not is_async and inspect.isawaitable(result):
                    await result
            except (SystemExit, KeyboardInterrupt) as exc:
                if self._handler_exited(exc):
                    return
                raise
            except Exception as exc:  # logged, and the next one runs (spec 4.5)
                self._log.warning(
                    "%s: the handler of notification %r failed: %r",
                    self.name,
                    method,
                    exc,
                    exc_info=True,
                )


def _data(data: Any) -> Any:
    return None if data is ABSENT else data


def _call_plain(handler: Handler, request: Request) -> Any:
    """A plain function's call, in a context of its own (as a task would have)."""
    current_request.set(request)
    return handler(request.params)
