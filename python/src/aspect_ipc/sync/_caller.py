"""How a blocking call crosses to the loop thread, and waits."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

from .. import _fork

__all__ = ["Caller"]

T = TypeVar("T")

_ENDED = (
    "the blocking manager's event loop has ended (its with block was left): nothing can be "
    "called any more"
)
_LIVENESS = 1.0
"""A waiting call looks this often (seconds) whether the loop still runs: a call handed over as
the loop ends would otherwise wait for ever."""


class Caller:
    """Runs coroutine functions on the loop thread for a blocking caller.

    On asyncio, a call is one task started with ``call_soon_threadsafe``: one crossing each way
    (the portal's ``call`` makes two, which doubles the cost of a small request). On trio, the
    portal starts the task. Either way the caller waits on a ``queue.SimpleQueue`` (see
    :meth:`call`).
    """

    def __init__(self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop | None) -> None:
        """Made on the loop thread, whose loop ``loop`` is (None: trio's)."""
        self.portal = portal
        self._loop = loop
        self._generation = _fork.generation
        self._loop_thread = threading.get_ident()
        self.task_group: TaskGroup | None = None
        """Where the blocking manager runs the background tasks of the blocking objects (the
        pumps of streams); None once it closes. Used on the loop thread only."""
        # How any thread (the loop thread too) schedules a plain callable on the loop.
        self._soon: Callable[[Callable[[], object]], object] = (
            loop.call_soon_threadsafe if loop is not None else _trio_soon()
        )

    def call_soon(self, function: Callable[[], object]) -> bool:
        """Run ``function()`` on the loop thread soon, without waiting; from any thread, a
        finalizer included. False when the loop has already ended (nothing to do then), or
        is another process's (a forked child's finalizers)."""
        if self._generation != _fork.generation:
            return False
        try:
            self._soon(function)
        except RuntimeError:  # asyncio: the loop is closed; trio: RunFinishedError
            return False
        return True

    def start(self, function: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Start ``function(*args)`` on the loop thread; its future, not waited for."""
        self.on_other_thread()
        if self._loop is None:
            with _ended_portal():
                return self.portal.start_task_soon(function, *args)
        return self._submit(_coroutine(function, *args))

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop is closed
            coroutine.close()  # never to run: no "never awaited" warning
            raise RuntimeError(_ENDED) from None

    def on_loop_thread(self) -> bool:
        """Whether the calling thread is the loop thread."""
        return threading.get_ident() == self._loop_thread

    def on_other_thread(self) -> None:
        """Raises RuntimeError on the loop thread, where a blocking call would wait forever,
        and in a forked child, which has no loop thread (it would wait for ever too)."""
        if self._generation != _fork.generation:
            raise _fork.forked_error("the blocking ProcessManager")
        if self.on_loop_thread():
            raise RuntimeError(
                "the blocking API cannot be called from its own loop thread (an event callback "
                "or a request handler runs there): use the async object, '.aio', instead"
            )

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await function(*args)`` on the loop thread; its result, or its exception.

        A KeyboardInterrupt while waiting cancels the call, then propagates.

        The calling thread waits on a ``queue.SimpleQueue`` (C code, which an interrupt leaves
        cleanly), not on a ``concurrent.futures.Future``: an interrupt at the start of the
        future's ``Condition.__exit__`` (Python code) left its lock held, and the loop thread,
        setting the result, blocked on it for good.
        """
        self.on_other_thread()
        loop = self._loop
        if loop is None:
            return self._call_trio(function, *args)
        outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        run: _Run | None = None
        try:
            run = _Run(loop, _coroutine(function, *args), outcome)
            loop.call_soon_threadsafe(run.start)
        except RuntimeError:  # the loop is closed
            if run is not None:
                run.abandon()  # never to run: no "never awaited" warning
            raise RuntimeError(_ENDED) from None
        except KeyboardInterrupt:
            # Before or after the start was handed over: a cancel after it, run in order on
            # the loop, cancels the task or closes the coroutine never started.
            if run is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(run.cancel)
            raise

        def running() -> bool:
            if loop.is_running():
                return True
            run.abandon()  # the manager closed after this call was handed over: it never runs
            return False

        try:
            result: T = _handed_over(outcome, running)
            return result
        except KeyboardInterrupt:
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to cancel
                loop.call_soon_threadsafe(run.cancel)
            raise

    def _call_trio(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """:meth:`call` on trio: the portal starts a task that hands its outcome over as on
        asyncio. This thread never touches the portal's future (its lock is Python code, which
        an interrupt may leave held); a Ctrl-C has the loop thread cancel the task."""
        run = _TrioRun(function, args)
        with _ended_portal():
            self.portal.start_task_soon(run.run)
        try:
            result: T = _handed_over(run.outcome, lambda: self.call_soon(_nothing))
            return result
        except KeyboardInterrupt:
            self.call_soon(run.cancel)
            raise


def _handed_over(outcome: queue.SimpleQueue[tuple[bool, Any]], running: Callable[[], bool]) -> Any:
    """The result a call's task hands over in ``outcome`` (or its exception, raised), waited for
    in C code; RuntimeError once ``running()`` says the loop has ended without it."""
    while True:
        try:
            ok, value = outcome.get(timeout=_LIVENESS)
        except queue.Empty:
            if not running():
                raise RuntimeError(_ENDED) from None
            continue
        if ok:
            return value
        raise value


def _nothing() -> None:
    pass


class _TrioRun:
    """One call's task on trio (see :meth:`Caller._call_trio`)."""

    def __init__(self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        self._function, self._args = function, args
        self.outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._scope: anyio.CancelScope | None = None  # made on the loop thread, in run()
        self._cancelled = False

    async def run(self) -> None:
        """On the loop thread."""
        handed = False
        try:
            with anyio.CancelScope() as self._scope:
                if self._cancelled:
                    self._scope.cancel()
                try:
                    value = await self._function(*self._args)
                except Exception as exc:
                    self.outcome.put((False, exc))
                else:
                    self.outcome.put((True, value))
                handed = True
        finally:
            if not handed:  # cancelled: by the caller's Ctrl-C, or the loop's end
                self.outcome.put((False, CancelledError()))

    def cancel(self) -> None:
        """On the loop thread: the caller gave up (Ctrl-C), before or after the task began."""
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()


class _Run:
    """One call's coroutine on the loop thread: started, cancelled, its outcome handed back."""

    __slots__ = ("_cancelled", "_coroutine", "_loop", "_outcome", "_task")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coroutine: Coroutine[Any, Any, Any],
        outcome: queue.SimpleQueue[tuple[bool, Any]],
    ) -> None:
        self._loop, self._coroutine, self._outcome = loop, coroutine, outcome
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def start(self) -> None:
        """On the loop thread."""
        if self._cancelled:
            self._coroutine.close()
            return
        self._task = self._loop.create_task(self._coroutine)
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._outcome.put((False, CancelledError()))
        elif task.exception() is not None:
            self._outcome.put((False, task.exception()))
        else:
            self._outcome.put((True, task.result()))

    def cancel(self) -> None:
        """On the loop thread: the caller gave up (Ctrl-C). Not started by now, it never will
        be (a start is handed over before the cancel that follows it)."""
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        else:
            self._coroutine.close()  # no "never awaited" warning

    def abandon(self) -> None:
        """The loop ended before the call ran: its coroutine never will."""
        if self._task is None:
            self._coroutine.close()  # never to run: no "never awaited" warning


@contextlib.contextmanager
def _ended_portal() -> Iterator[None]:
    """On trio, a call after the manager's loop has ended says so in the words the asyncio
    path uses, not anyio's ("This portal is not running")."""
    try:
        yield
    except RuntimeError as exc:
        if str(exc) == "This portal is not running":
            raise RuntimeError(_ENDED) from None
        raise


def _trio_soon() -> Callable[[Callable[[], object]], object]:
    import trio  # only with backend="trio", which needs it

    return trio.lowlevel.current_trio_token().run_sync_soon


async def _coroutine(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await function(*args)
