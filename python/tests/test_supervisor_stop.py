"""A stop is final at every moment of a worker's life, and bounded by its grace period.

The moments: starting (before and after the process exists), running, crashed, waiting to
restart, restarting. Each test kills or stops real worker processes and checks the handle ends
``stopped``, stays so, and that no process is left.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aspect_ipc import (
    ChannelClosed,
    DataChannelOptions,
    ProcessEvent,
    ProcessManager,
    RestartPolicy,
    StartupError,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerState,
    WorkerUnavailable,
)
from aspect_ipc.handle import TERM_WAIT
from supervisor_kit import children, socket_files, starts_once
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
GRACE = 1.0
KILL_TIME = 2.0  # a generous bound for SIGKILL, exit and reap on a loaded machine


class Recorder:
    """Every event of a manager, and where in the list stop() was called."""

    def __init__(self, manager: ProcessManager) -> None:
        self.events: list[ProcessEvent] = []
        self.crashed = anyio.Event()
        self.stop_index: int | None = None
        for kind in ("spawn", "ready", "crash", "restart", "exit", "failed"):
            manager.on(kind, self._record)

    def _record(self, event: ProcessEvent) -> None:
        self.events.append(event)
        if event.kind == "crash":
            self.crashed.set()

    def after_stop(self) -> list[str]:
        assert self.stop_index is not None
        return [e.kind for e in self.events[self.stop_index :]]


async def _stop_within(handle: Any, recorder: Recorder, bound: float, grace: float = GRACE) -> None:
    recorder.stop_index = len(recorder.events)
    with anyio.fail_after(bound):
        await handle.stop(grace=grace)
    assert handle.state is WorkerState.STOPPED


async def _stays_stopped(handle: Any, recorder: Recorder) -> None:
    await anyio.sleep(0.6)  # longer than the backoff: a lost stop would restart it by now
    assert handle.state is WorkerState.STOPPED
    # A process being started when stop() came may still announce "spawn"; it never serves.
    assert "ready" not in recorder.after_stop() and recorder.after_stop().count("spawn") <= 1
    with pytest.raises(WorkerUnavailable, match="stopped"):
        await handle.request("info")
    assert children()[0] == set()


@pytest.mark.parametrize("moment", [0.0, 0.15, 0.3, 0.45])
async def test_a_stop_during_a_restart_is_final(moment: float) -> None:
    # The scenario: backoff 0.3 s, SIGKILL, the crash event, `moment` s, stop().
    ns = namespace()
    policy = RestartPolicy(enabled=True, max_restarts=5, backoff=0.3)
    async with ProcessManager(namespace=ns, restart_policy=policy) as manager:
        recorder = Recorder(manager)
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        assert handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            await recorder.crashed.wait()
        await anyio.sleep(moment)
        await _stop_within(handle, recorder, GRACE + KILL_TIME)
        await _stays_stopped(handle, recorder)
    assert socket_files(ns) == []


async def test_leaving_the_manager_during_a_restart_finishes() -> None:
    policy = RestartPolicy(enabled=True, max_restarts=5, backoff=0.3)
    with anyio.fail_after(GRACE + KILL_TIME + 5):
        async with ProcessManager(
            namespace=namespace(), restart_policy=policy, shutdown_grace=GRACE
        ) as manager:
            recorder = Recorder(manager)
            handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
            assert handle.pid is not None
            os.kill(handle.pid, signal.SIGKILL)
            await recorder.crashed.wait()
            await anyio.sleep(0.3)
    assert handle.state is WorkerState.STOPPED
    assert children() == (set(), set())


@pytest.mark.parametrize("when", ["before the process exists", "before $/ready"])
async def test_a_stop_during_the_first_start_up(when: str) -> None:
    # The worker never sends $/ready and ignores SIGTERM: only SIGKILL, after the grace, ends it.
    env = {"TEST_NO_READY": "1", "TEST_IGNORE_SIGTERM": "1"}
    async with ProcessManager(namespace=namespace(), startup_timeout=60) as manager:
        recorder = Recorder(manager)
        spawned = anyio.Event()
        manager.on("spawn", lambda _: spawned.set())
        errors: list[BaseException] = []

        async def spawn() -> None:
            try:
                await manager.spawn("w", **python_worker(), env=env, data_channel=DATA)
            except StartupError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(spawn)
            while "w" not in manager.handles:  # spawn() has registered the worker, no more
                await anyio.lowlevel.checkpoint()
            if when == "before $/ready":
                with anyio.fail_after(10):
                    await spawned.wait()
                await anyio.sleep(0.3)  # its SIGTERM handler is in place
            handle = manager.get("w")
            await _stop_within(handle, recorder, GRACE + KILL_TIME)
        assert len(errors) == 1 and "stopped during its start-up" in str(errors[0])
        await _stays_stopped(handle, recorder)


async def test_a_stop_from_the_crash_callback_prevents_the_restart() -> None:
    policy = RestartPolicy(enabled=True, max_restarts=5, backoff=0.05)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        recorder = Recorder(manager)
        handle = await manager.spawn("w", **python_worker())
        async with anyio.create_task_group() as task_group:

            def stop_now(_: ProcessEvent) -> None:
                recorder.stop_index = len(recorder.events)
                task_group.start_soon(handle.stop)

            handle.on("crash", stop_now)
            with pytest.raises(WorkerCrashed):
                await handle.request("crash", {"code": 1})
        await _stays_stopped(handle, recorder)


async def test_a_stop_of_a_running_worker_that_ignores_everything_is_bounded() -> None:
    # Running: $/shutdown, grace, SIGTERM, at most 1 s (TERM_WAIT), SIGKILL (spec 8.2). A grace
    # well above TERM_WAIT shows that SIGTERM does not get a second grace period.
    grace = 4.0
    async with ProcessManager(namespace=namespace()) as manager:
        recorder = Recorder(manager)
        handle = await manager.spawn("w", **python_worker(), env={"TEST_IGNORE_SIGTERM": "1"})
        async with anyio.create_task_group() as task_group:

            async def freeze() -> None:
                with pytest.raises(ChannelClosed):
                    await handle.request("freeze")

            task_group.start_soon(freeze)
            await anyio.sleep(0.2)
            await _stop_within(handle, recorder, grace + TERM_WAIT + KILL_TIME, grace)
        assert handle.signal == signal.SIGKILL
        await _stays_stopped(handle, recorder)


async def test_a_start_up_crash_keeps_its_exit_code(tmp_path: Path) -> None:
    # The first run starts the worker; every later run exits 3 before $/ready.
    worker = starts_once(tmp_path, "once")
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.01)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        recorder = Recorder(manager)
        handle = await manager.spawn("w", **worker)
        assert handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        with anyio.fail_after(20):
            code = await handle.wait()
    crashes = [(e.exit_code, e.signal) for e in recorder.events if e.kind == "crash"]
    assert crashes == [(None, signal.SIGKILL), (3, None)]
    # The crash event's error: a WorkerCrashed, then the failed restart's StartupError (the
    # parent guide's events table).
    errors = [type(e.error) for e in recorder.events if e.kind == "crash"]
    assert errors == [WorkerCrashed, WorkerExitedDuringStartup]
    assert handle.state is WorkerState.FAILED
    assert (code, handle.exit_code, handle.signal) == (3, 3, None)
    failed = [e for e in recorder.events if e.kind == "failed"]
    assert len(failed) == 1 and "exit code 3" in str(failed[0].error)
    with pytest.raises(WorkerUnavailable) as info:
        await handle.request("info")
    message = str(info.value)
    assert "failed" in message and "1 restart" in message and "exit code 3" in message


async def test_a_request_cut_short_by_stop_says_the_worker_was_stopped() -> None:
    # Not "exited": the user stopped it, and the message must not send them looking for why.
    async with ProcessManager(namespace=namespace(), shutdown_grace=0.3) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        async with anyio.create_task_group() as task_group:

            async def busy() -> None:
                stopped = r"was stopped .*before it answered"
                with pytest.raises(ChannelClosed, match=stopped) as info:
                    await handle.request_via_data("sleepBusy", {"seconds": 5})
                assert not isinstance(info.value, WorkerCrashed)

            task_group.start_soon(busy)
            await anyio.sleep(0.3)
            await handle.stop()


REFUSES_SHUTDOWN = """
import json, os, sys, time
ready = {"protocol": 1, "sdk": "raw", "sdkVersion": "0", "language": "python",
         "pid": os.getpid(), "dataPath": None}
