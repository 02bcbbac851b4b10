"""Our requests waiting for their answers, and their deadlines: one heap per channel."""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from ..jsonrpc import MessageId

__all__ = ["Answered", "Deadlines", "Pending", "Waiter", "waiter_factory"]


class Waiter(Protocol):
    """What a request of ours waits on until :meth:`set`: an ``anyio.Event`` or a
    :class:`FutureWaiter` (its ``wait()`` is awaited at most once)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


class FutureWaiter(asyncio.Future[None]):
    """A request's waiter on asyncio: a loop future, with the waiter's three methods.

    An ``anyio.Event`` on asyncio is three objects (the anyio event, an ``asyncio.Event``, its
    deque of futures) and a future per wait, set through two layers; a request waits once, so
    one future does (cProfile: a tenth of a pipelined request went to the events). It is the
    future itself, made by the C constructor: nothing in Python runs to make it.
    """

    __slots__ = ()

    def set(self) -> None:
        if not self.done():  # done: set already, or its waiter was cancelled
            self.set_result(None)

    def is_set(self) -> bool:
        return self.done() and not self.cancelled()

    def wait(self) -> asyncio.Future[None]:
        return self


def waiter_factory() -> Callable[[], Waiter]:
    """What makes each request's waiter, looked up once per channel (``anyio.Event()`` looks up
    the backend each time: sniffio, and on asyncio two ``getpid`` system calls)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no asyncio loop in this thread: trio
        return type(anyio.Event())
    return functools.partial(FutureWaiter, loop=loop)


class Answered(Protocol):
    """What a request's waiter is told by :meth:`set` once its answer is in, or it failed: an
    ``anyio.Event``, or a blocking caller's thread-safe flag (the channel calls ``set`` only)."""

    def set(self) -> None: ...


class Pending:
    """One request of ours, until it is answered, fails or times out."""

    __slots__ = ("error", "event", "id", "queued", "result", "sent", "stream", "timed_out")

    def __init__(self, event: Waiter | None = None) -> None:
        self.event: Waiter = anyio.Event() if event is None else event
        self.result: Any = None
        self.error: BaseException | None = None
        self.timed_out = False
        self.sent = 0  # perf_counter_ns() at the send, when the channel keeps metrics
        self.stream = False  # the request opened streams: its answer ends them (spec 13.2)
        self.id: MessageId = 0  # of a request sent from a thread (request_from_thread)
        # Its frame waits for room in the write queue: if it times out there, it is taken back
        # unsent, and its sender, not the deadline, says whether the peer must be told.
        self.queued = False


class Deadlines:
    """The deadlines of pending requests, one heap for the whole channel.

    A cancel scope per request costs more than the rest of a small request together; one timer
    task that sleeps until the earliest deadline costs nothing per request. Entries hold ids
    only (ids are never reused on a channel), so an answered request leaves behind three
    numbers, not its result, until the heap is rebuilt: as an entry is added, once the heap
    holds more than twice as many entries as there are pending requests (and 64). So it stays
    as small as the requests in flight, whatever the rate and the timeout.
    """

    __slots__ = ("_heap", "_pending", "_sequence", "sleeping_until", "wake")

    def __init__(self, pending: dict[MessageId, Pending]) -> None:
        self._heap: list[tuple[float, int, MessageId]] = []
        self._pending = pending
        self._sequence = 0
        self.wake = anyio.Event()
        # Until when the timer sleeps (set by it): an earlier deadline wakes it, none other.
        self.sleeping_until = math.inf

    def add(self, deadline: float, request_id: MessageId) -> None:
        heap = self._heap
        if len(heap) > 2 * len(self._pending) + 64:
            self._rebuild()
        if deadline < self.sleeping_until:
            self.sleeping_until = deadline
            self.wake.set()
        self._sequence += 1
        heapq.heappush(heap, (deadline, self._sequence, request_id))

    def next(self) -> tuple[float, MessageId] | None:
        """The earliest deadline of a request still pending, or None."""
        heap, pending = self._heap, self._pending
        if len(heap) > 2 * len(pending) + 64:
            self._rebuild()
        while heap:
            deadline, _, request_id = heap[0]
            if request_id in pending:
                return deadline, request_id
            heapq.heappop(heap)
        return None

    def pop(self) -> None:
        heapq.heappop(self._heap)

    def _rebuild(self) -> None:
        """Drop the entries of the requests no longer pending (answered, failed, withdrawn)."""
        pending = self._pending
        self._heap[:] = [entry for entry in self._heap if entry[2] in pending]
        heapq.heapify(self._heap)
