"""A stop with requests in flight whose handlers ignore their cancellation (PROTOCOL.md 8.1): each
caller gets -32002, answered by the worker on the handler's behalf before it exits, even with a
short ``shutdown_grace``. With a grace of 1 s the parent used to ask the worker to wait 0.8 s,
which left too little of the grace for the worker's bound on such handlers (0.5 s) and its exit:
SIGTERM ended it first, and the callers got ChannelClosed instead of an answer."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("grace", [1.0, 5.0])
async def test_stubborn_handlers_are_answered_cancelled_when_the_worker_stops(
    worker: dict[str, Any], namespace: str, grace: float
) -> None:
    outcomes: dict[str, BaseException] = {}
    async with ProcessManager(namespace=namespace, shutdown_grace=grace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )

        async def call(via: str) -> None:
            send = handle.request if via == "control" else handle.request_via_data
            try:
                await send("sleepStubborn", {"seconds": 30}, timeout=60)
            except Exception as exc:  # noqa: BLE001 - what it is, is the test
                outcomes[via] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(call, "control")
            group.start_soon(call, "data")
            await handle.request("echo", [1])  # both requests are running by now
            await handle.request_via_data("echo", [1])
            await handle.stop()
        assert handle.exit_code == 0
    for via in ("control", "data"):
        error = outcomes[via]
        assert isinstance(error, RemoteError) and error.code == -32002, (via, error)
