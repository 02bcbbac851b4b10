"""A pool's members and the choice of a member for each request (the base of WorkerPool).

A request goes to the running member with the fewest requests in flight (one pass over the
members: O(size)); failing that, to one that is (re)starting, whose handle makes the request wait
until it runs. The counts are kept under a lock, since a blocking caller's thread takes and gives
back members too (``acquire_from_thread``, ``_release``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio

from .errors import WorkerUnavailable
from .handle import ProcessHandle
from .options import WorkerState

__all__ = ["LIVE", "Member", "Members"]

LIVE = (WorkerState.STARTING, WorkerState.RESTARTING, WorkerState.RUNNING)


def _now(function: Callable[[], None]) -> None:
    function()


class Member:
    """One slot's worker and its load."""

    __slots__ = ("handle", "in_flight", "retiring", "served", "slot")

    def __init__(self, slot: int, handle: ProcessHandle) -> None:
        self.slot = slot
        self.handle = handle
        self.in_flight = 0
        self.served = 0
        self.retiring = False


class Members:
    """The members' state and the picking of one; :class:`~.pool.WorkerPool` sets the fields."""

    name: str
    max_requests_per_worker: int | None
    _members: list[Member | None]
    _pending: int  # replacements being spawned
    _changed: anyio.Event
    _closed: bool
    _counts: threading.Lock  # in_flight and served: blocking callers count too

    def _check_open(self) -> None:
        if self._closed:
            raise WorkerUnavailable(
                f"pool {self.name!r} is stopped (stop() was called, or its manager closed)"
            )

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def _pick(self, avoid: set[ProcessHandle]) -> Member:
        """The least-loaded running member (not in ``avoid`` when another is live)."""
        while True:
            self._check_open()
            best = self._least_loaded(avoid) or self._least_loaded(set())
            fallback = None
            if best is None:  # none running: one (re)starting, whose handle waits for it
                starting = [
                    m
                    for m in self._members
                    if m is not None and not m.retiring and m.handle.state in LIVE
                ]
                fresh = [m for m in starting if m.handle not in avoid]
                fallback = (fresh or starting)[0] if starting else None
            best = best or fallback
            if best is not None:
                return best
            if self._pending == 0:
                raise WorkerUnavailable(
                    f"pool {self.name!r} has no live worker ({self._states()}); failed ones: "
                    f"{[h.id for h in self._handles() if h.state is WorkerState.FAILED]}"
                )
            await self._changed.wait()

    def _least_loaded(self, avoid: set[ProcessHandle]) -> Member | None:
        best: Member | None = None
        for member in self._members:
            if (
                member is not None
                and not member.retiring
                and member.handle.state is WorkerState.RUNNING
                and member.handle not in avoid
                and (best is None or member.in_flight < best.in_flight)
            ):
                best = member
        return best

    def _states(self) -> str:
        return ", ".join(f"{h.id} {h.state.value}" for h in self._handles()) or "no workers"

    def _handles(self) -> list[ProcessHandle]:
        return [m.handle for m in self._members if m is not None]

    def acquire_from_thread(self) -> Member | None:
        """``_acquire`` for a blocking caller's thread, without waiting: None when the loop must
        choose (no member is running, or members are recycled)."""
        if self._closed or self.max_requests_per_worker is not None:
            return None
        with self._counts:
            member = self._least_loaded(set())
            if member is not None:
                member.in_flight += 1
                member.served += 1
        return member

    def _release(self, member: Member, on_loop: Callable[[Any], object] | None = None) -> None:
        """Count a request or stream done; ``on_loop`` runs a function on the loop thread."""
        with self._counts:
            member.in_flight -= 1
            idle = member.in_flight == 0
        if member.retiring and idle:
            (on_loop or _now)(self._notify)
