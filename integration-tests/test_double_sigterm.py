"""Two SIGTERMs a few milliseconds apart stop a worker as one does (spec 8.4: exit code 0, not a
crash), as when a service manager signals every process of the group and the parent then sends
its own. The Python worker was killed by the second one in most runs (its handlers were put back
to the default during the interpreter's finalization): the parent saw a crash and, with a restart
policy, restarted it."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("delay", [0.005, 0.02])
async def test_a_second_sigterm_while_the_worker_exits_changes_nothing(
    worker: dict[str, Any], namespace: str, delay: float
) -> None:
    crashes: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("crash", crashes.append)
        for trial in range(6):
            handle = await manager.spawn(
                f"w{trial}", **worker, data_channel=DataChannelOptions(enabled=True)
            )
            assert await handle.request_via_data("echo", [trial]) == [trial]
            assert handle.pid is not None
            os.kill(handle.pid, signal.SIGTERM)
            time.sleep(delay)  # noqa: ASYNC251 - blocked on purpose: nothing of ours in between
            try:
                os.kill(handle.pid, signal.SIGTERM)
            except ProcessLookupError:  # it was quicker
                pass
            with anyio.fail_after(30):
                assert await handle.wait() == 0, (trial, handle.signal)
    assert crashes == []
