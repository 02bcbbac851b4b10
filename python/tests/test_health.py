"""Health checks: a worker that stops answering ``$/ping`` is hung, killed and handled as a crash.

Real worker processes; ``freeze`` makes the Python test worker deaf on both channels (and to
SIGTERM), so only the parent's SIGKILL ends it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    HealthCheck,
    ProcessEvent,
    ProcessManager,
    RestartPolicy,
    WorkerCrashed,
    WorkerHung,
    WorkerState,
)
from supervisor_kit import children
from workers import namespace, pid_alive, python_worker

pytestmark = pytest.mark.anyio
HEALTH = HealthCheck(interval=0.5, timeout=0.5)
BOUND = HEALTH.interval + HEALTH.timeout + 0.5  # the promise: detected within this


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("interval", 0),
        ("interval", -1.0),
        ("interval", math.inf),
        ("timeout", math.nan),
        ("timeout", True),
        ("timeout", "1"),
    ],
)
def test_health_check_arguments_are_checked(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"HealthCheck {name} must be a positive, finite"):
        HealthCheck(**{name: value})


@pytest.mark.parametrize("interval", [1e-9, 0.009])
def test_a_health_check_interval_below_ten_milliseconds_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match=r"interval must be at least 0.01 s, not "):
        HealthCheck(interval=interval)
    assert HealthCheck(interval=0.01).interval == 0.01


async def _freeze(handle: Any) -> tuple[BaseException, float]:
    """Send ``freeze``; return the error it ends with and the seconds that took."""
    started = anyio.current_time()
    with pytest.raises(WorkerHung) as caught:
        await handle.request("freeze", timeout=30)
    return caught.value, anyio.current_time() - started


async def test_a_frozen_worker_is_killed_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    policy = RestartPolicy(enabled=True, max_restarts=2, backoff=0.1)
    caplog.set_level(logging.WARNING, logger="aspect_ipc.manager")
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        events: list[ProcessEvent] = []
        manager.on("*", lambda e: events.append(e) if e.kind != "output" else None)
        handle = await manager.spawn("w", **python_worker(), health=HEALTH)
        old_pid = handle.pid
        assert old_pid is not None
        error, elapsed = await _freeze(handle)
        assert elapsed <= BOUND, f"hung worker detected after {elapsed:.2f} s"
        assert isinstance(error, WorkerCrashed)
        text = str(error)
        assert "worker w hung" in text and "$/ping" in text
        assert "every 0.5 s" in text and "timeout 0.5 s" in text
        assert error.signal == 9
        crash = next(e for e in events if e.kind == "crash")
        assert crash.info == {"hung": True} and isinstance(crash.error, WorkerHung)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("hung: no answer to $/ping" in m for m in warnings), warnings
        assert not pid_alive(old_pid)
        with anyio.fail_after(10):
            info = await handle.request("info")  # waits for the new incarnation
        assert info["pid"] != old_pid and handle.state is WorkerState.RUNNING
        assert handle.restarts == 1
        assert [e.kind for e in events if e.kind in ("crash", "restart")] == ["crash", "restart"]
    assert children() == (set(), set())


async def test_a_hung_worker_without_restarts_fails_for_good() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), health=HEALTH)
        pending: list[BaseException] = []

        async def other() -> None:  # a second request pending on the data-less control channel
            try:
                await handle.request("sleep", {"seconds": 30}, timeout=30)
            except WorkerCrashed as exc:
                pending.append(exc)

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(other)
            await _freeze(handle)
        assert len(pending) == 1 and isinstance(pending[0], WorkerHung)
        with anyio.fail_after(5):
            await handle.wait()
        assert handle.state is WorkerState.FAILED
    assert children() == (set(), set())


async def test_a_healthy_worker_is_left_alone() -> None:
    # Pings every 0.1 s while the worker serves a 1 s (non-blocking) request and idles.
    async with ProcessManager(namespace=namespace()) as manager:
        crashes: list[ProcessEvent] = []
        manager.on("crash", crashes.append)
        health = HealthCheck(interval=0.1, timeout=2.0)
        handle = await manager.spawn("w", **python_worker(), health=health)
        pid = handle.pid
        assert await handle.request("sleep", {"seconds": 1.0}) == "done"
        await anyio.sleep(0.3)
        assert crashes == [] and handle.pid == pid and handle.state is WorkerState.RUNNING
        with anyio.fail_after(10):
            await handle.stop(grace=2.0)
        assert crashes == [] and handle.exit_code == 0
    assert children() == (set(), set())
