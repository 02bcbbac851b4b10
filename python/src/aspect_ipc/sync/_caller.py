"""How a blocking call crosses to the loop thread, and waits."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

from .. import _fork

__all__ = ["LIVENESS", "Caller", "Started"]

T = TypeVar("T")

_ENDED = (
    "the blocking manager's event loop has ended (its with block was left): nothing can be "
    "called any more"
)
LIVENESS = 1.0
"""A thread waiting for a call, or asleep on a stream's pipe, looks this often (seconds) whether
the loop still runs: a call handed over as the loop ends would otherwise wait for ever."""


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

    def start(self, function: Callable[..., Awaitable[T]], *args: Any) -> Started[T]:
        """Start ``function(*args)`` on the loop thread, not waiting for it: wait with
        :meth:`Started.result`, or cancel it. Its coroutine is made on the loop thread when it
        starts: a call the loop never ran (it ended first) leaves nothing behind."""
        self.on_other_thread()
        loop = self._loop
        if loop is None:
            trio_run = _TrioRun(function, args)
            with _ended_portal():
                self.portal.start_task_soon(trio_run.run)
            return Started(trio_run.outcome, self.running, lambda: self.call_soon(trio_run.cancel))
        run = _Run(loop, function, args)
        try:
            loop.call_soon_threadsafe(run.start)
            return Started(run.outcome, self.running, lambda: self.call_soon(run.cancel))
        except RuntimeError:  # the loop is closed
            raise RuntimeError(_ENDED) from None
        except KeyboardInterrupt:
            # Before or after the start was handed over: a cancel after it, run in order on
            # the loop, cancels the task or keeps it from starting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(run.cancel)
            raise

    def running(self) -> bool:
        """Whether the loop still runs (from any thread): False once it has ended, when a call
        handed over and not yet started never will be."""
        if self._loop is None:
            return self.call_soon(_nothing)
        return self._loop.is_running()

    def ended(self) -> RuntimeError | None:
        """The error a blocking call raises once the loop has ended; None while it runs."""
        return None if self.running() else RuntimeError(_ENDED)

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
        """
        started = None
        try:
            started = self.start(function, *args)
            return started.result()
        except KeyboardInterrupt:  # result() cancels, but it may land before that
            if started is not None:
                started.cancel()
            raise


class Started(Generic[T]):
    """A call handed to the loop thread (:meth:`Caller.start`): its outcome, waited for, or its
    cancellation, from any thread but the loop's.

    The waiting thread sleeps on a ``queue.SimpleQueue`` (C code, which an interrupt leaves
    cleanly), not on a ``concurrent.futures.Future``: an interrupt at the start of the future's
    ``Condition.__exit__`` (Python code) left its lock held, and the loop thread, setting the
    result, blocked on it for good.
    """

    __slots__ = ("_cancel", "_outcome", "_running")

    def __init__(
        self,
        outcome: queue.SimpleQueue[tuple[bool, Any]],
        running: Callable[[], bool],
        cancel: Callable[[], object],
    ) -> None:
        self._outcome, self._running, self._cancel = outcome, running, cancel

    def result(self) -> T:
        """The call's result, or its exception raised; RuntimeError if the loop ended without
        running it. A KeyboardInterrupt while waiting cancels the call, then propagates."""
        try:
            result: T = _handed_over(self._outcome, self._running)
            return result
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the call (its task, or its start if it has not started); nothing once the
        loop has ended. Idempotent."""
        self._cancel()


def _handed_over(outcome: queue.SimpleQueue[tuple[bool, Any]], running: Callable[[], bool]) -> Any:
    """The result a call's task hands over in ``outcome`` (or its exception, raised), waited for
    in C code; RuntimeError once ``running()`` says the loop has ended without it."""
    while True:
        try:
            ok, value = outcome.get(timeout=LIVENESS)
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
    """One call on the asyncio loop thread: started (its coroutine made there), cancelled, its
    outcome handed back."""

    __slots__ = ("_args", "_cancelled", "_function", "_loop", "_task", "outcome")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        self._loop, self._function, self._args = loop, function, args
        self.outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def start(self) -> None:
        """On the loop thread."""
        if self._cancelled:
            return
        self._task = self._loop.create_task(_coroutine(self._function, *self._args))
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.outcome.put((False, CancelledError()))
        elif task.exception() is not None:
            self.outcome.put((False, task.exception()))
        else:
            self.outcome.put((True, task.result()))

    def cancel(self) -> None:
        """On the loop thread: the caller gave up (Ctrl-C). Not started by now, it never will
        be (a start is handed over before the cancel that follows it)."""
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()


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
