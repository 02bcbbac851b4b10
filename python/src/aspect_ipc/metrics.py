"""Metrics: what each channel of each worker has carried, and how fast it was answered.

A channel counts into a :class:`ChannelMetrics`: plain integers updated inline by the channel's
reader and senders (one event loop: no locks; no allocation per message), and a latency
histogram of fixed, log-spaced buckets (powers of two from 16.4 µs to 17.2 s: 2**14 ns, then
doubling, so a bucket is one shift and ``bit_length`` of a ``perf_counter_ns`` difference) whose
percentiles are computed only when a snapshot is taken. A handle keeps one ``ChannelMetrics``
per channel across its restarts; :meth:`ProcessHandle.stats` and :meth:`ProcessManager.stats`
return frozen snapshots (:class:`ChannelStats`, :class:`WorkerStats`, :class:`ManagerStats`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "BUCKETS",
    "BUCKET_SHIFT",
    "LATENCY_BUCKETS",
    "ChannelMetrics",
    "ChannelStats",
    "ManagerStats",
    "WorkerStats",
]

BUCKET_SHIFT = 14
"""The first latency bucket ends at ``2**BUCKET_SHIFT`` ns (16.4 µs)."""
BUCKETS = 22
"""Latency buckets: [0, 16.4 µs), [16.4, 32.8 µs), ... [8.6 s, 17.2 s), then 17.2 s and above."""

LATENCY_BUCKETS: tuple[float, ...] = tuple(
    2 ** (BUCKET_SHIFT + i) / 1e9 for i in range(BUCKETS - 1)
)
"""The upper bounds (seconds) of the latency buckets; a last bucket holds everything above."""


class _Live(Protocol):
    """What a snapshot reads from a live channel (None when the worker is not running)."""

    @property
    def in_flight(self) -> int: ...

    @property
    def queued_bytes(self) -> int: ...


class ChannelMetrics:
    """The counters of one channel (kept by the handle across restarts); see the module."""

    __slots__ = (
        "busy_poll_answered",
        "busy_polls",
        "bytes_in",
        "bytes_out",
        "errors_received",
        "errors_sent",
        "latency",
        "notifications_received",
        "notifications_sent",
        "requests_received",
        "requests_sent",
        "timeouts",
    )

    def __init__(self) -> None:
        self.requests_sent = 0
        self.requests_received = 0
        self.notifications_sent = 0
        self.notifications_received = 0
        self.bytes_out = 0  # as taken by the writer, framing included
        self.bytes_in = 0
        self.timeouts = 0
        # Requests that busy polled for their answer (DataChannelOptions.busy_poll), and those
        # of them answered while polling: a low share says the poll is too short to pay.
        self.busy_polls = 0
        self.busy_poll_answered = 0
        # Error answers to our pending requests, by code (not late ones, after a timeout).
        self.errors_received: dict[int, int] = {}
        self.errors_sent: dict[int, int] = {}  # error responses we sent, by code
        self.latency = [0] * BUCKETS

    def observe(self, nanoseconds: int) -> None:
        """Count one round trip (the channel does the same inline, on its hot path)."""
        index = (nanoseconds >> BUCKET_SHIFT).bit_length()  # 0 below 16.4 µs, 1 below 32.8...
        self.latency[index if index < BUCKETS else BUCKETS - 1] += 1

    def snapshot(self, live: _Live | None = None) -> ChannelStats:
        """A frozen copy; ``live`` (the running channel) gives in-flight and queued bytes."""
        histogram = tuple(self.latency)
        return ChannelStats(
            requests_sent=self.requests_sent,
            requests_received=self.requests_received,
            notifications_sent=self.notifications_sent,
            notifications_received=self.notifications_received,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            timeouts=self.timeouts,
            busy_polls=self.busy_polls,
            busy_poll_answered=self.busy_poll_answered,
            errors_received=dict(self.errors_received),
            errors_sent=dict(self.errors_sent),
            in_flight=0 if live is None else live.in_flight,
            queued_bytes=0 if live is None else live.queued_bytes,
            latency_histogram=histogram,
            latency_p50=_percentile(histogram, 0.50),
            latency_p90=_percentile(histogram, 0.90),
            latency_p99=_percentile(histogram, 0.99),
        )


def _percentile(histogram: tuple[int, ...], fraction: float) -> float | None:
    """The upper bound of the bucket holding the ``fraction`` quantile (None: no samples);
    the open last bucket reports its lower bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return LATENCY_BUCKETS[min(index, len(LATENCY_BUCKETS) - 1)]
    return LATENCY_BUCKETS[-1]  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class ChannelStats:
    """A snapshot of one channel's counters (summed over the worker's incarnations).

    Latency percentiles are bucket upper bounds in seconds (None before any answer);
    ``latency_histogram[i]`` counts round trips below ``LATENCY_BUCKETS[i]`` (and at or above
    the bound before it), the last entry those of 17.2 s and more.
    """

    requests_sent: int = 0
    requests_received: int = 0
    notifications_sent: int = 0
    notifications_received: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    timeouts: int = 0
    busy_polls: int = 0
    """Requests that busy polled for their answer (``DataChannelOptions.busy_poll``)."""
    busy_poll_answered: int = 0
    """Of :attr:`busy_polls`, those answered while polling (the rest slept for it)."""
    errors_received: Mapping[int, int] = field(default_factory=dict)
    errors_sent: Mapping[int, int] = field(default_factory=dict)
    in_flight: int = 0
    queued_bytes: int = 0
    latency_histogram: tuple[int, ...] = (0,) * BUCKETS
    latency_p50: float | None = None
    latency_p90: float | None = None
    latency_p99: float | None = None


