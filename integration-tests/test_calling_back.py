"""Handlers that call the peer back, beyond the parent's bound on the handlers it runs at once
(PROTOCOL.md 4.5; the parent's and the Python SDK's bound is 256 per channel).

The parent sends 300 requests whose worker handlers each call the parent, whose handler calls
the worker again. A handler waiting for the peer's answer does not count against the bound, so
every request is answered. It used to deadlock with every worker language: the parent ran 256
handlers, each waiting for an answer, and stopped reading, answers included, until the requests'
timeouts (a Python worker stopped reading too, for the same reason)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager

pytestmark = pytest.mark.anyio

CALLS = 300  # over the bound of 256, as a busy parent's would be


@pytest.mark.parametrize("via", ["control", "data"])
async def test_300_requests_whose_handlers_call_back_and_forth_are_all_answered(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        send = handle.request if via == "control" else handle.request_via_data
        running = peak = 0

        # The parent's handler calls the worker again.
        async def price(params: Any) -> Any:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                # A second waiting for the worker (which does not count against the bound)
                # keeps every handler running until all have started, however loaded the
                # machine: the peak then says whether the bound was passed, not how fast.
                await send("sleep", {"seconds": 1.0, "tag": "p"}, timeout=120)
                return await send("echo", params, timeout=120)
            finally:
                running -= 1

        handle.on_request("price", price, via=via)
        answers: dict[int, Any] = {}

        async def call(n: int) -> None:
            request = {"method": "price", "params": {"n": n}, "via": via}
            answers[n] = await send("callParent", request, timeout=120)

        async with anyio.create_task_group() as group:
            for n in range(CALLS):
                group.start_soon(call, n)
        assert answers == {n: {"n": n} for n in range(CALLS)}
        assert peak > 256  # the bound was passed: the parent ran them all at once
