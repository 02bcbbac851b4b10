"""Health checks with Python, Node and Go workers: ``freeze`` (deaf on both channels and to
SIGTERM) is detected within interval + timeout + 0.5 s, the worker killed and restarted, and
``restart()`` replaces a worker of each language gracefully.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio
import pytest
from _procfs import child_processes
from aspect_ipc import (
    DataChannelOptions,
    HealthCheck,
    ProcessEvent,
    ProcessManager,
    RestartPolicy,
    WorkerHung,
    WorkerState,
)

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
HEALTH = HealthCheck(interval=0.5, timeout=0.5)
BOUND = HEALTH.interval + HEALTH.timeout + 0.5  # the promise


async def test_freeze_is_detected_and_the_worker_restarted(
    worker: dict[str, Any],
    namespace: str,
    language: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aspect_ipc.manager")
    policy = RestartPolicy(enabled=True, max_restarts=2, backoff=0.1)
    async with ProcessManager(namespace=namespace, restart_policy=policy) as manager:
        crashes: list[ProcessEvent] = []
        manager.on("crash", crashes.append)
        handle = await manager.spawn("w", **worker, data_channel=DATA, health=HEALTH)
        old_pid = handle.pid
        started = anyio.current_time()
        with pytest.raises(
            WorkerHung, match=r"worker w hung: it did not answer \$/ping"
        ):
            await handle.request_via_data("freeze", timeout=30)
        elapsed = anyio.current_time() - started
        print(f"{language}: freeze detected after {elapsed:.3f} s (bound {BOUND:g} s)")
        assert elapsed <= BOUND, (
            f"{language}: hung worker detected after {elapsed:.2f} s"
        )
        assert [e.info for e in crashes] == [{"hung": True}]
        assert any("hung" in r.getMessage() for r in caplog.records)
        with anyio.fail_after(15):
            info = await handle.request("info")
        assert info["language"] == language and info["pid"] != old_pid == crashes[0].pid
        assert handle.state is WorkerState.RUNNING and handle.restarts == 1


async def test_restart_replaces_a_worker_gracefully(
    worker: dict[str, Any], namespace: str, language: str
) -> None:
    async with ProcessManager(namespace=namespace, shutdown_grace=2.0) as manager:
        exits: list[ProcessEvent] = []
        manager.on("exit", exits.append)
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        old_pid = handle.pid
        with anyio.fail_after(15):
            await handle.restart()
        assert [e.exit_code for e in exits] == [0]  # it obeyed $/shutdown
        info = await handle.request_via_data("info")
        assert info["language"] == language and info["pid"] == handle.pid != old_pid
        assert old_pid not in child_processes(os.getpid())[0]
