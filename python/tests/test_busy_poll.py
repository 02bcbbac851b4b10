"""``DataChannelOptions.busy_poll`` with a real worker, on asyncio and trio: which requests poll
(the metrics say), what a poll that runs out does, and what the option accepts.

Timings are never asserted; what the option buys is measured by the bench (bench/README.md).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, RequestTimeout
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("option", ["busy_poll", "receive_wait"])
async def test_lone_data_requests_poll_on_asyncio_only_and_control_requests_never(
    anyio_backend: str, option: str
) -> None:
    # The same for a wait in the receive call (test_receive_wait.py): counted alike.
    data_channel = DataChannelOptions(enabled=True, **{option: 0.01})
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        for n in range(10):
            assert await handle.request_via_data("add", {"a": n, "b": 1}) == n + 1
            assert await handle.request("add", {"a": n, "b": 2}) == n + 2
        stats = handle.stats()
        assert stats.data is not None
        assert stats.control.busy_polls == 0  # the option is the data channel's
        if anyio_backend == "asyncio":  # each, unless the loop had something else to run
            assert 1 <= stats.data.busy_polls <= 10
            assert 0 < stats.data.busy_poll_answered <= stats.data.busy_polls
        else:  # trio: the option has no effect (the docs say so)
            assert stats.data.busy_polls == 0 and stats.data.busy_poll_answered == 0
        totals = manager.stats()
        assert totals.workers["w"].data == stats.data


async def test_a_poll_that_runs_out_sleeps_for_the_answer(anyio_backend: str) -> None:
    # 1 ms of polling, then the answer after 0.2 s: the request waits for it as any other.
    data_channel = DataChannelOptions(enabled=True, busy_poll=0.001)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        for n in range(3):
            answer = await handle.request_via_data("sleep", {"seconds": 0.2, "tag": str(n)})
            assert answer == "done"
        data = handle.stats().data
        assert data is not None
        assert data.busy_poll_answered == 0
        assert (1 <= data.busy_polls <= 3) if anyio_backend == "asyncio" else data.busy_polls == 0


async def test_a_timeout_shorter_than_the_poll_still_times_the_request_out() -> None:
    data_channel = DataChannelOptions(enabled=True, busy_poll=0.01)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        with anyio.fail_after(30), pytest.raises(RequestTimeout):
            await handle.request_via_data("sleep", {"seconds": 5, "tag": "t"}, timeout=0.005)
        assert await handle.request_via_data("echo", [1]) == [1]  # the channel goes on


@pytest.mark.parametrize("value", [-0.001, 0.0101, 1, float("nan"), float("inf"), True, "0.001"])
def test_busy_poll_outside_0_to_10_ms_is_a_value_error_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match=r"busy_poll must be a number of seconds from 0 \(off\)"):
        DataChannelOptions(enabled=True, busy_poll=value)


def test_busy_poll_accepts_zero_to_ten_milliseconds() -> None:
    for value in (0, 0.0, 50e-6, 0.01):
        assert DataChannelOptions(busy_poll=value).busy_poll == value


@pytest.mark.parametrize("option", ["busy_poll", "receive_wait"])
async def test_requests_answered_while_polling_still_give_the_loop_a_turn(
    anyio_backend: str, option: str
) -> None:
    # Each answer takes at least 2 ms and comes within the 10 ms poll: each request is answered
    # while it polls, so without a turn given back the loop never ran its timers (a drill saw a
    # 1 ms ticker 394 ms late, and a move_on_after never fire). Once busy_poll has passed since
    # the loop's last turn the caller yields: at least every fifth request here, and each turn
    # runs the ticker, whose timer is long due by then.
    # The same for a wait in the receive call (test_receive_wait.py), which also never waits
    # with a timer due soon.
    data_channel = DataChannelOptions(enabled=True, **{option: 0.01})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)
            ticks += 1

    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            await anyio.sleep(0.01)
            ticks = 0
            for n in range(50):
                await handle.request_via_data("sleep", {"seconds": 0.002, "tag": str(n)})
            group.cancel_scope.cancel()
    assert ticks >= 10
