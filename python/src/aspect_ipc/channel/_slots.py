"""A handler's place among the requests a channel runs at once (spec 4.5).

A channel runs at most ``max_concurrent_handlers`` of the peer's requests at once, and stops
reading while they all run. A handler that waits for the peer (the answer to a request of its
own, or a stream's items or credit) gives its place up meanwhile: otherwise handlers that call
the peer back, whose handlers call back again, would stop both readers, each waiting for answers
the other no longer reads (300 such requests with a bound of 256 did), and handlers reading
input streams would stop the reader before the items they wait for. Done waiting, it takes its
place again if one is free, and otherwise runs to its end without one: waiting for a place there
could wait for handlers that wait for it.
"""

from __future__ import annotations

from contextvars import ContextVar

import anyio

__all__ = ["HandlerSlot", "current_slot"]


class HandlerSlot:
    """One running handler's place, shared by the tasks it starts (their context is a copy)."""

    __slots__ = ("_ended", "_slots", "_waits", "held")

    def __init__(self, slots: anyio.Semaphore) -> None:
        self._slots = slots  # acquired for this handler by the reader
        self.held = True
        self._waits = 0  # the handler's (or its tasks') waits for the peer, going on
        # Ended: a task the handler started may outlive it, with this in its context; it must
        # not take a place nobody would give back.
        self._ended = False

    def waiting(self) -> None:
        """The handler (or a task of its) waits for the peer: the first wait gives the place
        up."""
        self._waits += 1
        if self._waits == 1 and self.held:
            self.held = False
            self._slots.release()

    def answered(self) -> None:
        """A wait for the peer has ended (answered, failed, cancelled): once none is left, the
        handler takes a place again if one is free."""
        self._waits -= 1
        if self._waits == 0 and not self.held and not self._ended:
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                return
            self.held = True

    def release(self) -> None:
        """The handler has ended."""
        self._ended = True
        if self.held:
            self.held = False
            self._slots.release()


current_slot: ContextVar[HandlerSlot | None] = ContextVar("current_slot", default=None)
"""The place of the handler running in this task (None outside request handlers)."""
