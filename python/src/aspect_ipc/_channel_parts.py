"""The bookkeeping pieces of a :class:`~aspect_ipc.channel.Channel`: a pending request, a queued
outgoing message, and the deadlines of pending requests."""

from __future__ import annotations

import heapq
from typing import Any

import anyio

from .jsonrpc import MessageId

__all__ = ["Buffer", "_Deadlines", "_Outgoing", "_Pending"]

Buffer = bytes | bytearray | memoryview


class _Pending:
    __slots__ = ("error", "event", "result", "timed_out")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.timed_out = False


class _Outgoing:
    """One message's buffers in the write queue (compared by identity: ``list.remove``)."""

    __slots__ = ("parts", "queued", "size")

    def __init__(self, parts: list[Buffer]) -> None:
        self.parts = parts
        self.size = sum(map(len, parts))
        self.queued = True  # until the writer takes it

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


class _Deadlines:
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

    def next(self, pending: dict[MessageId, _Pending]) -> tuple[float, MessageId] | None:
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
