"""Publish a manager's metrics as OpenTelemetry instruments (the ``otel`` extra).

``aspect_ipc.otel.instrument(manager)`` registers observable instruments on a meter of the given
(or the global) meter provider; each collection reads :meth:`ProcessManager.stats`, so nothing
is recorded on the hot path. Attributes: ``worker.id`` (``(retired)`` for the sum of a pool's
retired workers, which the manager no longer lists), ``channel`` (``control`` or ``data``),
``code`` on errors, ``quantile`` on latency. OpenTelemetry has no asynchronous histogram: the
round-trip latency is published as gauges of the p50, p90 and p99 (bucket upper bounds).

Instruments (kind, unit): ``aspect_ipc.requests.sent``, ``aspect_ipc.requests.received``,
``aspect_ipc.notifications.sent``, ``aspect_ipc.notifications.received`` (counters, 1);
``aspect_ipc.bytes.sent``, ``aspect_ipc.bytes.received`` (counters, By: frames as written and
read); ``aspect_ipc.errors`` (counter: error answers to our requests, by ``code``);
``aspect_ipc.timeouts``, ``aspect_ipc.busy_polls``, ``aspect_ipc.busy_polls.answered``
(counters); ``aspect_ipc.in_flight`` (gauge), ``aspect_ipc.queued_bytes``
(gauge, By); ``aspect_ipc.latency`` (gauge, s, by ``quantile``); ``aspect_ipc.restarts``
(counter, per worker); ``aspect_ipc.uptime`` (gauge, s, per running worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from .metrics import RETIRED_ID, ChannelStats, ManagerStats, WorkerStats

__all__ = ["instrument"]


class _HasStats(Protocol):
    def stats(self) -> ManagerStats: ...


_CHANNEL_COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("requests.sent", "requests_sent", "1", "Requests sent to the worker"),
    ("requests.received", "requests_received", "1", "Requests received from the worker"),
    ("notifications.sent", "notifications_sent", "1", "Notifications sent to the worker"),
    ("notifications.received", "notifications_received", "1", "Notifications received"),
    ("bytes.sent", "bytes_out", "By", "Frame bytes written to the worker"),
    ("bytes.received", "bytes_in", "By", "Frame bytes read from the worker"),
    ("timeouts", "timeouts", "1", "Requests that got no answer in time"),
    ("busy_polls", "busy_polls", "1", "Requests that busy polled for their answer"),
    ("busy_polls.answered", "busy_poll_answered", "1", "Requests answered while busy polling"),
)
_CHANNEL_GAUGES: tuple[tuple[str, str, str, str], ...] = (
    ("in_flight", "in_flight", "1", "Requests sent and not yet answered"),
    ("queued_bytes", "queued_bytes", "By", "Bytes queued for writing, not yet written"),
)


def instrument(manager: _HasStats, meter_provider: MeterProvider | None = None) -> None:
    """Register observable instruments publishing ``manager.stats()`` (see the module).

    ``meter_provider`` defaults to the global one (``opentelemetry.metrics``). Workers spawned
    with ``metrics=False`` report zeros.
    """
    provider = meter_provider or otel_metrics.get_meter_provider()
    meter = provider.get_meter("aspect_ipc")
    prefix = "aspect_ipc."

    def per_channel(field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(getattr(channel, field), attributes)
                for channel, attributes in _channels(manager.stats())
            ]

        return observe

    for name, field, unit, description in _CHANNEL_COUNTERS:
        meter.create_observable_counter(
            prefix + name, [per_channel(field)], unit=unit, description=description
        )
    for name, field, unit, description in _CHANNEL_GAUGES:
        meter.create_observable_gauge(
            prefix + name, [per_channel(field)], unit=unit, description=description
        )

    def errors(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {**attributes, "code": code})
            for channel, attributes in _channels(manager.stats())
            for code, count in channel.errors_received.items()
        ]

    def latency(options: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for channel, attributes in _channels(manager.stats()):
            for quantile, value in (
                ("p50", channel.latency_p50),
                ("p90", channel.latency_p90),
                ("p99", channel.latency_p99),
            ):
                if value is not None:
                    observations.append(Observation(value, {**attributes, "quantile": quantile}))
        return observations

    def restarts(options: CallbackOptions) -> Iterable[Observation]:
        workers = _with_retired(manager.stats())
        return [Observation(w.restarts, {"worker.id": i}) for i, w in workers.items()]

    def uptime(options: CallbackOptions) -> Iterable[Observation]:
        workers = manager.stats().workers
        return [
            Observation(w.uptime, {"worker.id": i})
            for i, w in workers.items()
            if w.uptime is not None
        ]

    meter.create_observable_counter(
        prefix + "errors", [errors], unit="1", description="Error answers to requests, by code"
    )
    meter.create_observable_gauge(
        prefix + "latency", [latency], unit="s", description="Round-trip latency percentiles"
    )
    meter.create_observable_counter(
        prefix + "restarts", [restarts], unit="1", description="Restarts after a crash"
    )
    meter.create_observable_gauge(
        prefix + "uptime", [uptime], unit="s", description="Uptime of the running incarnation"
    )


def _with_retired(stats: ManagerStats) -> dict[str, WorkerStats]:
    """The workers, and the sum of those retired (``(retired)``): a pool's recycled worker's
    counts stay in a series, so that the sums over series never go down."""
    workers = dict(stats.workers)
    if stats.retired is not None:
        workers[RETIRED_ID] = stats.retired
    return workers


def _channels(stats: ManagerStats) -> list[tuple[ChannelStats, dict[str, Any]]]:
    return [
        (channel, {"worker.id": worker_id, "channel": name})
        for worker_id, worker in _with_retired(stats).items()
        for name, channel in (("control", worker.control), ("data", worker.data))
        if channel is not None
    ]
