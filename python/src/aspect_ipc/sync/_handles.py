"""Blocking handles: each method runs its async twin on the loop thread and waits (requests and
notifications may go direct: :mod:`._direct`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .. import handle as _handle
from .._events import Listener
from .._stream_messages import DEFAULT_WINDOW
from ..channel import Handler
from ..handle import SpawnSpec
from ..metrics import WorkerStats
from ..options import WorkerState
from ._caller import Caller
from ._direct import NOT_SENT, direct_handle_call, direct_notify
from ._pipe import Pipe
from ._streams import PipeItems, StreamIterator, check_input, request_with_input

__all__ = ["ProcessHandle", "call_sync", "open_stream"]

T = TypeVar("T")
S = TypeVar("S", bound=StreamIterator)
_BATCH = 256  # results fetched per crossing of threads, at most (only those already in)


class ProcessHandle:
    """The blocking twin of :class:`aspect_ipc.ProcessHandle`; from :meth:`ProcessManager.spawn`.

    Several threads may call one handle at once. Handlers given to :meth:`on_request`,
    :meth:`on_notification` and :meth:`on` run on the loop thread (``aspect-ipc-loop``): they
    must not block, nor call this API (that would wait for the thread they run on).
    """

    def __init__(self, caller: Caller, handle: _handle.ProcessHandle) -> None:
        self._caller = caller
        self._portal = caller.portal
        self.aio = handle
        """The async handle underneath (use it only on the loop thread)."""

    def __repr__(self) -> str:
        return repr(self.aio)

    @property
    def id(self) -> str:
        """The worker id."""
        return self.aio.id

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) incarnation."""
        return self.aio.pid

    @property
    def state(self) -> WorkerState:
        """starting, running, stopping, stopped, restarting or failed."""
        return self.aio.state

    @property
    def restarts(self) -> int:
        """How many times the worker was restarted after a crash."""
        return self.aio.restarts

    @property
    def exit_code(self) -> int | None:
        """The last incarnation's exit code (None while it runs, or after a signal)."""
        return self.aio.exit_code

    @property
    def spec(self) -> SpawnSpec:
        """What the worker was spawned with."""
        return self.aio.spec

    def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.ProcessHandle.request`: same errors, same timeout.

        ``input`` (a plain iterable) is sent as the input stream, read lazily **on the calling
        thread** while it waits, as the worker grants credit (the loop never runs its code).
        The request ends as soon as the worker answers, even before ``input`` is exhausted.
        """
        return self._request("control", method, params, timeout, input)

    def request_via_data(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.ProcessHandle.request_via_data` (``input`` as in
        :meth:`request`)."""
        return self._request("data", method, params, timeout, input)

    def _request(
        self,
        via: str,
        method: str,
        params: Any,
        timeout: float | None,
        input: Iterable[Any] | None,
    ) -> Any:
        call = self.aio.request if via == "control" else self.aio.request_via_data
        if input is None:
            self._caller.on_other_thread()
            result = direct_handle_call(self._caller, self.aio, via, method, params, timeout)
            if result is not NOT_SENT:
                return result
            return self._caller.call(functools.partial(call, method, params, timeout=timeout))
        check_input(input)
        send = functools.partial(call, method, params, timeout=timeout)
        return request_with_input(self._caller, lambda items: send(input=items), input)

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> StreamIterator:
        """Blocking :meth:`aspect_ipc.ProcessHandle.stream`: ``for item in
        handle.stream("countTo", {"n": 3}):``, then ``.result``. See :class:`StreamIterator`.

        Up to ``window`` items may wait in the parent besides the ``window`` the protocol
        allows in flight. ``input`` (a plain iterable) is read on a thread of the stream's own,
        ``aspect-ipc-input``. No deadline, as for the async stream: ``close()`` the iterator
        (from any thread) to give up.
        """
        return open_stream(
            self._caller, self.aio.stream, method, params, window, input, StreamIterator
        )

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> StreamIterator:
        """Like :meth:`stream`, on the data channel (binary items travel as is)."""
        return open_stream(
            self._caller, self.aio.stream_via_data, method, params, window, input, StreamIterator
        )

    def notify(self, method: str, params: Any = None) -> None:
        """Blocking :meth:`aspect_ipc.ProcessHandle.notify`."""
        self._notify("control", method, params)

    def notify_via_data(self, method: str, params: Any = None) -> None:
        """Blocking :meth:`aspect_ipc.ProcessHandle.notify_via_data`."""
        self._notify("data", method, params)

    def _notify(self, via: str, method: str, params: Any) -> None:
        self._caller.on_other_thread()
        if not direct_notify(self._caller, self.aio, via, method, params):
            notify = self.aio.notify if via == "control" else self.aio.notify_via_data
            self._caller.call(notify, method, params)

    def stop(self, *, grace: float | None = None) -> None:
        """Blocking :meth:`aspect_ipc.ProcessHandle.stop`."""
        self._caller.call(functools.partial(self.aio.stop, grace=grace))

    def wait(self) -> int | None:
        """Block until the worker is stopped or failed for good; its last exit code."""
        return self._caller.call(self.aio.wait)

    def restart(self) -> None:
        """Blocking :meth:`aspect_ipc.ProcessHandle.restart`."""
        self._caller.call(self.aio.restart)

    def stats(self) -> WorkerStats:
        """:meth:`aspect_ipc.ProcessHandle.stats`, taken on the loop thread (a consistent
        snapshot: the counters are only updated there)."""
        stats: WorkerStats = self._caller.call(call_sync, self.aio.stats)
        return stats

    def on(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` on the loop thread for this worker's events of ``kind``."""
        self._portal.call(self.aio.on, kind, callback)

    def off(self, kind: str, callback: Listener) -> None:
        """Stop calling ``callback`` for this worker's ``kind`` events."""
        self._portal.call(self.aio.off, kind, callback)

    def on_request(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Answer the worker's requests of ``method`` (the handler runs on the loop thread)."""
        self._portal.call(functools.partial(self.aio.on_request, method, handler, via=via))

    def on_notification(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Handle the worker's notifications (the handler runs on the loop thread)."""
        self._portal.call(functools.partial(self.aio.on_notification, method, handler, via=via))


def open_stream(
    caller: Caller,
    opener: Any,
    method: str,
    params: dict[str, Any] | None,
    window: int,
    input: Iterable[Any] | None,
    kind: type[S],
) -> S:
    """A blocking stream (of a handle or a pool, ``kind``): ``opener`` is the async object's
    ``stream`` or ``stream_via_data``."""
    # The async stream object is inert until its first step (on the loop): made here, it
    # checks its arguments in the caller's thread.
    check_input(input)
    pipe = None if input is None else Pipe(DEFAULT_WINDOW, caller.call_soon, caller.ended)
    items = None if pipe is None else PipeItems(pipe)
    stream = opener(method, params, window=window, input=items)
    return kind(caller, stream, window, pipe, input)


async def call_sync(function: Callable[[], T]) -> T:
    """``function()``, called on the loop thread (through :meth:`Caller.call`)."""
    # PoolMap's objects (events, semaphores) must be made on the loop thread.
    return function()
