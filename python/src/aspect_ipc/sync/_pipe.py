"""A bounded queue of stream items between the loop thread and the blocking API's threads.

Theory of operation: one side puts items, the other takes them, in order; at most ``capacity``
wait in between. One side runs on the loop thread (``aput``/``aget``, which await), the other on
ordinary threads (``put``/``get``, which block). A thread sleeps on a ``queue.SimpleQueue`` of
wake-up tokens; the loop waits on an ``anyio.Event`` that a thread sets through ``call_soon`` (the
one way to wake a loop from outside). Only a wait crosses threads: a side that finds room or an
item goes on without waking anyone, so a busy stream moves many items per crossing; and a
producer that waited for room is woken only once the buffer is half empty, not once per item.

Ctrl-C: the main thread may get a KeyboardInterrupt between any two bytecodes, and the loop thread
takes the same lock. So the lock is only ever taken as ``with self._lock:`` (a C lock: a signal
cannot split its enter or exit), and a thread never sleeps holding it: it sleeps in the token
queue's ``get``, C code too, which an interrupt leaves cleanly. (A ``threading.Condition``, whose
``wait`` and ``__exit__`` are Python code, could be left held by an interrupt, and the loop thread
blocked on it for good: the whole manager hung.)

The producer ends the items with :meth:`finish` (a final value) or :meth:`fail` (an exception,
raised after the items before it). Either side may :meth:`close` the pipe: the consumer is gone
or the work is over. A producer then stops (``put`` returns False) and a consumer ends.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from ._caller import LIVENESS

__all__ = ["Pipe", "PipeClosed"]


class PipeClosed(Exception):
    """Raised by a take from a pipe that was closed before its items ended."""


class Pipe:
    """``capacity`` items at most between a producer and a consumer on different threads."""

    def __init__(
        self,
        capacity: int,
        call_soon: Callable[[Callable[[], object]], bool],
        ended: Callable[[], BaseException | None] = lambda: None,
    ) -> None:
        self._capacity = capacity
        self._call_soon = call_soon  # runs a callable on the loop thread, from any thread
        # The error to end with once the loop has ended (else None), asked by a thread that
        # has slept for LIVENESS seconds: the loop side may never come (a call handed over as
        # the loop ended never starts), and nothing else would wake it.
        self._ended = ended
        # Reentrant: a finalizer (an abandoned iterator's, run by the garbage collector in the
        # middle of a step here on the same thread) may close the pipe.
        self._lock = threading.RLock()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._sleepers = 0  # threads that will sleep or sleep in _sleep: one token each, to wake
        self._items: deque[Any] = deque()
        self._end: tuple[bool, Any] | None = None  # (True, final value) or (False, exception)
        self.closed = False
        self._loop_waiter: anyio.Event | None = None
        self._demand = 0  # items the loop's consumer may take now: see wait_for_demand, want
        self.on_close: Callable[[], object] | None = None
        """Run on the loop thread once the pipe is closed (the loop side's cancel)."""

    # -- producer ----------------------------------------------------------------------------

    def put(self, item: Any) -> bool:
        """Block while the pipe is full; False (the item dropped) once it is closed."""
        while True:
            with self._lock:
                if self.closed:
                    return False
                if len(self._items) < self._capacity:
                    self._items.append(item)
                    self._wake_threads()  # a thread taking, if one waits
                    waiter = self._take_waiter()
                    break
                self._sleepers += 1
            self._sleep()
        self._wake(waiter)
        return True

    def wait_for_demand(self) -> bool:
        """Block until the loop's consumer wants more items than the pipe holds (it waits in
        :meth:`aget`, or :meth:`want` said how many it can take); False once closed. A producer
        that calls this before it reads its next item reads no further ahead than the consumer
        can use (an input stream: the worker's credit, and the one item its sender waits with),
        whatever the capacity, and still a batch at a time."""
        while True:
            with self._lock:
                if self.closed or self._end is not None or len(self._items) < self._demand:
                    return not self.closed
                self._sleepers += 1
            self._sleep()

    def want(self, count: int) -> None:
        """On the loop thread: the consumer can take ``count`` items now (at least the one it
        is about to wait for)."""
        with self._lock:
            demand = max(count, 1)
            if demand > self._demand:
                self._wake_threads()  # a producer waiting for demand
            self._demand = demand

    async def aput(self, item: Any) -> bool:
        """:meth:`put` on the loop thread: waits for room without blocking the loop."""
        while True:
            with self._lock:
                if self.closed:
                    return False
                if len(self._items) < self._capacity:
                    self._items.append(item)
                    self._wake_threads()
                    return True
                event = self._loop_waiter = anyio.Event()
            await event.wait()

    def finish(self, final: Any = None) -> None:
        """No more items: the consumer ends after those queued; ``final`` is the end's value."""
        self._set_end((True, final))

    def fail(self, error: BaseException) -> None:
        """No more items: the consumer raises ``error`` after those queued."""
        self._set_end((False, error))

    def _set_end(self, end: tuple[bool, Any]) -> None:
        with self._lock:
            if self._end is None:
                self._end = end
            self._wake_threads()
            waiter = self._take_waiter()
        self._wake(waiter)

    # -- consumer ----------------------------------------------------------------------------

    def get(self) -> Any:
        """The next item, blocking while there is none. At the end raises StopIteration (its
        ``value`` the final value), the producer's error, or :class:`PipeClosed`."""
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self._wake_threads()  # a thread putting, if one waits for room
                    # A waiting loop is woken at half only.
                    half = len(self._items) <= self._capacity // 2
                    waiter = self._take_waiter() if half else None
                    break
                if self._end is not None or self.closed:
                    return _raise_end(self._end)
                self._sleepers += 1
            self._sleep()
        self._wake(waiter)
        return item

    async def aget(self) -> Any:
        """:meth:`get` on the loop thread: waits without blocking the loop; StopAsyncIteration
        at a normal end (the final value is dropped)."""
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self._demand = max(self._demand - 1, 0)
                    if len(self._items) <= self._capacity // 2:  # wake a waiting thread at half
                        self._wake_threads()
                    return item
                if self._end is not None or self.closed:
                    end = self._end
                    break
                event = self._loop_waiter = anyio.Event()
                if self._demand < 1:
                    self._demand = 1
                    self._wake_threads()  # a producer waiting for demand
            await event.wait()
        if end is not None and end[0]:
            raise StopAsyncIteration  # StopIteration cannot leave a coroutine (PEP 479)
        return _raise_end(end)

    # -- threads asleep ----------------------------------------------------------------------

    def _sleep(self) -> None:
        """Sleep until woken (the caller counted itself in ``_sleepers`` under the lock, so
        that no wake-up between its look and this sleep is lost). Interrupted (Ctrl-C), it
        leaves nothing held; its count may stay, which only costs a later sleeper a spurious
        wake-up, after which it looks again."""
        try:
            while True:
                try:
                    self._tokens.get(timeout=LIVENESS)
                    break
                except queue.Empty:
                    error = self._ended()
                    if error is not None:
                        self._end_for_good(error)
                        break
        finally:
            with self._lock:
                self._sleepers -= 1

    def _end_for_good(self, error: BaseException) -> None:
        """The loop has ended: a consumer takes what is queued, then raises ``error``; a
        producer stops (``put`` returns False)."""
        with self._lock:
            if self._end is None:
                self._end = (False, error)
            self.closed = True
            self._wake_threads()

    def _wake_threads(self) -> None:
        """Under the lock: wake every thread asleep (each looks again). Tokens not yet taken
        count: a count left too high by an interrupt never piles tokens up."""
        for _ in range(self._sleepers - self._tokens.qsize()):
            self._tokens.put(None)

    # -- either side -------------------------------------------------------------------------

    def close(self) -> None:
        """The consumer is gone, or the work is over: a waiting producer or consumer stops, and
        ``on_close`` runs on the loop thread. Idempotent; callable from any thread, and from a
        finalizer (it never waits)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._items.clear()
            self._wake_threads()
            waiter = self._take_waiter()
        self._wake(waiter, self.on_close)

    def _take_waiter(self) -> anyio.Event | None:
        # Under the lock: a waiter the loop registers later is never lost.
        waiter, self._loop_waiter = self._loop_waiter, None
        return waiter

    def _wake(self, waiter: anyio.Event | None, then: Callable[[], object] | None = None) -> None:
        if waiter is None and then is None:
            return

        def wake() -> None:
            if waiter is not None:
                waiter.set()
            if then is not None:
                then()

        self._call_soon(wake)


def _raise_end(end: tuple[bool, Any] | None) -> Any:
    if end is None:
        raise PipeClosed("the stream was closed")
    ok, value = end
    if ok:
        raise StopIteration(value)
    raise value
