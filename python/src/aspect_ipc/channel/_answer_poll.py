"""How a lone request waits for its answer on asyncio without sleeping in ``epoll_wait``:
busy polling (``DataChannelOptions.busy_poll``) or a wait in the socket's receive call
(``receive_wait``). Both opt-in, both for the fast reader (:mod:`._fast_reader`), whose readiness
callback they call themselves.

Why: waking a thread asleep in ``epoll_wait`` cost tens of microseconds on the development
machine (a virtual one), more than a small round trip's CPU; a thread that never sleeps, or
sleeps in ``recv``, ran at once. The price is the loop's: it runs nothing else meanwhile, which
is what the limits below (nothing else ready, no timer due, back-offs, a turn at least every
``seconds``) keep bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from time import perf_counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._fast_reader import FastReader
    from ._inbound import Inbound

__all__ = ["AnswerPoll"]

_MAX_SKIPPED_WAITS = 64  # requests that skip their wait after waits that ran out (see wait)
_TICK_BOUND = 0.01  # how long a receive timeout of a few µs may take: 2 ticks at 200 Hz


def _timeval(seconds: float) -> bytes:
    """``seconds`` as a ``struct timeval``, for SO_RCVTIMEO (never 0: that means for ever)."""
    micros = max(round(seconds * 1e6), 1)
    return struct.pack("ll", micros // 1_000_000, micros % 1_000_000)


class AnswerPoll:
    """One fast reader's polls and waits for a lone request's answer (the channel's ``_poll``
    while it runs, if either option is set)."""

    def __init__(self, reader: FastReader, channel: Inbound, sock: socket.socket | None) -> None:
        self._reader = reader
        self._channel = channel
        self._loop = asyncio.get_running_loop()
        self._socket = sock  # for the waits in the receive call (see wait); None: no waits
        self._receive_timeout = 0.0  # the socket's SO_RCVTIMEO, as last set
        # When the loop last had a turn, if requests answered while polling have run since
        # without yielding (see spin); None: it has had one since.
        self._polling_since: float | None = None
        # After a wait that ran out, the next requests skip theirs: how many are left to skip,
        # and how many the last miss made them skip (doubled by each miss in a row).
        self._skip_waits = 0
        self._wait_backoff = 0

    def poll(self, answered: asyncio.Future[None]) -> bool:
        """For the channel's only request in flight, just sent: a busy poll (:meth:`spin`) or
        a wait in the receive call (:meth:`wait`), as the channel is set. True: it was
        answered, and the caller must yield once before it goes on (see :meth:`spin`)."""
        channel = self._channel
        if channel.busy_poll:
            return self.spin(answered, channel.busy_poll)
        if channel.receive_wait:
            return self.wait(answered, channel.receive_wait)
        return False

    def wait(self, answered: asyncio.Future[None], seconds: float) -> bool:
        """Wait for ``answered`` asleep in the socket's receive call, for about ``seconds``;
        only while the loop has nothing else to run and no timer due within ``_TICK_BOUND``.

        On the development machine (a virtual one, two CPUs) a small round trip whose answer
        is awaited in ``recv`` took 18-28 µs, against 26-93 in ``epoll_wait`` (as any asyncio
        loop does, run to run), and 40-66 for mp.Pipe in the same runs; ``select``, ``poll``
        and ``epoll`` with a short timeout were no faster than the loop. So the socket is put in
        blocking mode with a receive timeout (SO_RCVTIMEO) for the wait, and back; every send
        on it says MSG_DONTWAIT, so a thread's write never blocks meanwhile.

        The kernel counts that timeout in scheduler ticks: a receive that gets nothing returns
        after one or two ticks (6-8 ms at 250 Hz), however short the timeout asked, and the
        loop runs nothing until then. So a wait that runs out, or outlasts ``seconds`` (the
        answer came, but late), makes the next requests skip their waits (1, then 2, 4... up to
        64 in a row): a worker whose answers take longer holds the loop once in 65 requests at
        most. Opt-in for that (DataChannelOptions.receive_wait). Returns what :meth:`spin`
        returns.
        """
        if self._skip_waits:
            self._skip_waits -= 1
            return False
        loop, reader = self._loop, self._reader
        ready = getattr(loop, "_ready", None)  # asyncio's run queue and timers (not uvloop's)
        timers = getattr(loop, "_scheduled", None)
        sock = self._socket
        if ready is None or ready or timers is None or sock is None or not reader.watching:
            return False
        if timers and timers[0].when() - loop.time() < _TICK_BOUND:
            return False  # a timer is due before a wait that runs out ends: it fires on time
        metrics = self._channel.metrics
        if metrics is not None:
            metrics.busy_polls += 1
        start = perf_counter()
        if self._polling_since is None:
            self._polling_since = start
        end = start + seconds
        try:
            if self._receive_timeout != seconds:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
                self._receive_timeout = seconds
            sock.setblocking(True)
            on_readable = reader.on_readable
            while reader.watching and not answered.done() and not ready:
                on_readable()  # asleep in recv until bytes come, or the timeout
                if perf_counter() >= end:
                    break
        except OSError:  # the socket closed meanwhile: the reader meets it, and says so
            pass
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile: nothing left to restore
                sock.setblocking(False)
        if answered.done() and perf_counter() <= end:
            self._wait_backoff = 0
        else:  # it ran out, or outlasted ``seconds`` (the loop ran nothing meanwhile)
            self._wait_backoff = min(max(self._wait_backoff * 2, 1), _MAX_SKIPPED_WAITS)
            self._skip_waits = self._wait_backoff
        return self._polled(answered, seconds, bool(ready))

    def spin(self, answered: asyncio.Future[None], seconds: float) -> bool:
        """Busy polling: read without sleeping until ``answered`` is done, ``seconds`` have
        passed, or the slow lane has the input; only while the loop has nothing else to run.

        Waking a thread that sleeps in ``epoll_wait`` costs tens of microseconds on many
        machines (more than a small round trip's CPU); a reader that never sleeps sees the
        answer as it lands, and completes it in this call, so the caller's ``await`` does not
        even yield. The price: this CPU stays busy meanwhile, and the loop runs nothing else.

        True: the caller must yield once before it goes on, for two reasons. What this read
        woke (a handler of a notification that came before the answer, another caller) would
        have run before the caller without the poll, the loop running callbacks in the order
        they are made; so it still does. And the loop must get its turn (timers, cancel scopes'
        deadlines, other descriptors, none of which shows in the run queue): a caller making
        request after request, each answered while it polled, would never give it one. So once
        ``seconds`` have passed since the loop last had a turn, the caller yields.
        """
        ready = getattr(self._loop, "_ready", None)  # asyncio's run queue (not on uvloop)
        if ready is None or ready:
            return False  # something else is waiting to run (or it cannot be told): sleep
        reader = self._reader
        metrics = self._channel.metrics
        if metrics is not None:
            metrics.busy_polls += 1
        start = perf_counter()
        if self._polling_since is None:
            self._polling_since = start  # the loop's last turn: before this poll
        end = start + seconds
        on_readable, yield_cpu = reader.on_readable, os.sched_yield
        while reader.watching and not answered.done():
            on_readable()
            if perf_counter() >= end or ready:
                break
            yield_cpu()  # a peer on this same CPU runs now, not when the time is up
        return self._polled(answered, seconds, bool(ready))

    def _polled(self, answered: asyncio.Future[None], seconds: float, woke: bool) -> bool:
        """After a poll or a wait: whether the caller must yield once (see :meth:`spin`)."""
        if not answered.done():
            self._polling_since = None  # the caller waits: the loop has its turn
            return False
        metrics = self._channel.metrics
        if metrics is not None:
            metrics.busy_poll_answered += 1
        since = self._polling_since
        if woke or since is None or perf_counter() - since >= seconds:
            self._polling_since = None  # the caller yields: the loop has its turn
            return True
        return False
