"""aspect_ipc.otel with the OpenTelemetry SDK's in-memory reader, and real workers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError
from aspect_ipc.otel import instrument
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Every data point the reader collects now, by instrument name."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, []).append(
                        (dict(point.attributes or {}), point.value)  # type: ignore[union-attr]
                    )
    return found


def _instrumented(manager: ProcessManager) -> tuple[InMemoryMetricReader, MeterProvider]:
    """``manager``'s instruments on a provider of their own, read by an in-memory reader."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(manager, meter_provider=provider)
    return reader, provider


async def test_instruments_publish_the_managers_stats() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        reader, provider = _instrumented(manager)
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        for i in range(7):
            await handle.request("add", {"a": i, "b": i})
        with pytest.raises(RemoteError):
            await handle.request("fail", {"message": "no", "code": 4242})
        points = _points(reader)
        control = {"worker.id": "w", "channel": "control"}
        data = {"worker.id": "w", "channel": "data"}
        assert (control, 8) in points["aspect_ipc.requests.sent"]
        assert (data, 1) in points["aspect_ipc.requests.sent"]  # $/hello
        assert ({**control, "code": 4242}, 1) in points["aspect_ipc.errors"]
        sent = dict((a["channel"], v) for a, v in points["aspect_ipc.bytes.sent"])
        assert sent["control"] > 0 and sent["data"] > 0
        assert (control, 0) in points["aspect_ipc.in_flight"]
        assert ({"worker.id": "w"}, 0) in points["aspect_ipc.restarts"]
        [(_, uptime)] = points["aspect_ipc.uptime"]
        assert uptime > 0
        quantiles = {
            a["quantile"] for a, _ in points["aspect_ipc.latency"] if a["channel"] == "control"
        }
        assert quantiles == {"p50", "p90", "p99"}
        for name in (
            "aspect_ipc.requests.received",
            "aspect_ipc.notifications.sent",
            "aspect_ipc.notifications.received",
            "aspect_ipc.bytes.received",
            "aspect_ipc.timeouts",
            "aspect_ipc.queued_bytes",
        ):
            assert name in points
        await handle.stop()
    provider.shutdown()


async def test_a_pools_retired_workers_stay_counted_as_one_retired_series() -> None:
    # Retired workers leave the manager (a pool recycling for months would keep them all); the
    # export keeps their counts in a "(retired)" series, so that sums never go down.
    async with ProcessManager(namespace=namespace()) as manager:
        reader, provider = _instrumented(manager)
        pool = await manager.spawn_pool(
            "p", 2, **python_worker(), data_channel=DataChannelOptions(enabled=True),
            max_requests_per_worker=3,
        )  # fmt: skip
        sums: list[int] = []
        for _ in range(3):
            assert [r async for r in pool.map("echo", [[i] for i in range(6)])] == [
                [i] for i in range(6)
            ]
            with anyio.fail_after(10):  # a hang guard
                # the replacements run, and the retired workers have stopped and left
                while len(pool.handles) < 2 or set(manager.handles) != {h.id for h in pool.handles}:
                    await anyio.sleep(0.01)
            points = _points(reader)
            sums.append(sum(v for _, v in points["aspect_ipc.requests.sent"]))
            assert sums[-1] == manager.stats().requests_sent
            ids = {a["worker.id"] for a, _ in points["aspect_ipc.requests.sent"]}
            assert ids == {h.id for h in pool.handles} | {"(retired)"}
        assert sums == sorted(sums) and sums[0] < sums[-1]
    provider.shutdown()