print(json.dumps({"jsonrpc": "2.0", "method": "$/ready", "params": ready}), flush=True)
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "$/shutdown":
        error = {"code": -32603, "message": "I refuse"}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}), flush=True)
        time.sleep(0.2)
        sys.exit(0)
"""


async def test_a_worker_that_refuses_shutdown_is_told_about_and_still_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An error answer to $/shutdown went unsaid: stop() waited the grace period in silence.
    async with ProcessManager(namespace=namespace(), shutdown_grace=5) as manager:
        handle = await manager.spawn("w", executable=sys.executable, args=["-c", REFUSES_SHUTDOWN])
        with anyio.fail_after(30):
            await handle.stop()
    assert handle.state.value == "stopped"
    told = [r for r in caplog.records if "answered $/shutdown with an error" in r.getMessage()]
    assert len(told) == 1 and told[0].levelname == "WARNING" and "I refuse" in told[0].getMessage()


# A worker without an SDK that announces a protocol this parent does not speak (a start-up
# failure found in its first line), and writes down each signal it gets.
_WRONG_PROTOCOL = """
import json, os, signal, sys, time
log = open(os.environ["SIGNAL_LOG"], "a", buffering=1)
def on_term(number, frame):
    log.write("SIGTERM\\n")
    if os.environ["ON_SIGTERM"] == "exit":
        os._exit(0)
signal.signal(signal.SIGTERM, on_term)
sys.stdout.write(json.dumps({"jsonrpc": "2.0", "method": "$/ready", "params": {
    "protocol": 2, "pid": os.getpid(), "dataPath": None}}) + "\\n")
sys.stdout.flush()
while True:
    time.sleep(0.1)
"""


@pytest.mark.parametrize("on_sigterm", ["exit", "ignore"])
async def test_a_failed_start_up_stops_the_worker_with_sigterm_first(
    tmp_path: Path, on_sigterm: str
) -> None:
    """Spec 7.6 and 8.2: after a start-up failure the worker is stopped as one not yet serving
    is: SIGTERM at once (it may clean up and say why), SIGKILL after the grace period."""
    log = tmp_path / "signals"
    log.touch()
    env = {"SIGNAL_LOG": str(log), "ON_SIGTERM": on_sigterm}
    async with ProcessManager(namespace=namespace(), shutdown_grace=GRACE) as manager:
        with pytest.raises(StartupError, match="protocol version mismatch"):
            await manager.spawn(
                "w", executable=sys.executable, args=["-c", _WRONG_PROTOCOL], env=env
            )
        assert children() == (set(), set())  # gone and reaped when spawn() raised
    assert log.read_text() == "SIGTERM\n"
