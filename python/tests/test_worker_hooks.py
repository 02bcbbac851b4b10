"""The worker's lifecycle hooks (decisions-structure: one vocabulary): their names and order,
and the ShutdownReason its ``shutting_down`` hook receives, one real worker process per cause."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import aspect_ipc
from aspect_ipc.worker import ShutdownReason, Worker
from worker_process import started

__all__ = ["started"]  # the fixture

# A worker that writes each hook it sees to the file HOOK_LOG, one JSON line per call. The
# "ready" hook raises: a failing hook is logged, and the worker goes on.
HOOKED = textwrap.dedent(
    """
    import json, os, sys
    from aspect_ipc.worker import Worker

    worker = Worker()
    log = open(os.environ["HOOK_LOG"], "a", buffering=1)

    def record(event):
        def hook(argument):
            log.write(json.dumps([event, argument]) + "\\n")
            if event == "ready":
                raise RuntimeError("a failing hook")
        return hook

    for event in ("control_ready", "data_setup", "data_listening", "data_connected",
                  "data_ready", "ready", "shutting_down", "stopped"):
        worker.on(event)(record(event))

    worker.control("ping")(lambda params: "pong")
    worker.control("quit")(lambda params: worker.shutdown())
    worker.run()
    """
)
ORDER = ["control_ready", "data_setup", "data_listening", "data_connected", "data_ready", "ready"]


def _script(tmp_path: Path) -> tuple[list[str], Path]:
    script, log = tmp_path / "hooked.py", tmp_path / "hooks.log"
    script.write_text(HOOKED)
    return [str(script)], log


def _hooks(log: Path) -> list[list[Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _reason(log: Path) -> str:
    hooks = _hooks(log)
    shutting = [argument for event, argument in hooks if event == "shutting_down"]
    assert len(shutting) == 1, hooks  # once, whatever follows
    assert hooks[-1][0] == "stopped", hooks
    return str(shutting[0])


def test_shutdown_reason_values_are_the_shared_strings() -> None:
    assert aspect_ipc.ShutdownReason is ShutdownReason
    assert [reason.value for reason in ShutdownReason] == [
        "shutdown_request",
        "shutdown_call",
        "stdin_eof",
        "stdout_closed",
        "parent_exited",
        "signal",
    ]


def test_an_unknown_event_is_refused_when_the_hook_is_registered() -> None:
    worker = Worker()
    with pytest.raises(ValueError) as info:
        worker.on("readyy")  # type: ignore[arg-type]  # the typo a type checker also refuses
    assert str(info.value) == (
        "unknown worker event 'readyy': expected one of control_ready, data_setup, "
        "data_listening, data_connected, data_ready, ready, shutting_down, stopped"
    )
    worker.on("ready")(lambda info: None)  # the known ones still register


def test_hooks_run_once_each_in_order_and_a_failing_hook_does_not_stop_the_worker(
    started: Any, tmp_path: Path
) -> None:
    args, log = _script(tmp_path)
    worker = started(args, HOOK_LOG=str(log))
    worker.connect()
    worker.send({"id": 1, "method": "ping"})
    assert worker.receive()["result"] == "pong"  # "ready" raised; the worker serves on
    worker.send({"id": 2, "method": "$/shutdown"})
    assert worker.receive()["id"] == 2
    assert worker.exit_time(time.monotonic())[0] == 0
    events = [event for event, _ in _hooks(log)]
    assert events == [*ORDER, "shutting_down", "stopped"]
    assert "a failing hook" in worker.stderr()


@pytest.mark.parametrize(
    "cause",
    ["shutdown_request", "shutdown_notification", "shutdown_call", "stdin_eof", "stdout_closed"],
)
def test_shutting_down_receives_its_reason(started: Any, tmp_path: Path, cause: str) -> None:
    args, log = _script(tmp_path)
    worker = started(args, data=False, HOOK_LOG=str(log))
    if cause == "shutdown_request":
        worker.send({"id": 1, "method": "$/shutdown"})
        assert worker.receive()["id"] == 1
    elif cause == "shutdown_notification":
        worker.send({"method": "$/shutdown"})
    elif cause == "shutdown_call":
        worker.send({"id": 1, "method": "quit"})
    elif cause == "stdin_eof":
        worker.stdin.close()
    else:  # nobody reads the worker's stdout any more: its next write (the answer) breaks
        worker.stdout.close()
        worker.send({"id": 1, "method": "ping"})
    assert worker.exit_time(time.monotonic())[0] == 0
    expected = {"shutdown_notification": "shutdown_request"}.get(cause, cause)
    assert _reason(log) == expected


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutting_down_on_a_signal(started: Any, tmp_path: Path, sig: signal.Signals) -> None:
    args, log = _script(tmp_path)
    worker = started(args, data=False, HOOK_LOG=str(log))
    os.kill(worker.process.pid, sig)
    assert worker.exit_time(time.monotonic())[0] == 0
    assert _reason(log) == ShutdownReason.SIGNAL


# The worker's parent starts it with a stdin the test holds (no EOF comes), then dies.
MIDDLE = """
import os, subprocess, sys
worker = subprocess.Popen([sys.executable, *sys.argv[1:]], stdin=int(os.environ["READ_FD"]),
    stdout=subprocess.PIPE, start_new_session=True)
worker.stdout.readline()  # $/ready: the hooks so far are written
print(worker.pid, flush=True)
os._exit(0)
"""


def test_shutting_down_when_the_parent_exits(tmp_path: Path) -> None:
    args, log = _script(tmp_path)
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, *args],
        stdout=subprocess.PIPE,
        pass_fds=(read_fd,),
        env=env | {"READ_FD": str(read_fd), "HOOK_LOG": str(log)},
    )
    os.close(read_fd)
    try:
        assert middle.stdout is not None
        worker_pid = int(middle.stdout.readline())
        middle.wait(timeout=30)
        deadline = time.monotonic() + 10
        while "stopped" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _reason(log) == ShutdownReason.PARENT_EXITED
    finally:
        os.close(write_fd)
        if middle.poll() is None:
            middle.kill()
            middle.wait()
        if middle.stdout is not None:
            middle.stdout.close()
        _reap(worker_pid if "worker_pid" in locals() else None)


def _reap(pid: int | None) -> None:
    """The worker is not our child: wait until it is gone (or kill it), so nothing is left."""
    if pid is None:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
