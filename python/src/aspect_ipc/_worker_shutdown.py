"""How a worker stops: the ``$/shutdown`` sequence (spec 8.1), and signals, stdin EOF and
parent death (8.3, 8.4), each of which cancels the handlers before the control channel closes.

:class:`Stopping` is a part of :class:`aspect_ipc.worker.Worker`, kept here for its size.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._worker_hooks import Hooks
from ._worker_stop import cancel_handlers
from .channel import Channel, current_request
from .errors import ChannelClosed, RemoteError
from .shutdown import ShutdownReason, shutdown_timeout
from .worker_exit import ExitGuard

__all__ = ["Stopping"]


class Stopping:
    """The worker's stopping paths; the attributes below are the worker's."""

    shutdown_timeout: float
    _control: Channel | None
    _data: Channel | None
    _task_group: TaskGroup | None
    _stopping: bool
    _guard: ExitGuard | None
    _hooks: Hooks

    def _shutting_down(self, reason: ShutdownReason) -> None:
        """Shutting down begins, for ``reason``: the hook is called once, whatever follows."""
        if self._stopping:
            return
        self._stopping = True
        self._hooks.call("shutting_down", reason)

    # -- signals, stdin EOF, parent death (spec 8.3, 8.4) ----------------------------------

    async def _watch_exit(self, guard: ExitGuard) -> None:
        reason = await guard.wait()  # a signal, stdin EOF, or the watchdog saw the parent die
        await self._stop_handlers(guard)
        assert self._control is not None
        self._control.close(ChannelClosed(f"the worker is exiting: {reason}"))

    async def _stdin_closed(self) -> None:
        """Stdin is at EOF (the control channel's reader is about to see it): the parent is
        gone, but stdout may still work, so the handlers are cancelled while it can carry what
        they send (spec 8.3), then the channel closes."""
        guard = self._guard
        assert guard is not None
        guard.exit_due("stdin closed", ShutdownReason.STDIN_EOF, parent_gone=True)
        await self._stop_handlers(guard)

    async def _stop_handlers(self, guard: ExitGuard) -> None:
        """Cancel the handlers on both channels and give them a moment to answer and send
        what they send on cancellation, within the exit budget; then the caller closes."""
        assert guard.cause is not None
        self._shutting_down(guard.cause)
        await cancel_handlers((self._control, self._data))

    # -- $/shutdown (spec 8.1) -------------------------------------------------------------

    async def _on_shutdown(self, params: Any) -> None:
        timeout = shutdown_timeout(params, self.shutdown_timeout)  # -32602: no shutdown
        request = current_request.get()
        keep = request.id if request else None
        with anyio.CancelScope(shield=True):  # $/cancelRequest does not stop a shutdown (8.1)
            await self._drain(timeout, keep=keep, reason=ShutdownReason.SHUTDOWN_REQUEST)
        assert self._task_group is not None
        self._task_group.start_soon(self._close_after, keep, ShutdownReason.SHUTDOWN_REQUEST)

    def _shutdown_received(self, params: Any) -> None:
        with contextlib.suppress(RemoteError):  # invalid params: answered -32602, no shutdown
            shutdown_timeout(params, self.shutdown_timeout)
            self._refuse_requests(params)

    def _refuse_requests(self, params: Any) -> None:
        """From the moment ``$/shutdown`` is read: new requests on both channels get -32004."""
        for channel in (self._control, self._data):
            if channel is not None:
                channel.refuse_new_requests()

    async def _on_shutdown_notification(self, params: Any) -> None:
        if self._stopping or self._task_group is None:
            return
        try:
            timeout = shutdown_timeout(params, self.shutdown_timeout)
        except RemoteError:
            timeout = self.shutdown_timeout  # nobody to tell: shut down with the default
        self._task_group.start_soon(self._drain_and_close, timeout, ShutdownReason.SHUTDOWN_REQUEST)

    async def _drain_and_close(self, timeout: float, reason: ShutdownReason) -> None:
        await self._drain(timeout, keep=None, reason=reason)
        await self._close_after(None, reason)

    async def _drain(self, timeout: float, *, keep: Any, reason: ShutdownReason) -> None:
        self._shutting_down(reason)
        async with anyio.create_task_group() as task_group:
            for channel, keep_id in ((self._control, keep), (self._data, None)):
                if channel is not None:
                    task_group.start_soon(functools.partial(channel.drain, timeout, keep=keep_id))

    async def _close_after(self, request_id: Any, reason: ShutdownReason) -> None:
        """Close the control channel once ``request_id`` (if any) has been answered."""
        control = self._control
        if control is None:
            return
        with anyio.move_on_after(5.0):
            await control.wait_requests(lambda: request_id not in control._running)
        if self._guard is not None:  # the $/shutdown result is queued: exit within the budget
            self._guard.exit_due("the $/shutdown result was written", reason)
        control.close(ChannelClosed("the worker shut down"))
