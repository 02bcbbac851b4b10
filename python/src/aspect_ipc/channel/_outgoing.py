"""Our side's messages: requests and their answers or deadlines, notifications, framing."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from time import monotonic, perf_counter_ns
from typing import Any

import anyio

from ..constants import METHOD_CANCEL
from ..errors import IpcError, RequestTimeout, SizeLimitError, fresh
from ..jsonrpc import MessageId
from ._core import ChannelCore
from ._outbox import OUTBOX_LIMIT, Buffer
from ._pending import FutureWaiter, Pending
from ._slots import current_slot

__all__ = ["Outgoing", "borrows"]


class Outgoing(ChannelCore):
    """Sending: :meth:`request`, :meth:`notify`, and the deadline task of our requests."""

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
        limit = self.default_timeout if timeout is None else timeout
        called = monotonic()  # the deadline counts from the call, a wait for room included
        if self._outbox.size > OUTBOX_LIMIT:  # a peer that does not read: encode nothing yet
            await self._wait_for_room(method, limit)
        message = self.protocol.request(method, params)
        request_id = message["id"]
        waiter = Pending(self._new_waiter())
        if self.metrics is not None:
            waiter.sent = perf_counter_ns()
        self._pending[request_id] = waiter
        answered = framed = unsent = False
        slot = current_slot.get()  # in a handler of the peer's request: its place (spec 4.5)
        if slot is not None:
            slot.waiting()
        try:
            # Most requests: the whole frame from the compiled core, written (or queued behind
            # what is) in one more call.
            frame = None
            compiled = self._pack_frame is not None and self.tracer is None
            if compiled:
                assert self._pack_frame is not None and self._frame_limit_of is not None
                frame = self._pack_frame(self._frame_limit_of.max_frame_size, message)
            framed = frame is not None
            sent = frame is not None and self._outbox.write_frame(frame)
            # Once written, the peer is already at it: what is left here keeps nobody waiting.
            if limit is not None and not math.isinf(limit):
                self._deadlines.add(called + limit, request_id)
            if frame is not None and self.metrics is not None:
                self.metrics.requests_sent += 1
            if not sent:
                if frame is None:  # counted and traced as it is framed
                    parts = self._prepare(message, "request", compiled=not compiled)
                    framed = True
                else:
                    parts = [frame]
                if not self._outbox.put_nowait(parts):
                    waiter.queued = True
                    # Its answer may come after its last byte is written, or it times out here.
                    put = await self._outbox.put(parts, waiter.event)
                    waiter.queued = False
                    if waiter.timed_out and put:  # the deadline left this to us: it went out
                        self._cancel_remote(request_id)
                    unsent = not put
            event = waiter.event
            # Alone in flight (asyncio): a busy poll or a wait in the receive call may answer
            # the request here, and then the await below does not yield, unless what was read
            # woke something that must run first.
            if len(self._pending) == 1 and self._poll is not None and self._poll(event):
                await asyncio.sleep(0)
            await (event if type(event) is FutureWaiter else event.wait())  # a future: itself
            answered = True
        finally:
            if slot is not None:
                slot.answered()
            # The caller was cancelled, or the send failed: the peer may have the request, so
            # it is told; not when the request could not even be encoded.
            if not answered and self._pending.pop(request_id, None) is not None and framed:
                self._cancel_remote(request_id)
        if waiter.timed_out:
            told = (
                "it was never sent: it waited for room in the write queue, which the peer did "
                "not read"
                if unsent
                else "the peer was sent $/cancelRequest"
            )
            raise RequestTimeout(
                f"{self.name}: no response to {method!r} (id {request_id}) within {limit:g} s; "
                + told
            )
        if waiter.error is not None:
            raise fresh(waiter.error)
        return waiter.result

    def request_from_thread(
        self,
        method: str,
        params: Any,
        waiter: Pending,
        on_loop: Callable[[Callable[[], None]], object],
    ) -> bool:
        """Send a request from a thread other than the loop's (the blocking API), if it can be
        written now, as ``waiter`` (made by the caller, with the event to set once it is
        answered or fails: the channel closes). False: nothing was sent (the channel is closed,
        traced, or its queue is not empty): send it with :meth:`request` on the loop.

        No deadline is kept for it: the caller waits on its event with its timeout, then takes
        the request back with :meth:`withdraw_from_thread`, which the caller may call whenever
        it gives up, even if this was interrupted (Ctrl-C) part way: ``waiter`` is the caller's
        from the start, so nothing registered here can be left behind. ``on_loop`` runs a
        function on the loop thread. Raises what :meth:`request` raises for a message it cannot
        encode.
        """
        if self._closed or self.tracer is not None:
            return False
        message = self.protocol.request(method, params)
        parts = self._frame(message, "request")
        request_id = message["id"]
        answered = waiter.event
        waiter.id = request_id
        metrics = self.metrics
        if metrics is not None:
            waiter.sent = perf_counter_ns()
        self._pending[request_id] = waiter  # before the send: the answer may beat the next line
        if not self._outbox.send_from_thread(parts, on_loop):
            # Not sent, unless the channel closed meanwhile and failed it (no longer pending).
            return self._pending.pop(request_id, None) is None
        if metrics is not None:
            metrics.requests_sent += 1
        if self._closed and self._pending.pop(request_id, None) is not None:
            waiter.error = self._close_reason  # it closed after the test above, before we added it
            answered.set()
        return True

    def notify_from_thread(
        self, method: str, params: Any, on_loop: Callable[[Callable[[], None]], object]
    ) -> bool:
        """Send a notification from a thread other than the loop's, if it can be written now
        (as :meth:`request_from_thread`); False: nothing was sent, use :meth:`notify`. A
        notification whose encode hook lent buffers is never sent from a thread: it returns
        only once they are written, which the loop's writer tells."""
        if self._closed or self.tracer is not None:
            return False
        parts = self._frame(self.protocol.notification(method, params), "notification")
        if borrows(parts):
            return False
        if not self._outbox.send_from_thread(parts, on_loop):
            return False
        if self.metrics is not None:
            self.metrics.notifications_sent += 1
        return True

    def withdraw_from_thread(self, waiter: Pending) -> bool:
        """Take back a request of :meth:`request_from_thread` whose caller gave up waiting
        (timeout, KeyboardInterrupt): True if it was still pending. Then, on the loop thread,
        :meth:`cancel_withdrawn` tells the peer."""
        if self._pending.get(waiter.id) is not waiter:  # never registered, or answered
            return False
        return self._pending.pop(waiter.id, None) is not None

    async def cancel_withdrawn(self, waiter: Pending, timed_out: bool) -> None:
        """Send ``$/cancelRequest`` for a request withdrawn by its thread; count its timeout."""
        if timed_out and self.metrics is not None:
            self.metrics.timeouts += 1
        self._cancel_remote(waiter.id)

    async def _wait_for_room(self, method: str, limit: float | None) -> None:
        """Wait for room in the write queue within the request's ``limit``: a request that
        finds none in time was never sent."""
        if limit is None or math.isinf(limit):
            await self._outbox.room()
        else:
            with anyio.move_on_after(limit):
                await self._outbox.room()
        if self._closed:
            raise fresh(self._close_reason)
        if self._outbox.size > OUTBOX_LIMIT:
            if self.metrics is not None:
                self.metrics.timeouts += 1
            raise RequestTimeout(
                f"{self.name}: {method!r} was not sent within {limit:g} s: the peer read none of "
                f"the {self._outbox.size} bytes queued before it"
            )

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no answer is expected)."""
        if self._closed:
            raise fresh(self._close_reason)
        await self._send(self.protocol.notification(method, params), "notification")

    async def _send(self, message: dict[str, Any], what: str | None = None) -> None:
        """Queue ``message`` (not a request: see :meth:`request`) for the writer; wait only
        while the queue is over its limit. ``what``: as for :meth:`_frame`."""
        if self._outbox.size > OUTBOX_LIMIT:  # a peer that does not read: encode nothing yet
            await self._outbox.room()
            if self._closed:
                raise fresh(self._close_reason)
        parts = self._prepare(message, what)
        # A borrowed buffer must be written before a notification's send returns.
        await self._outbox.put(parts, borrowed=borrows(parts))

    def _prepare(
        self, message: dict[str, Any], what: str | None = None, *, compiled: bool = True
    ) -> list[Buffer]:
        """``message``'s frame (see :meth:`_frame`), counted and traced as sent."""
        parts = self._frame(message, what, compiled=compiled)
        metrics = self.metrics
        if metrics is not None:  # bytes out: counted by the writer, per batch
            if "error" in message:
                code = message["error"]["code"]
                metrics.errors_sent[code] = metrics.errors_sent.get(code, 0) + 1
            elif "method" in message:
                if "id" in message:
                    metrics.requests_sent += 1
                else:
                    metrics.notifications_sent += 1
        if self.tracer is not None:
            self.tracer.sent(message, sum(map(len, parts)))
        return parts

    def _frame(
        self, message: dict[str, Any], what: str | None = None, *, compiled: bool = True
    ) -> list[Buffer]:
        """``message``'s frame, as buffers to write in order. ``what`` ("request"...) names the
        message in the SizeLimitError of one that is too large, with the limit to raise.
        ``compiled=False``: the compiled core declined it already, do not ask again."""
        try:
            pack_frame, prefixed = self._pack_frame, self._frame_limit_of
            if compiled and pack_frame is not None and prefixed is not None:
                frame = pack_frame(prefixed.max_frame_size, message)
                if frame is not None:
                    return [frame]
            encode_parts = self._encode_parts
            if encode_parts is not None:
                body = encode_parts(message)  # large binaries are not copied
                if len(body) > 1:
                    assert self._header is not None
                    return [self._header(sum(map(len, body))), *body]
                return self.framing.encode_parts(body[0])
            return self.framing.encode_parts(self.codec.encode(message))
        except SizeLimitError as exc:
            if what is None:
                raise
            raise _named_size_error(exc, what) from None

    async def _deadline_loop(self) -> None:
        deadlines, pending = self._deadlines, self._pending
        while True:
            earliest = deadlines.next()
            deadline = math.inf if earliest is None else earliest[0]
            delay = deadline - monotonic()
            if delay > 0:
                deadlines.sleeping_until = deadline  # an earlier one wakes it (Deadlines.add)
                with anyio.move_on_after(delay):
                    await deadlines.wake.wait()
                deadlines.wake = anyio.Event()
                continue
            assert earliest is not None
            request_id = earliest[1]
            deadlines.pop()
            waiter = pending.pop(request_id)
            waiter.timed_out = True
            if self.metrics is not None:
                self.metrics.timeouts += 1
            waiter.event.set()
            self._outbox.wake_senders()  # its request may still be waiting for room in the queue
            if not waiter.queued:  # else its sender knows whether the peer has it (request)
                self._cancel_remote(request_id)

    def _cancel_remote(self, request_id: MessageId) -> None:
        if self._closed or self._task_group is None:
            return
        message = self.protocol.notification(METHOD_CANCEL, {"id": request_id})
        self._spawn(self._send_quietly, message)

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except IpcError as exc:
            self._log.debug("%s: could not send %s: %s", self.name, message.get("method"), exc)


def borrows(parts: list[Buffer]) -> bool:
    """Whether ``parts`` include a buffer of the caller's (from an encode hook), written from
    where it is; the codec's own parts are ``bytes`` or views of the ``bytes`` it packed. A frame
    of a header and one body (most frames) has none."""
    return len(parts) > 2 and any(
        type(part) is memoryview and type(part.obj) is not bytes for part in parts
    )


def _named_size_error(exc: SizeLimitError, what: str) -> SizeLimitError:
    """Say what could not be sent: "request of 5000 bytes exceeds max_frame_size of ..."."""
    limit = "max_frame_size" if exc.kind == "frame_too_large" else "max_line_length"
    advice = "split the payload" if exc.kind == "frame_too_large" else "use the data channel"
    return SizeLimitError(
        exc.kind,
        f"{what} of {exc.size} bytes exceeds {limit} of {exc.limit} bytes; raise {limit} "
        f"or {advice}",
        fatal=False,
        size=exc.size,
        limit=exc.limit,
    )
