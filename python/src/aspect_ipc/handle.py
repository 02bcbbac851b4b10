"""ProcessHandle: one supervised worker, across its restarts.

Theory of operation: a supervisor task (in the manager's task group) runs *incarnations* one after
another. An incarnation starts the process (:mod:`._child`), runs the handshake of spec section 7
(:mod:`._startup`), serves both channels until the process exits or a channel breaks, then fails
whatever is pending with ``WorkerCrashed`` (or ``ChannelClosed`` after a clean exit) and reports
the outcome. The supervisor then stops, gives up, or restarts after the policy's backoff. Callers
hold the handle, not a process: a request made while the worker is (re)starting waits for it to
be running, within the request's timeout.

A stop is a request to the supervisor, final at every moment of the life cycle: it cancels a
backoff, prevents the next incarnation, and a *stopper* task inside the current incarnation
escalates (``$/shutdown`` when the worker is serving, then SIGTERM, then SIGKILL to its process
group) while the incarnation goes on to its end as usual. Every incarnation, however it ends
(an error, a cancelled ``spawn()``, a stop), kills what is left of the process group, waits for
the exit, removes a stale socket file, reaps the process and closes every descriptor, shielded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio

from . import _fork
from ._calls import check_grace, check_timeout
from ._events import Listener
from ._handle_core import Settings, SpawnSpec
from ._handle_streams import Items, StreamCalls, translate_call_error
from ._incarnation import TERM_WAIT
from ._logging import crash_summary
from ._supervision import Supervision
from ._trace import Tracer
from .channel import Channel, Handler, check_request_method, check_user_method
from .errors import (
    ChannelClosed,
    RemoteError,
    RequestTimeout,
    WorkerUnavailable,
)
from .metrics import ChannelMetrics, WorkerStats
from .options import WorkerState

_RUNNING = WorkerState.RUNNING  # a module global: reading an enum member off its class is slow

__all__ = ["TERM_WAIT", "ProcessHandle", "Settings", "SpawnSpec"]


class ProcessHandle(StreamCalls, Supervision):
    """A worker under supervision, across its restarts. Obtained from
    :meth:`ProcessManager.spawn`.

    Attributes:
        id: the worker id given to ``spawn`` (also the worker's ``ASPECT_IPC_WORKER_ID``).
        pid: the process id of the current (or last) incarnation; None before the first start.
        restarts: how many restarts were scheduled after a crash (one per ``restart`` event;
            not those of ``restart()``), including one a stop cancelled during its backoff.
        exit_code: the last incarnation's exit code; None while it runs, or if a signal ended it.
        signal: the signal number that ended the last incarnation, else None.
        state: the life cycle state (:class:`WorkerState`).
        spec: what the worker was spawned with (:class:`SpawnSpec`).
    """

    # -- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
        """starting, running, stopping, stopped, restarting or failed."""
        return self._state

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        input: Items | None = None,
    ) -> Any:
        """Call ``method`` on the control channel (JSON over stdio) and return the result.

        A request made while the worker is starting or restarting waits until it runs, within
        ``timeout`` (default: the manager's ``request_timeout``; ``math.inf``: no limit).

        Raises:
            ValueError: ``timeout`` is not a positive number of seconds.
            RemoteError: the worker answered with an error (its text names the worker, the
                channel and the method).
            RequestTimeout: no answer within ``timeout`` (the worker is sent ``$/cancelRequest``).
            WorkerCrashed: the worker died while the request was pending.
            WorkerUnavailable: the worker is stopped, or failed for good (the message says why).

        ``input`` (an iterable or async iterable) sends its items as the request's input stream
        (spec 13), as fast as the worker grants credit; the result comes once the worker has
        answered (an exception raised by ``input`` reaches the worker as ``$/stream/error``).
        """
        if input is not None:
            return await self._request_streaming("control", method, params, input, timeout)
        return await self._call("control", method, params, timeout)

    async def request_via_data(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        input: Items | None = None,
    ) -> Any:
        """Like :meth:`request`, on the data channel (MessagePack over the socket)."""
        if input is not None:
            return await self._request_streaming("data", method, params, input, timeout)
        return await self._call("data", method, params, timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification on the control channel."""
        check_user_method(method)
        await (await self._channel_when_running("control")).notify(method, params)

    async def notify_via_data(self, method: str, params: Any = None) -> None:
        """Send a notification on the data channel."""
        check_user_method(method)
        await (await self._channel_when_running("data")).notify(method, params)

    def on_request(
        self,
        method: str,
        handler: Handler,
        *,
        via: str = "control",
        input_window: int | None = None,
    ) -> None:
        """Answer requests the worker sends on ``via`` (``"control"`` or ``"data"``).

        ``input_window`` (1..1024, default 16): how many items of an input stream the worker
        opens with such a request are buffered for ``handler`` (spec 13.3).
        """
        live = self._live(via)
        self._handlers.add(
            via, method, handler, notification=False, live=live, input_window=input_window
        )

    def on_notification(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Handle notifications the worker sends on ``via`` (``"control"`` or ``"data"``)."""
        self._handlers.add(via, method, handler, notification=True, live=self._live(via))

    def on(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` for this worker's events of ``kind`` (an :class:`EventKind`,
        or ``"*"`` for all; see :meth:`ProcessManager.on`).

        Raises:
            ValueError: ``kind`` is not an event kind.
        """
        self._listeners.add(kind, callback)

    def off(self, kind: str, callback: Listener) -> None:
        """Stop calling ``callback`` for this worker's ``kind`` events (see
        :meth:`ProcessManager.off`)."""
        self._listeners.remove(kind, callback)

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop the worker for good, whatever it is doing, and wait until it is stopped.

        A serving worker is sent ``$/shutdown`` and given ``grace`` seconds (default: the
        manager's ``shutdown_grace``) to exit, then SIGTERM and at most ``TERM_WAIT`` (1 s)
        more, then SIGKILL, to its whole process group (spec 8.2). A worker that is starting or
        restarting gets SIGTERM at once, then SIGKILL after ``grace``; a pending restart is
        cancelled. Either way ``stop()`` returns within ``grace`` + 1 s + the time a SIGKILL
        takes. No restart follows a stop. Cancelling the caller does not cancel the stop.

        Raises:
            ValueError: ``grace`` is negative or not a number.
        """
        check_grace("grace", grace)
        if self._generation != _fork.generation:
            raise _fork.forked_error(f"worker {self.id}")
        if not self._stop_requested and not self._done.is_set():
            self._stop_grace = self._settings.shutdown_grace if grace is None else grace
            self._set_state(WorkerState.STOPPING)
            self._stop_requested = True
            self._stop_event.set()
            for scope in (self._backoff_scope, self._slot_wait):
                if scope is not None:
                    scope.cancel()
        await self._done.wait()

    async def restart(self) -> None:
        """Replace the running worker with a new incarnation, and wait until that one runs.

        The current process is ended as :meth:`stop` ends it, with the manager's
        ``shutdown_grace``: ``$/shutdown``, then SIGTERM, then SIGKILL. Its requests in flight
        get the worker's ``$/shutdown`` behaviour: they finish within the grace period, or fail
        with a ``RemoteError`` -32002 (cancelled), or ``ChannelClosed`` if the process is gone
        first. Requests made from the call on wait for the new incarnation, within their
        timeout. The new one starts at once (no backoff); this is not a crash (``restarts``
        and the policy's count are unchanged). Events: ``exit``, ``restart`` with
        ``info["requested"]``, ``spawn``, ``ready``. A :meth:`stop` meanwhile wins.

        Raises:
            WorkerUnavailable: the worker is not running (starting, restarting, stopping,
                stopped or failed), or it was stopped, or failed for good, before the new
                incarnation ran.
        """
        if self._generation != _fork.generation:
            raise _fork.forked_error(f"worker {self.id}")
        if self._state is not WorkerState.RUNNING or self._stop_requested:
            raise WorkerUnavailable(
                f"worker {self.id} cannot be restarted: it is {self._state.value}, and "
                "restart() needs a running worker"
            )
        readies = self._readies
        self._restart_requested = True
        self._last_error = None  # callers of this incarnation see its own verdict, not an old one
        self._set_state(WorkerState.RESTARTING)
        self._restart_event.set()
        while self._readies == readies or self._state is not WorkerState.RUNNING:
            if self._state in (WorkerState.STOPPED, WorkerState.FAILED, WorkerState.STOPPING):
                raise WorkerUnavailable(f"{self._unavailable()}; restart() did not complete")
            await self._changed.wait()

    async def wait(self) -> int | None:
        """Wait until the worker is stopped or failed for good; return its last exit code."""
        await self._done.wait()
        return self.exit_code

    def stats(self) -> WorkerStats:
        """A snapshot of this worker's metrics: per channel (summed over its restarts) requests,
        notifications, bytes, errors by code, timeouts, in flight, queued bytes, round-trip
        latency; its restarts and uptime (see :mod:`aspect_ipc.metrics`). The counters stay at
        zero for a worker spawned with ``metrics=False``."""
        metrics = self._metrics or {}
        since = self._running_since if self._state is WorkerState.RUNNING else None
        control, data = metrics.get("control", ChannelMetrics()), metrics.get("data")
        return WorkerStats(
            worker_id=self.id,
            state=self._state.value,
            pid=self.pid,
            restarts=self.restarts,
            uptime=None if since is None else anyio.current_time() - since,
            control=control.snapshot(self._control),
            data=None
            if self.spec.data_path is None
            else (data or ChannelMetrics()).snapshot(self._data),
        )

    # -- observability (metrics, wire trace) --------------------------------------------------

    _metrics: dict[str, ChannelMetrics] | None = None
    _trace: str | None = None
    _running_since: float | None = None

    _on_handler_exit: Callable[[BaseException], bool] | None = None

    def _observe(
        self,
        *,
        metrics: bool,
        trace: str | None,
        on_handler_exit: Callable[[BaseException], bool] | None = None,
    ) -> None:
        """Made by the manager: count (``metrics``) and trace (None, ``"messages"`` or
        ``"payloads"``) every channel of every incarnation; ``on_handler_exit``: what a handler's
        ``sys.exit()`` (or KeyboardInterrupt) is handed to."""
        self._on_handler_exit = on_handler_exit
        if metrics:
            self._metrics = {"control": ChannelMetrics(), "data": ChannelMetrics()}
        self._trace = trace
        self._handlers.on_install = self._observe_channel

    def _observe_channel(self, channel: Channel, via: str) -> None:
        if via == "control":  # the first channel of an incarnation: it has just started
            self._running_since = anyio.current_time()
        # Tracebacks flow both ways or neither: a worker not trusted with sending its stack
        # (untrusted input) is not sent the parent's either, when a handler here fails.
        channel.send_tracebacks = self.spec.remote_tracebacks
        channel.on_handler_exit = self._on_handler_exit
        if self._metrics is not None:
            channel.metrics = self._metrics[via]
        if self._trace is not None:
            channel.tracer = Tracer(self.id, via, payloads=self._trace == "payloads")

    # -- calls --------------------------------------------------------------------------------

    async def _call(self, via: str, method: str, params: Any, timeout: float | None) -> Any:
        if type(method) is not str or method.startswith("$/"):
            check_request_method(method)  # the library's own methods are not sent from here
        if timeout is None:
            limit = self._settings.request_timeout
        else:
            check_timeout("timeout", timeout)
            limit = timeout
        remaining = limit
        channel = self._running_channel(via)
        if channel is None:
            channel, remaining = await self._when_running(via, method, limit)
        incarnation_done = self._incarnation_done
        try:
            return await channel.request(method, params, timeout=remaining)
        except RequestTimeout:
            raise self._timeout_error(via, method, limit) from None
        except (RemoteError, ChannelClosed) as exc:
            error = await translate_call_error(
                exc, self.id, via, method, lambda: self._crash(incarnation_done)
            )
            if error is exc:
                raise
            raise error from error.__cause__  # a remote stack, or nothing

    async def _when_running(self, via: str, method: str, limit: float) -> tuple[Channel, float]:
        """The channel ``via`` once the worker runs, and what is left of ``limit`` then."""
        finite = not math.isinf(limit)
        started = anyio.current_time()
        try:
            with anyio.fail_after(limit if finite else None):
                channel = await self._channel_when_running(via)
        except TimeoutError:
            raise RequestTimeout(
                f"worker {self.id}: {method!r} was not sent on the {via} channel: the worker "
                f"was not running within {limit:g} s (it is {self._state.value})"
            ) from None
        if finite:
            limit = max(limit - (anyio.current_time() - started), 0.0)
        return channel, limit

    def _timeout_error(self, via: str, method: str, limit: float) -> RequestTimeout:
        """What a call that got no answer within ``limit`` seconds raises."""
        return RequestTimeout(
            f"worker {self.id}: no response to {method!r} on the {via} channel within "
            f"{limit:g} s; the worker was sent $/cancelRequest"
        )

    def _running_channel(self, via: str) -> Channel | None:
        """The channel ``via`` if the worker runs and the channel is open; else None.

        Raises:
            RuntimeError: this is a forked child of the process that made the handle.
        """
        if self._generation != _fork.generation:
            raise _fork.forked_error(f"worker {self.id}")
        channel = self._control if via == "control" else self._data
        if self._state is not _RUNNING or channel is None or channel.closed:
            return None
        return channel

    async def _channel_when_running(self, via: str) -> Channel:
        while True:
            channel = self._running_channel(via)
            if channel is not None:
                return channel
            if via == "data" and self.spec.data_path is None:
                raise WorkerUnavailable(
                    f"worker {self.id} has no data channel: spawn it with "
                    "data_channel=DataChannelOptions(enabled=True)"
                )
            if self._state in (WorkerState.STOPPED, WorkerState.FAILED, WorkerState.STOPPING):
                raise WorkerUnavailable(self._unavailable())
            await self._changed.wait()

    def _unavailable(self) -> str:
        """Why nothing can be sent: the state, and for a failed worker its last crash."""
        state = self._state.value
        if self._state is WorkerState.FAILED:
            policy = self.spec.restart_policy
            # Counted since the last reset (reset_after), as the policy counts them.
            in_all = f", {self.restarts} in all" if self.restarts != self._restarts_in_a_row else ""
            tried = (
                f"after {self._restarts_in_a_row} restart(s) in a row, the most its policy allows "
                f"(max_restarts={policy.max_restarts}){in_all}"
                if policy.enabled
                else "(no restart policy)"
            )
            last = crash_summary(self._last_error) if self._last_error else "unknown"
            return f"worker {self.id} has failed for good {tried}; its last crash: {last}"
        if self._stop_requested:
            return f"worker {self.id} is {state}: it was stopped (stop() or the manager closing)"
        how = "" if self.exit_code is None else f" (it exited with code {self.exit_code})"
        return f"worker {self.id} is {state}{how}"
