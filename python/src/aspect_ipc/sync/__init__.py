"""The blocking API: aspect-ipc for code without an event loop.

::

    from aspect_ipc.sync import ProcessManager

    with ProcessManager() as manager:
        worker = manager.spawn("w", executable="./worker")
        print(worker.request("add", {"a": 1, "b": 2}))
        pool = manager.spawn_pool("p", 4, executable="./worker")
        for result in pool.map("add", ({"a": i, "b": 1} for i in range(1000))):
            ...

Theory of operation: ``with ProcessManager(...)`` starts one background thread, named
``aspect-ipc-loop`` (:data:`LOOP_THREAD`), running an event loop with an anyio blocking portal;
the async :class:`aspect_ipc.ProcessManager` lives in a task there for the whole block. Every
blocking call runs its async twin on that loop and waits for it, so errors, timeouts and events
are those of the async API, and any number of threads may call at once. A plain request to a
running worker is the exception (:mod:`._direct`): the calling thread writes it itself when
nothing is queued on the channel, and the loop's reader wakes it with the answer, which saves
the two thread wake-ups of a crossing; its errors are mapped to the async API's all the same.
Event callbacks and request handlers run **on the loop thread**: they must not block or call
this API.

Streams (:mod:`._streams`): ``stream(...)`` returns a plain iterator fed by a task on the loop
through a bounded buffer; ``request(..., input=items)`` reads ``items`` on the calling thread,
and ``stream(..., input=items)`` on a thread of the stream's own (:data:`INPUT_THREAD`), so the
loop never runs the caller's iterable.

Ctrl-C: a KeyboardInterrupt in the main thread, while it waits for a call or anywhere in the
block, leaves the ``with`` block, which stops every worker (``$/shutdown``, SIGTERM, SIGKILL) and
removes their socket files before the KeyboardInterrupt propagates; a second Ctrl-C during that
clean-up does not cut it short.

Inside a running event loop (a notebook): the blocking API still works there, since its loop
runs on its own thread, but each call blocks the caller's loop while it waits; in async code
prefer ``async with aspect_ipc.ProcessManager(...)`` (top-level ``await`` in a notebook).
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, Unpack

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal

from .. import _fork
from .. import manager as _manager
from .._events import Listener
from ..metrics import ManagerStats
from ..option_types import ManagerOptions, SpawnOptions
from ._caller import Caller
from ._events import EventIterator
from ._handles import ProcessHandle
from ._loop_thread import LoopThread, keep_sigint, note_sigint, release_sigint
from ._pool import MapIterator, WorkerPool
from ._streams import INPUT_THREAD, StreamIterator

__all__ = [
    "INPUT_THREAD",
    "LOOP_THREAD",
    "EventIterator",
    "MapIterator",
    "ProcessHandle",
    "ProcessManager",
    "StreamIterator",
    "WorkerPool",
]

LOOP_THREAD = "aspect-ipc-loop"
"""The name of the thread that runs the event loop, event callbacks and request handlers."""


class ProcessManager:
    """The blocking twin of :class:`aspect_ipc.ProcessManager`: ``with ProcessManager(...) as
    manager:``. Leaving the block, normally or by an exception (KeyboardInterrupt included),
    stops every worker and the loop thread.

    Args:
        namespace, **options: those of :class:`aspect_ipc.ProcessManager`.
        backend: the loop thread's event loop, ``"asyncio"`` or ``"trio"``.
    """

    def __init__(
        self,
        namespace: str = "aspect-ipc",
        *,
        backend: str = "asyncio",
        **options: Unpack[ManagerOptions],
    ):
        self.aio = _manager.ProcessManager(namespace, **options)
        """The async manager underneath (use it only on the loop thread)."""
        self._backend = backend
        self._loop_thread: LoopThread | None = None
        self._portal: BlockingPortal | None = None
        self._caller: Caller | None = None
        self._handler_exit: BaseException | None = None  # a handler's sys.exit(): close()
        self._generation = _fork.generation

    def __enter__(self) -> ProcessManager:
        if self._loop_thread is not None:
            raise RuntimeError("this ProcessManager is already open ('with' it once)")
        if self._backend == "trio" and _in_trio():
            # anyio's trio portal refuses every call from a thread that runs trio, and its
            # clean-up then waited for ever.
            raise RuntimeError(
                "the blocking ProcessManager with backend='trio' cannot be used from a thread "
                "that runs trio: use the async API there ('async with "
                "aspect_ipc.ProcessManager(...)'), or backend='asyncio' (its loop runs in a "
                "thread of its own)"
            )
        loop_thread = LoopThread(self._backend, LOOP_THREAD)
        self._portal, self._caller = loop_thread.start(self._host)  # Ctrl-C still held
        self._loop_thread = loop_thread
        # Released only now that close() finds the loop: a KeyboardInterrupt out of __enter__
        # skips __exit__, so one that lands from here on stops the loop before it is raised.
        interrupted: list[KeyboardInterrupt] = []
        try:
            release_sigint(interrupted)
            if not interrupted:
                return self
        except KeyboardInterrupt as exc:
            interrupted.append(exc)
        self.close()
        raise interrupted[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The Ctrl-C hold first, written out (see close()): a KeyboardInterrupt that lands before
        # close() holds it would skip the clean-up.
        try:
            previous = signal.signal(signal.SIGINT, note_sigint)
        except ValueError:  # not the main thread, which alone gets KeyboardInterrupt
            previous = None
        try:
            keep_sigint(previous)
            self.close()
        except KeyboardInterrupt:
            # Leaving because of one already: more Ctrl-Cs during the clean-up would only
            # chain their tracebacks to it (the user pressed it twice; one is what they meant).
            if exc_type is not KeyboardInterrupt:
                raise

    async def _host(
        self, portal: BlockingPortal, stopping: anyio.Event, *, task_status: TaskStatus[Caller]
    ) -> None:
        """The async manager, open from the start of the block until ``stopping`` (the loop
        thread's :class:`LoopThread` runs it)."""
        loop = asyncio.get_running_loop() if self._backend == "asyncio" else None
        caller = Caller(portal, loop)
        # The blocking objects' background tasks (stream pumps) are cancelled first on close,
        # which cancels their requests, before the workers stop.
        try:
            async with self.aio, anyio.create_task_group() as tasks:
                caller.task_group = tasks
                task_status.started(caller)
                await stopping.wait()
                caller.task_group = None
                tasks.cancel_scope.cancel()
        except (SystemExit, KeyboardInterrupt) as exc:  # a handler's: see close()
            self._handler_exit = exc

    def close(self) -> None:
        """Stop every worker and the loop thread (what leaving the ``with`` block does)."""
        # First of all: from here on a Ctrl-C in the main thread is noted, not raised, until
        # the loop thread has stopped; then one is raised. One that landed in the lines before
        # the stop began escaped the clean-up, the workers and the loop thread left running (a
        # storm of Ctrl-Cs, one a millisecond, about once in a hundred runs). Written out, not
        # a call to a function of ours: a KeyboardInterrupt lands as such a call begins.
        try:
            previous = signal.signal(signal.SIGINT, note_sigint)
        except ValueError:  # not the main thread, which alone gets KeyboardInterrupt
            previous = None
        interrupted: list[KeyboardInterrupt] = []
        try:
            keep_sigint(previous)
            loop_thread = self._leave(interrupted)
        finally:
            release_sigint(interrupted)  # stop() has, unless nothing was running
        if loop_thread is not None and self._handler_exit is not None:
            # A handler of the workers' requests called sys.exit() (or raised KeyboardInterrupt)
            # on the loop thread: the workers are stopped, and the program exits from here,
            # where the with block ends (the calls waiting meanwhile failed: ChannelClosed).
            exit_, self._handler_exit = self._handler_exit, None
            raise exit_.with_traceback(None)
        if loop_thread is not None and loop_thread.host_error is not None:
            raise loop_thread.host_error
        if interrupted:
            raise interrupted[0]

    def _leave(self, interrupted: list[KeyboardInterrupt]) -> LoopThread | None:
        """:meth:`close`'s stop, a Ctrl-C held (kept in ``interrupted``): the loop thread,
        stopped; None if nothing was open, or in a forked child."""
        loop_thread, portal = self._loop_thread, self._portal
        if loop_thread is None or portal is None:
            return None
        try:
            if self._caller is not None and self._generation == _fork.generation:
                self._caller.on_other_thread()  # a callback or handler: would wait for itself
        except KeyboardInterrupt as exc:  # a program's own SIGINT handler raised it
            interrupted.append(exc)
        self._portal = self._loop_thread = self._caller = None
        if self._generation != _fork.generation:
            # A forked child: no loop thread here, and the workers are the parent's. The
            # portal, once collected, would ask that thread to stop and wait for ever: told it
            # is not running, it skips that (anyio keeps the loop thread's id in this field).
            portal._event_loop_thread_id = None
            return None
        while loop_thread.running:
            try:
                loop_thread.stop(cancel_remaining=False)  # the host stops the workers first
            except KeyboardInterrupt as exc:  # held by stop(), or landed before it began
                if not interrupted:
                    interrupted.append(exc)
        return loop_thread

    # -- the API ------------------------------------------------------------------------------

    @property
    def portal(self) -> BlockingPortal:
        """The anyio portal of the loop thread (to run other async code there)."""
        return self._open().portal

    def _open(self) -> Caller:
        if self._caller is None:
            raise RuntimeError(
                "the blocking ProcessManager is not open: use it as 'with ProcessManager(...) "
                "as manager:' and call it inside the block"
            )
        return self._caller

    def spawn(self, worker_id: str, **options: Unpack[SpawnOptions]) -> ProcessHandle:
        """Blocking :meth:`aspect_ipc.ProcessManager.spawn` (same options and errors)."""
        caller = self._open()
        handle = caller.call(functools.partial(self.aio.spawn, worker_id, **options))
        return ProcessHandle(caller, handle)

    def spawn_pool(
        self,
        name: str,
        size: int,
        *,
        max_requests_per_worker: int | None = None,
        **options: Unpack[SpawnOptions],
    ) -> WorkerPool:
        """Blocking :meth:`aspect_ipc.ProcessManager.spawn_pool` (same options and errors)."""
        caller = self._open()
        pool = caller.call(
            functools.partial(
                self.aio.spawn_pool,
                name,
                size,
                max_requests_per_worker=max_requests_per_worker,
                **options,
            )
        )
        return WorkerPool(caller, pool)

    def get(self, worker_id: str) -> ProcessHandle:
        """The handle of ``worker_id``; KeyError if there is none."""
        return ProcessHandle(self._open(), self.aio.get(worker_id))

    @property
    def handles(self) -> dict[str, ProcessHandle]:
        """The workers by id."""
        caller = self._open()
        return {key: ProcessHandle(caller, h) for key, h in self.aio.handles.items()}

    def on(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` for every worker's events of ``kind``, on the loop thread."""
        self.portal.call(self.aio.on, kind, callback)

    def off(self, kind: str, callback: Listener) -> None:
        """Stop calling ``callback`` for ``kind`` (see :meth:`aspect_ipc.ProcessManager.off`)."""
        self.portal.call(self.aio.off, kind, callback)

    def events(self, *kinds: str, buffer: int = 1024) -> EventIterator:
        """``for event in manager.events():`` every worker's events from now on (of ``kinds``
        only, if given), each ``next()`` waiting for the next one, until the manager closes or
        the iterator is closed (``close()``, ``with``). Buffering and dropping are those of
        :meth:`aspect_ipc.ProcessManager.events`.

        Raises:
            ValueError: a kind is not an event kind, or ``buffer`` is not positive.
        """
        caller, loop_thread = self._open(), self._loop_thread
        assert loop_thread is not None
        stream = caller.portal.call(functools.partial(self.aio.events, *kinds, buffer=buffer))
        # Open while the async manager runs; its stream has ended by the time it stops.
        return EventIterator(caller, stream, lambda: not loop_thread.host_done)

    def stats(self) -> ManagerStats:
        """:meth:`aspect_ipc.ProcessManager.stats`, taken on the loop thread."""
        return self._open().call(_snapshot, self.aio.stats)

    def stop(self, worker_id: str, *, grace: float | None = None) -> None:
        """Stop one worker."""
        self._open().call(functools.partial(self.aio.stop, worker_id, grace=grace))

    def stop_all(self, *, grace: float | None = None) -> None:
        """Stop every worker, concurrently."""
        self._open().call(functools.partial(self.aio.stop_all, grace=grace))

    def request(
        self, worker_id: str, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Shortcut for ``manager.get(worker_id).request(...)``."""
        return self.get(worker_id).request(method, params, timeout=timeout)


async def _snapshot(function: Callable[[], ManagerStats]) -> ManagerStats:
    return function()


def _in_trio() -> bool:
    """Whether this thread runs trio (trio, if imported, knows)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True
