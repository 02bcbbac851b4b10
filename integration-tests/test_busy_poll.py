"""Busy polling (``DataChannelOptions.busy_poll``): a lone request on the data channel reads
for its answer without sleeping, and whatever comes instead of it (a large answer in pieces,
the worker's notification or request, the end of the channel) is handled as it is without
polling. Every worker language; the parent on asyncio, where the option acts.

No timing is asserted: the tests check that answers, notifications and failures are what they
are without the option, and the metrics say that the requests did poll (a test whose requests
never polled would prove nothing).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, WorkerCrashed

pytestmark = pytest.mark.anyio

POLLING = DataChannelOptions(enabled=True, busy_poll=0.01)  # the longest allowed: 10 ms


async def test_answers_small_and_large_are_exact_and_the_requests_polled(
    worker: dict[str, Any], namespace: str
) -> None:
    payloads: list[Any] = [
        {"n": 1},
        [b"\x00" * 64],
        [b"\xab" * 65536],
        [b"\x01" * (1 << 20)],
    ]
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=POLLING)
        for _ in range(20):
            for payload in payloads:
                assert await handle.request_via_data("echo", payload) == payload
        data = handle.stats().data
        assert data is not None
        # Each was the only request in flight, so each polled unless the loop had something
        # else to run first (the channel's writer, with the rest of a 1 MiB request the socket
        # took only in part, say); and some were answered while polling.
        assert 1 <= data.busy_polls <= 80
        assert 0 < data.busy_poll_answered <= data.busy_polls


async def test_many_in_flight_with_busy_polling_are_all_answered(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=POLLING)
        answers: dict[int, Any] = {}

        async def call(n: int) -> None:
            answers[n] = await handle.request_via_data("add", {"a": n, "b": 1})

        with anyio.fail_after(60):  # a hang guard
            async with anyio.create_task_group() as group:
                for n in range(200):
                    group.start_soon(call, n)
        assert answers == {n: n + 1 for n in range(200)}


async def test_a_notification_and_a_request_from_the_worker_while_polling_are_handled(
    worker: dict[str, Any], namespace: str
) -> None:
    # The worker's message comes first, the answer after it: the poll gives the message to the
    # channel's reader as it would without polling, and the answer still comes. A plain
    # handler of the notification has run by the time the request returns, as without the
    # poll (the poll used to read both at once and return before the handler's turn).
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=POLLING)
        heard: list[Any] = []
        handle.on_notification("heard", heard.append, via="data")

        async def double(params: Any) -> Any:
            return params["n"] * 2

        handle.on_request("double", double, via="data")
        with anyio.fail_after(60):
            for n in range(100):
                note = {"method": "heard", "params": [n], "via": "data"}
                assert await handle.request_via_data("notifyParent", note) is None
                assert heard[-1:] == [[n]]
                call = {"method": "double", "params": {"n": n}, "via": "data"}
                assert await handle.request_via_data("callParent", call) == 2 * n
        assert heard == [[n] for n in range(100)]
        data = handle.stats().data
        # Not every request polled: one made while the reader's task or a handler's is still
        # to run does not (the loop has something else to do).
        assert data is not None and data.busy_polls >= 1


async def test_a_worker_that_exits_while_the_parent_polls_fails_the_request(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=POLLING)
        assert await handle.request_via_data("echo", [1]) == [1]
        with anyio.fail_after(60), pytest.raises(WorkerCrashed) as caught:
            await handle.request_via_data("crash", {"code": 7})
        assert "7" in str(caught.value)


LOOPING = """
import sys, anyio
from aspect_ipc import DataChannelOptions, ProcessManager

async def main():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)
            ticks += 1

    async with ProcessManager(namespace=sys.argv[3]) as manager:
        handle = await manager.spawn(
            "w", executable=sys.argv[1], args=sys.argv[2:3] if sys.argv[2] else [],
            data_channel=DataChannelOptions(enabled=True, busy_poll=0.01),
        )
        requests = 0
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            with anyio.move_on_after(0.3):  # a timer: the loop must get its turn to fire it
                while True:
                    await handle.request_via_data("echo", [requests])
                    requests += 1
            group.cancel_scope.cancel()
        print("ended", requests > 0, ticks > 0, flush=True)

anyio.run(main)
"""


def test_back_to_back_polled_requests_leave_the_loop_its_turn(
    worker: dict[str, Any], namespace: str
) -> None:
    # Each answered while it polled, so none yielded: the loop never ran its timers, and a
    # move_on_after around the loop never fired (a drill saw it run on for 5 s and more; a 1 ms
    # ticker was up to 394 ms late). In a process of its own: a hang fails, by the timeout.
    args = worker.get("args") or [""]
    done = subprocess.run(
        [sys.executable, "-c", LOOPING, worker["executable"], args[0], namespace],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ended True True"
