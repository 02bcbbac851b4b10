"""Our requests waiting for their answers, and their deadlines: one heap per channel."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol

import anyio

from ..jsonrpc import MessageId

__all__ = ["Answered", "Deadlines", "Pending", "event_class"]


def event_class() -> Callable[[], anyio.Event]:
    """The running backend's own Event class. A channel looks it up once: ``anyio.Event()``
    looks up the backend each time (sniffio, and on asyncio two ``getpid`` system calls)."""
    return type(anyio.Event())


class Answered(Protocol):
    """What a request's waiter is told by :meth:`set` once its answer is in, or it failed: an
    ``anyio.Event``, or a blocking caller's thread-safe flag (the channel calls ``set`` only)."""

    def set(self) -> None: ...


class Pending:
    """One request of ours, until it is answered, fails or times out."""

    __slots__ = ("error", "event", "id", "result", "sent", "stream", "timed_out")

    def __init__(self, event: anyio.Event | None = None) -> None:
        self.event = anyio.Event() if event is None else event
        self.result: Any = None
        self.error: BaseException | None = None
        self.timed_out = False
        self.sent = 0  # perf_counter_ns() at the send, when the channel keeps metrics
        self.stream = False  # the request opened streams: its answer ends them (spec 13.2)
        self.id: MessageId = 0  # of a request sent from a thread (request_from_thread)


class Deadlines:
    """The deadlines of pending requests, one heap for the whole channel.

    A cancel scope per request costs more than the rest of a small request together; one timer
    task that sleeps until the earliest deadline costs nothing per request. Entries hold ids
    only (ids are never reused on a channel), so an answered request leaves behind three
    numbers, not its result, until the heap is rebuilt: once it holds twice as many entries as
    there are pending requests.
    """

    __slots__ = ("_heap", "_sequence", "wake")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, MessageId]] = []
        self._sequence = 0
        self.wake = anyio.Event()

    def add(self, deadline: float, request_id: MessageId) -> None:
        heap = self._heap
        if not heap or deadline < heap[0][0]:
            self.wake.set()  # the timer sleeps until a later deadline, or for ever
        self._sequence += 1
        heapq.heappush(heap, (deadline, self._sequence, request_id))

    def next(self, pending: dict[MessageId, Pending]) -> tuple[float, MessageId] | None:
        """The earliest deadline of a request still pending, or None."""
        heap = self._heap
        if len(heap) > 2 * len(pending) + 64:
            heap[:] = [entry for entry in heap if entry[2] in pending]
            heapq.heapify(heap)
        while heap:
            deadline, _, request_id = heap[0]
            if request_id in pending:
                return deadline, request_id
            heapq.heappop(heap)
        return None

    def pop(self) -> None:
        heapq.heappop(self._heap)
