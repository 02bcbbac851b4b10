"""Blocking handles and pools: each method runs its async twin on the loop thread and waits."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from .. import handle as _handle
from .. import pool as _pool
from .._events import Listener
from .._pool_map import PoolMap
from .._stream_messages import DEFAULT_WINDOW
from ..channel import Handler
from ..handle import SpawnSpec
from ..metrics import WorkerStats
from ..options import WorkerState
from ._caller import Caller
from ._direct import NOT_SENT, direct_handle_call, direct_notify, direct_pool_call
from ._pipe import Pipe
from ._streams import PipeItems, StreamIterator, check_input, request_with_input

__all__ = ["MapIterator", "ProcessHandle", "WorkerPool"]

T = TypeVar("T")
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
        return _stream(self._caller, self.aio.stream, method, params, window, input)

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> StreamIterator:
        """Like :meth:`stream`, on the data channel (binary items travel as is)."""
        return _stream(self._caller, self.aio.stream_via_data, method, params, window, input)

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
        stats: WorkerStats = self._caller.call(_call_sync, self.aio.stats)
        return stats

    def on(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` on the loop thread for this worker's events of ``kind``."""
        self._portal.call(self.aio.on, kind, callback)

    def on_request(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Answer the worker's requests of ``method`` (the handler runs on the loop thread)."""
        self._portal.call(functools.partial(self.aio.on_request, method, handler, via=via))

    def on_notification(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Handle the worker's notifications (the handler runs on the loop thread)."""
        self._portal.call(functools.partial(self.aio.on_notification, method, handler, via=via))


class MapIterator(Iterator[Any]):
    """The results of the blocking :meth:`WorkerPool.map`: a plain iterator.

    ``close()`` (or ``with pool.map(...) as results:``, or dropping it after a ``break``)
    cancels what is still in flight.
    """

    def __init__(self, caller: Caller, mapped: PoolMap, batch: int) -> None:
        self._caller = caller
        self._mapped = mapped
        self._batch = batch
        self._results: list[Any] = []
        self._done = False

    def __iter__(self) -> MapIterator:
        return self

    def __next__(self) -> Any:
        if not self._results:
            if self._done:
                raise StopIteration
            try:
                self._results = self._caller.call(self._mapped.next_batch, self._batch)
            except BaseException:
                self.close()
                raise
            if not self._results:
                self.close()
                raise StopIteration
            self._results.reverse()
        return self._results.pop()

    def close(self) -> None:
        """Cancel what is in flight and wait until it has ended; idempotent."""
        if not self._done:
            self._done = True
            self._results = []
            self._caller.call(self._mapped.aclose)

    def __enter__(self) -> MapIterator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            # RuntimeError: the portal is gone (its manager closed): nothing is left to cancel.
            with contextlib.suppress(RuntimeError):
                self.close()


class WorkerPool:
    """The blocking twin of :class:`aspect_ipc.WorkerPool`; from
    :meth:`ProcessManager.spawn_pool`. Safe to call from several threads at once."""

    def __init__(self, caller: Caller, pool: _pool.WorkerPool) -> None:
        self._caller = caller
        self._portal = caller.portal
        self.aio = pool
        """The async pool underneath (use it only on the loop thread)."""

    def __repr__(self) -> str:
        return repr(self.aio)

    @property
    def size(self) -> int:
        """The number of slots."""
        return self.aio.size

    @property
    def handles(self) -> list[ProcessHandle]:
        """The current worker of every slot (blocking handles)."""
        return [ProcessHandle(self._caller, h) for h in self.aio.handles]

    @property
    def failed(self) -> list[ProcessHandle]:
        """The workers that have failed for good."""
        return [ProcessHandle(self._caller, h) for h in self.aio.failed]

    def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.WorkerPool.request` (``input`` as in
        :meth:`ProcessHandle.request`: read on the calling thread)."""
        return self._request("control", method, params, timeout, retries, input)

    def request_via_data(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.WorkerPool.request_via_data`."""
        return self._request("data", method, params, timeout, retries, input)

    def _request(
        self,
        via: str,
        method: str,
        params: Any,
        timeout: float | None,
        retries: int,
        input: Iterable[Any] | None,
    ) -> Any:
        call = self.aio.request if via == "control" else self.aio.request_via_data
        send = functools.partial(call, method, params, timeout=timeout, retries=retries)
        if input is None:
            self._caller.on_other_thread()
            caller, pool = self._caller, self.aio
            result = direct_pool_call(caller, pool, via, method, params, timeout, retries)
            if result is not NOT_SENT:
                return result
            return self._caller.call(send)
        check_input(input)
        if retries:  # checked before any item is read
            raise ValueError(
                f"{method!r}: retries cannot be used with input: an input stream is read once "
                "and cannot be sent again; retry the whole call with a fresh input instead"
            )
        return request_with_input(self._caller, lambda items: send(input=items), input)

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> StreamIterator:
        """Blocking :meth:`aspect_ipc.WorkerPool.stream`: a plain iterator, as
        :meth:`ProcessHandle.stream`, on the least-loaded live worker; never retried."""
        return _stream(self._caller, self.aio.stream, method, params, window, input)

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> StreamIterator:
        """Like :meth:`stream`, on the data channel."""
        return _stream(self._caller, self.aio.stream_via_data, method, params, window, input)

    def map(
        self,
        method: str,
        iterable: Iterable[Any] | AsyncIterable[Any],
        **options: Any,
    ) -> MapIterator:
        """Blocking :meth:`aspect_ipc.WorkerPool.map` (same options): a plain iterator.

        The input is read on the loop thread, lazily: a generator that blocks delays every
        worker's traffic while it does.
        """
        mapped = self._caller.call(
            _call_sync, functools.partial(self.aio.map, method, iterable, **options)
        )
        return MapIterator(self._caller, mapped, _BATCH)

    def resize(self, size: int) -> None:
        """Blocking :meth:`aspect_ipc.WorkerPool.resize`."""
        self._caller.call(self.aio.resize, size)

    def stop(self, *, grace: float | None = None) -> None:
        """Blocking :meth:`aspect_ipc.WorkerPool.stop`."""
        self._caller.call(functools.partial(self.aio.stop, grace=grace))


def _stream(
    caller: Caller,
    opener: Any,
    method: str,
    params: dict[str, Any] | None,
    window: int,
    input: Iterable[Any] | None,
) -> StreamIterator:
    # The async stream object is inert until its first step (on the loop): made here, it
    # checks its arguments in the caller's thread.
    check_input(input)
    pipe = None if input is None else Pipe(DEFAULT_WINDOW, caller.call_soon)
    items = None if pipe is None else PipeItems(pipe)
    stream = opener(method, params, window=window, input=items)
    return StreamIterator(caller, stream, window, pipe, input)


async def _call_sync(function: Callable[[], T]) -> T:
    # PoolMap's objects (events, semaphores) must be made on the loop thread.
    return function()
