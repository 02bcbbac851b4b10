"""Metrics (handle.stats(), manager.stats()) with real worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from aspect_ipc import (
    DataChannelOptions,
    ManagerStats,
    ProcessManager,
    RemoteError,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
    WorkerStats,
)
from aspect_ipc.metrics import LATENCY_BUCKETS, ChannelMetrics
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
N = 25


async def test_stats_count_requests_bytes_and_latency_on_both_channels() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        for i in range(N):
            assert await handle.request("add", {"a": i, "b": 1}) == i + 1
            assert await handle.request_via_data("echo", [b"x" * 100]) == [b"x" * 100]
        stats = handle.stats()
        assert isinstance(stats, WorkerStats)
        assert stats.worker_id == "w" and stats.state == "running" and stats.pid == handle.pid
        assert stats.restarts == 0 and stats.uptime is not None and stats.uptime > 0
        control, data = stats.control, stats.data
        assert data is not None
        assert control.requests_sent == N
        assert data.requests_sent == N + 1  # and the handshake's $/hello
        for channel in (control, data):
            assert channel.bytes_out > 0 and channel.bytes_in > 0
            assert channel.errors_received == {} and channel.timeouts == 0
            assert channel.in_flight == 0 and channel.queued_bytes == 0
            assert sum(channel.latency_histogram) == channel.requests_sent
            assert channel.latency_p50 is not None and channel.latency_p99 is not None
            assert channel.latency_p50 <= channel.latency_p90 <= channel.latency_p99  # type: ignore[operator]
        # Each echo carried 100 bytes each way, framed: the data channel counts them all.
        assert data.bytes_out > N * 100 and data.bytes_in > N * 100
        # The worker's $/ready on the control channel is a notification received.
        assert control.notifications_received >= 1


async def test_errors_by_code_and_timeouts() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker())
        for _ in range(3):
            with pytest.raises(RemoteError):
                await handle.request("fail", {"message": "no", "code": 4242})
        with pytest.raises(RemoteError):
            await handle.request("fail", {"message": "bug"})  # -32000: a handler error
        with pytest.raises(RemoteError):
            await handle.request("no such method")
        with pytest.raises(RequestTimeout):
            await handle.request("sleep", {"seconds": 5}, timeout=0.2)
        stats = handle.stats().control
        assert stats.errors_received == {4242: 3, -32000: 1, -32601: 1}
        assert stats.timeouts == 1 and stats.requests_sent == 6
        with anyio.fail_after(2):  # the $/cancelRequest of the timed-out request, sent by a task
            while handle.stats().control.notifications_sent < 1:
                await anyio.sleep(0.01)


async def test_a_request_with_an_input_stream_that_times_out_is_counted() -> None:
    async def slow() -> AsyncIterator[int]:
        yield 1
        await anyio.sleep(30)

    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(RequestTimeout):
            await handle.request_via_data("sumStream", {}, input=slow(), timeout=0.3)
        data = handle.stats().data
        assert data is not None and data.timeouts == 1  # it stayed at 0


async def test_in_flight_counts_pending_requests() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(handle.request_via_data, "sleep", {"seconds": 0.5})
            with anyio.fail_after(5):
                while handle.stats().data.in_flight < 5:  # type: ignore[union-attr]
                    await anyio.sleep(0.01)
        assert handle.stats().data.in_flight == 0  # type: ignore[union-attr]


async def test_counts_survive_restarts_and_the_manager_sums_workers() -> None:
    policy = RestartPolicy(enabled=True, backoff=0.05)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        first = await manager.spawn("a", **python_worker())
        second = await manager.spawn("b", **python_worker(), data_channel=DATA)
        await first.request("echo", [1])
        with pytest.raises(WorkerCrashed):
            await first.request("crash", {"code": 3})
        await first.request("echo", [2])  # waits for the restarted worker
        await second.request_via_data("echo", [3])
        stats = manager.stats()
        assert isinstance(stats, ManagerStats)
        assert set(stats.workers) == {"a", "b"}
        a = stats.workers["a"]
        assert a.restarts == 1 and a.control.requests_sent == 3 and a.data is None
        assert stats.workers["b"].data is not None
        assert stats.requests_sent == 3 + 0 + 2  # a: 3 on control; b: $/hello, echo on data
        assert stats.restarts == 1
        assert stats.bytes_out == sum(
            c.bytes_out
            for w in stats.workers.values()
            for c in (w.control, w.data)
            if c is not None
        )
        await first.stop()
        assert first.stats().uptime is None and first.stats().state == "stopped"


async def test_metrics_off_on_the_manager_or_the_spawn() -> None:
    async with ProcessManager(namespace=namespace(), metrics=False) as manager:
        off = await manager.spawn("off", **python_worker())
        on = await manager.spawn("on", **python_worker(), metrics=True)
        await off.request("echo", [1])
        await on.request("echo", [1])
        assert off.stats().control.requests_sent == 0 and off.stats().control.bytes_out == 0
        assert off.stats().uptime is not None  # the handle's own figures are still there
        assert on.stats().control.requests_sent == 1


def test_histogram_buckets_and_percentiles() -> None:
    metrics = ChannelMetrics()
    assert metrics.snapshot().latency_p50 is None
    for _ in range(90):
        metrics.observe(10_000)  # 10 µs: below 16.4 µs, the first bucket
    for _ in range(9):
        metrics.observe(1_000_000)  # 1 ms: below 2**20 ns (1.05 ms)
    metrics.observe(100 * 10**9)  # beyond the last bound
    stats = metrics.snapshot()
    assert stats.latency_p50 == LATENCY_BUCKETS[0] == 2**14 / 1e9
    assert stats.latency_p90 == 2**14 / 1e9
    assert stats.latency_p99 == 2**20 / 1e9
    assert stats.latency_histogram[-1] == 1 and sum(stats.latency_histogram) == 100
    assert LATENCY_BUCKETS[-1] == 2**34 / 1e9  # 17.2 s