@dataclass(frozen=True)
class WorkerStats:
    """A snapshot of one worker: its channels, restarts, and uptime of the running incarnation
    (seconds since it started; None when not running). ``data`` is None without a data
    channel."""

    worker_id: str
    state: str
    pid: int | None
    restarts: int
    uptime: float | None
    control: ChannelStats
    data: ChannelStats | None


@dataclass(frozen=True)
class ManagerStats:
    """:meth:`ProcessManager.stats`: every worker's snapshot by id, and their totals.

    ``retired`` sums the workers the manager no longer lists (stopped ones, a pool's recycled
    or removed ones, a failed one whose id was spawned again), under the id ``(retired)``, or is
    None while there are none: the totals include it, so they never go down, and the
    OpenTelemetry export publishes it as a worker of its own.
    """

    workers: Mapping[str, WorkerStats]
    requests_sent: int
    requests_received: int
    bytes_in: int
    bytes_out: int
    errors_received: int
    in_flight: int
    queued_bytes: int
    restarts: int
    retired: WorkerStats | None = None

    @staticmethod
    def of(workers: Mapping[str, WorkerStats], retired: WorkerStats | None = None) -> ManagerStats:
        """Sum ``workers``' channels, and ``retired``'s, into totals."""
        every = [*workers.values(), *([retired] if retired is not None else [])]
        channels = [
            channel
            for worker in every
            for channel in (worker.control, worker.data)
            if channel is not None
        ]
        return ManagerStats(
            workers=dict(workers),
            requests_sent=sum(c.requests_sent for c in channels),
            requests_received=sum(c.requests_received for c in channels),
            bytes_in=sum(c.bytes_in for c in channels),
            bytes_out=sum(c.bytes_out for c in channels),
            errors_received=sum(sum(c.errors_received.values()) for c in channels),
            in_flight=sum(c.in_flight for c in channels),
            queued_bytes=sum(c.queued_bytes for c in channels),
            restarts=sum(w.restarts for w in every),
            retired=retired,
        )


RETIRED_ID = "(retired)"
"""The id under which :attr:`ManagerStats.retired` sums the workers no longer listed."""


def retire(prior: WorkerStats | None, worker: WorkerStats) -> WorkerStats:
    """``prior`` (the workers retired so far, or None) with ``worker``'s counters added."""
    if prior is None:
        prior = WorkerStats(RETIRED_ID, "retired", None, 0, None, ChannelStats(), None)
    return WorkerStats(
        RETIRED_ID,
        "retired",
        None,
        prior.restarts + worker.restarts,
        None,
        _plus(prior.control, worker.control),
        worker.data if prior.data is None else _plus(prior.data, worker.data),
    )


def _plus(a: ChannelStats, b: ChannelStats | None) -> ChannelStats:
    """The counters of ``a`` and ``b`` added (nothing in flight: they are stopped)."""
    if b is None:
        return a
    histogram = tuple(x + y for x, y in zip(a.latency_histogram, b.latency_histogram, strict=True))
    return ChannelStats(
        requests_sent=a.requests_sent + b.requests_sent,
        requests_received=a.requests_received + b.requests_received,
        notifications_sent=a.notifications_sent + b.notifications_sent,
        notifications_received=a.notifications_received + b.notifications_received,
        bytes_in=a.bytes_in + b.bytes_in,
        bytes_out=a.bytes_out + b.bytes_out,
        timeouts=a.timeouts + b.timeouts,
        busy_polls=a.busy_polls + b.busy_polls,
        busy_poll_answered=a.busy_poll_answered + b.busy_poll_answered,
        errors_received=_add_counts(a.errors_received, b.errors_received),
        errors_sent=_add_counts(a.errors_sent, b.errors_sent),
        latency_histogram=histogram,
        latency_p50=_percentile(histogram, 0.50),
        latency_p90=_percentile(histogram, 0.90),
        latency_p99=_percentile(histogram, 0.99),
    )


def _add_counts(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    counts = dict(a)
    for code, count in b.items():
        counts[code] = counts.get(code, 0) + count
    return counts
