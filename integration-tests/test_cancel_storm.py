"""Callers that give up at the worst moment leave nothing behind.

A request waits for its answer on one loop future (asyncio) or an event (trio), completed by the
reader the moment the answer is read (ARCHITECTURE.md, "Fast paths"). A caller may give up at
any point of that path: before its request is written, while it is queued behind others, while
it waits, or just as its answer arrives. Here hundreds of callers give up after random delays of
up to a few milliseconds, around the round trip itself, on every worker language. Afterwards no
request is left pending, the event loop has reported nothing, the worker has not restarted, and
every later request gets its own answer.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest
from _load_kit import loop_exceptions
from aspect_ipc import DataChannelOptions, ProcessManager, RequestTimeout

pytestmark = pytest.mark.anyio

DATA = DataChannelOptions(enabled=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_callers_that_give_up_at_any_moment_leave_no_request_behind(
    worker: dict[str, Any], namespace: str
) -> None:
    rng = random.Random(19)
    outcomes = {"answered": 0, "gave up": 0, "timed out": 0}
    wrong: list[str] = []

    async def caller(handle: Any, via: str, n: int) -> None:
        request = handle.request_via_data if via == "data" else handle.request
        params = {"n": n, "pad": "x" * rng.choice((0, 10, 3000))}
        # Around one round trip, to hit every moment of the path; one caller in 20 waits as long
        # as it takes, so that some are answered however slow the machine is (a loaded CI once
        # answered none of 600 within 4 ms).
        patience = 30.0 if n % 20 == 3 else rng.uniform(0, 0.004)
        try:
            with anyio.move_on_after(patience) as scope:
                # A few give their own timeout instead: the channel's deadline path.
                timeout = patience if n % 7 == 0 else None
                answer = await request("echo", params, timeout=timeout or None)
                if answer != params:
                    wrong.append(f"{via} {n}: {answer!r:.80}")
                outcomes["answered"] += 1
        except RequestTimeout:
            outcomes["timed out"] += 1
            return
        if scope.cancelled_caught:
            outcomes["gave up"] += 1

    # A hang is a failure: the guard is far above the few seconds this takes.
    with loop_exceptions() as escaped, anyio.fail_after(120):
        async with ProcessManager(namespace=namespace) as manager:
            handle = await manager.spawn("w", **worker, data_channel=DATA)
            for wave in range(6):
                async with anyio.create_task_group() as tasks:
                    for n in range(100):
                        via = "control" if n % 10 == 0 else "data"
                        tasks.start_soon(caller, handle, via, wave * 100 + n)
            stats = handle.stats()
            assert stats.control.in_flight == 0
            assert stats.data is not None and stats.data.in_flight == 0
            # Every later request gets its own answer, on both channels.
            async with anyio.create_task_group() as tasks:
                for n in range(50):
                    tasks.start_soon(_exact_echo, handle, n, wrong)
            assert handle.restarts == 0
    assert escaped == []
    assert wrong == []
    # The delays span the round trip: some callers were answered, some gave up first.
    assert (
        outcomes["answered"] > 0 and outcomes["gave up"] + outcomes["timed out"] > 0
    ), outcomes


async def _exact_echo(handle: Any, n: int, wrong: list[str]) -> None:
    params = {"n": n, "blob": bytes([n]) * 100}
    if await handle.request_via_data("echo", params) != params:
        wrong.append(f"after the storm, data {n}")
    if await handle.request("echo", {"n": n}) != {"n": n}:
        wrong.append(f"after the storm, control {n}")
