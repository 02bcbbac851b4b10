"""Channel: JSON-RPC over a framed, encoded transport, concurrent in both directions.

Theory of operation: one reader task (:mod:`._inbound`) turns bytes into frames (framing), frames
into values (codec) and values into messages (jsonrpc), and :mod:`._dispatch` acts on each:
responses complete pending requests by id (:mod:`._pending`); requests run as tasks in the
channel's task group, at most ``max_concurrent_handlers`` at once (the reader waits for a free
slot: backpressure, nothing dropped); notifications go, in order, through a bounded queue to one
dispatcher task, so the reader never waits on a notification handler and a handler may call the
peer. Sends (:mod:`._outgoing`) queue frames in the outbox (:mod:`._outbox`), whose one writer
task sends what has queued up in one system call, and senders wait while it is full. When the
reader ends (EOF, transport error, fatal framing error) or the channel is closed, every pending
request fails at once and every task is cancelled (:mod:`._core`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from ..errors import ChannelClosed
from ..jsonrpc import ErrorCode, MessageId
from ._handlers import Handler, check_handler, check_user_method
from ._inbound import Inbound

__all__ = ["Channel"]

# How long drain() waits for cancelled handlers to answer -32002 before it gives up on them.
_CANCELLED_GRACE = 0.5


class Channel(Inbound):
    """A JSON-RPC 2.0 endpoint over one transport; an async context manager.

    Use :class:`ChannelBuilder` to make one. Inside ``async with channel:`` the channel reads,
    dispatches and answers; leaving the block closes it and fails what is still pending.
    """

    # -- registration --------------------------------------------------------------------------

    def on_request(self, method: str, handler: Handler, *, input_window: int | None = None) -> None:
        """Answer requests for ``method`` with ``handler(params)`` (its return value, or error).

        ``input_window`` (1..1024, default 16): the items of an input stream this channel
        buffers for the handler, the credit it grants at once (spec 13.3).
        """
        check_user_method(method)
        check_handler(method, handler)
        if input_window is not None or self._streams is not None:  # no stream table made idly
            self.set_input_window(method, input_window)
        self._request_handlers[method] = (handler, inspect.iscoroutinefunction(handler))

    def on_notification(self, method: str, handler: Handler) -> None:
        """Call ``handler(params)`` for each notification ``method``, in arrival order."""
        check_user_method(method)
        check_handler(method, handler)
        self._notification_handlers[method] = (handler, inspect.iscoroutinefunction(handler))

    def _on_reserved_request(
        self, method: str, handler: Handler, *, on_receive: Callable[[Any], None] | None = None
    ) -> None:
        """Like :meth:`on_request`; ``on_receive(params)`` runs in the reader, as the request
        is read, before anything after it is (the handler itself then runs as any handler does)."""
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

    async def __aenter__(self) -> Channel:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._closed = False
        self._spawn(self._read_loop)
        self._spawn(self._notification_loop)
        self._spawn(self._deadline_loop)
        self._outbox.metrics = self.metrics  # it counts the bytes it writes
        # Not cancelled: it flushes, then ends.
        self._task_group.start_soon(self._outbox.run, self.transport, self._write_failed)
        return self

    def _write_failed(self, error: Exception) -> None:
        self.close(ChannelClosed(f"{self.name}: {error}"))

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
        with anyio.move_on_after(_CANCELLED_GRACE):
            await self.wait_requests(only_keep_runs)
        # Handlers that ignore their cancellation are not waited for longer: their requests are
        # answered -32002 on their behalf, now, before the $/shutdown result (spec 8.1, step 3),
        # and whatever they produce later is dropped.
        for request_id in [request_id for request_id in self._running if request_id != keep]:
            self._running.pop(request_id)
            self._abandoned.add(request_id)
            await self._reply_error(request_id, ErrorCode.REQUEST_CANCELLED, "request cancelled")

    async def wait_requests(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` is true, checking it each time an incoming request finishes."""
        self._request_watchers += 1
        try:
            while not done():
                await self._request_finished.wait()
        finally:
            self._request_watchers -= 1

    @property
    def write_failed(self) -> bool:
        """Whether the channel closed because a write failed (the peer stopped reading)."""
        return self._outbox.failed
