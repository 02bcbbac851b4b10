"""ProcessManager and ProcessHandle with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    AddressInUse,
    ControlChannelOptions,
    DataChannelOptions,
    DataChannelTimeout,
    ExecutableNotFound,
    ProcessEvent,
    ProcessManager,
    RemoteError,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerIdInUse,
    WorkerState,
    WorkerUnavailable,
)
from workers import PYTHON_WORKER, child_pids, namespace, pid_alive, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


async def test_spawn_talk_on_both_channels_and_stop() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        path = handle.spec.data_path
        assert path is not None and os.path.exists(path)
        assert handle.state is WorkerState.RUNNING and handle.pid in child_pids()
        assert await handle.request("add", {"a": 2, "b": 40}) == 42
        assert await handle.request_via_data("echo", [b"\x00\xff" * 1000]) == [b"\x00\xff" * 1000]
        assert (await handle.request("info"))["pid"] == handle.pid
        await handle.stop()
        assert handle.state is WorkerState.STOPPED
        assert handle.exit_code == 0 and not os.path.exists(path)
    assert child_pids() == set()


async def test_worker_calls_and_notifies_the_parent_on_both_channels() -> None:
    notes: list[Any] = []
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        handle.on_request("mul", lambda p: p[0] * p[1], via="data")
        handle.on_request("hello", lambda p: f"hi {p['name']}")
        handle.on_notification("note", notes.append)
        call = {"method": "mul", "params": [6, 7], "via": "data"}
        assert await handle.request("callParent", call) == 42
        call = {"method": "hello", "params": {"name": "x"}, "via": "control"}
        assert await handle.request_via_data("callParent", call) == "hi x"
        await handle.request("notifyParent", {"method": "note", "params": [1], "via": "control"})
        with anyio.fail_after(5):
            while not notes:
                await anyio.sleep(0.01)
    assert notes == [[1]]


async def test_handler_errors_reach_the_parent() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(RemoteError) as info:
            await handle.request_via_data("fail", {"message": "boom"})
        assert (info.value.code, info.value.message) == (-32000, "boom")
        assert info.value.data["type"] == "RuntimeError"
        assert "RuntimeError: boom" in info.value.data["traceback"]  # spec 4.10
        with pytest.raises(RemoteError) as info:
            await handle.request("fail", {"message": "typed", "code": 4001, "data": [1]})
        assert (info.value.code, info.value.data) == (4001, [1])
        with pytest.raises(RemoteError) as info:
            await handle.request("noSuchMethod")
        assert info.value.code == -32601


async def test_timeout_cancels_the_worker_handler() -> None:
    observed: list[Any] = []
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        handle.on_notification("cancelObserved", observed.append)
        with pytest.raises(RequestTimeout):
            await handle.request_via_data("sleep", {"seconds": 30, "tag": "t1"}, timeout=0.2)
        with anyio.fail_after(5):
            while not observed:
                await anyio.sleep(0.01)
        assert observed == [{"tag": "t1"}]
        assert await handle.request("add", {"a": 1, "b": 1}) == 2


async def test_crash_mid_request_fails_pending_requests_on_both_channels() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        await handle.request("stderr", {"text": "last words"})
        errors: list[BaseException] = []

        async def pending(via: str) -> None:
            call = handle.request_via_data if via == "data" else handle.request
            try:
                await call("sleep", {"seconds": 60, "tag": via})
            except WorkerCrashed as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pending, "data")
            tg.start_soon(pending, "control")
            await anyio.sleep(0.2)
            with pytest.raises(WorkerCrashed) as info:
                await handle.request("crash", {"code": 7})
        assert len(errors) == 2
        for exc in [*errors, info.value]:
            assert isinstance(exc, WorkerCrashed) and exc.exit_code == 7
            assert "last words" in exc.stderr_tail
        assert handle.state is WorkerState.FAILED  # no restart policy


async def test_crash_loop_restarts_then_gives_up() -> None:
    events: list[ProcessEvent] = []
    policy = RestartPolicy(enabled=True, max_restarts=2, backoff=0.01, reset_after=3600)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        for kind in ("crash", "restart", "failed"):
            manager.on(kind, events.append)
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        pids = {handle.pid}
        for _ in range(3):
            with pytest.raises(WorkerCrashed):
                await handle.request("crash", {"code": 1})
            if handle.state is not WorkerState.FAILED:
                pids.add((await handle.request("info"))["pid"])  # waits for the restart
        await handle.wait()
    assert handle.state is WorkerState.FAILED
    assert len(pids) == 3
    assert [(e.kind, e.attempt) for e in events] == [
        ("crash", None),
        ("restart", 1),
        ("crash", None),
        ("restart", 2),
        ("crash", None),
        ("failed", None),
    ]
    with pytest.raises(WorkerUnavailable):
        await handle.request("info")


async def test_stable_uptime_resets_the_restart_count() -> None:
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.01, reset_after=0.0)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        handle = await manager.spawn("w", **python_worker())
        for _ in range(3):  # three crashes, each after a "stable" run: never given up on
            with pytest.raises(WorkerCrashed):
                await handle.request("crash", {"code": 1})
            assert (await handle.request("info"))["language"] == "python"
        assert handle.state is WorkerState.RUNNING and handle.restarts == 3


async def test_request_made_during_a_restart_waits_for_the_new_worker() -> None:
    policy = RestartPolicy(enabled=True, max_restarts=3, backoff=0.3)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        old = handle.pid
        with pytest.raises(WorkerCrashed):
            await handle.request("crash", {"code": 1})
        assert handle.state is WorkerState.RESTARTING
        assert await handle.request_via_data("echo", ["after"]) == ["after"]
        assert handle.pid != old


async def test_worker_ignoring_sigterm_is_killed() -> None:
    async with ProcessManager(namespace=namespace(), shutdown_grace=0.3) as manager:
        handle = await manager.spawn("w", **python_worker(), env={"TEST_IGNORE_SIGTERM": "1"})
        with pytest.raises(RequestTimeout):
            await handle.request("freeze", timeout=0.2)
        await handle.stop()
        assert handle.signal == signal.SIGKILL and handle.state is WorkerState.STOPPED
    assert child_pids() == set()


async def test_worker_that_never_sends_ready() -> None:
    # 2 s: room for the worker to start and say so on a loaded machine.
    async with ProcessManager(namespace=namespace(), startup_timeout=2) as manager:
        with pytest.raises(DataChannelTimeout) as info:
            await manager.spawn(
                "w", **python_worker(), env={"TEST_NO_READY": "1"}, data_channel=DATA
            )
    message = str(info.value)
    assert "data channel connection timeout" in message and "$/ready" in message
    assert "ASPECT_IPC_DATA_PATH" in message and "not starting" in info.value.stderr_tail
    assert child_pids() == set()


async def test_worker_exiting_during_startup() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        with pytest.raises(WorkerExitedDuringStartup) as info:
            await manager.spawn("w", **python_worker(), env={"TEST_EXIT_BEFORE_READY": "3"})
    assert info.value.exit_code == 3 and "exiting early" in info.value.stderr_tail
    assert "exit code 3" in str(info.value)


async def test_executable_not_found() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        with pytest.raises(ExecutableNotFound, match="no-such-binary"):
            await manager.spawn("w", executable="no-such-binary-xyz")
        assert "w" not in manager.handles


async def test_junk_on_stdout_is_reported_not_fatal() -> None:
    output: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", output.append)
        handle = await manager.spawn("w", **python_worker(), env={"TEST_JUNK_STDOUT": "junk!"})
        await handle.request("print", {"text": "printed in a handler"})
        assert await handle.request("add", {"a": 1, "b": 2}) == 3
    lines = {(e.stream, e.line) for e in output}
    assert ("stdout", "junk!") in lines
    assert ("stderr", "printed in a handler") in lines  # print() never reaches the protocol


async def test_duplicate_id_and_live_address_are_refused() -> None:
    ns = namespace()
    async with ProcessManager(namespace=ns) as first, ProcessManager(namespace=ns) as second:
        await first.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(WorkerIdInUse):
            await first.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(AddressInUse, match="live worker"):
            await second.spawn("w", **python_worker(), data_channel=DATA)
        assert await first.request("w", "add", {"a": 1, "b": 1}) == 2


async def test_token_is_not_visible_to_the_worker_or_its_children() -> None:
    os.environ["ASPECT_IPC_TOKEN"] = "inherited-secret"
    try:
        async with ProcessManager(namespace=namespace()) as manager:
            plain = await manager.spawn("plain", **python_worker())
            assert await plain.request("getEnv", {"name": "ASPECT_IPC_TOKEN"}) is None
            data = await manager.spawn("data", **python_worker(), data_channel=DATA)
            assert await data.request("getEnv", {"name": "ASPECT_IPC_TOKEN"}) is None
            assert await data.request("childEnv", {"name": "ASPECT_IPC_TOKEN"}) is None
            assert await data.request("getEnv", {"name": "ASPECT_IPC_WORKER_ID"}) == "data"
    finally:
        del os.environ["ASPECT_IPC_TOKEN"]


async def test_the_control_line_limit_is_passed_to_every_worker() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        default = await manager.spawn("default", **python_worker())
        assert await default.request("getEnv", {"name": "ASPECT_IPC_MAX_LINE_LENGTH"}) == str(
            1024 * 1024
        )
        small = await manager.spawn(
            "small",
            **python_worker(),
            control_channel=ControlChannelOptions(max_line_length=4096),
            data_channel=DataChannelOptions(enabled=True, max_frame_size=8192),
        )
        assert await small.request("getEnv", {"name": "ASPECT_IPC_MAX_LINE_LENGTH"}) == "4096"
        assert await small.request("getEnv", {"name": "ASPECT_IPC_MAX_FRAME_SIZE"}) == "8192"


async def test_leaving_the_block_by_exception_leaves_nothing_behind() -> None:
    paths = []
    with pytest.raises(ZeroDivisionError):
        async with ProcessManager(namespace=namespace()) as manager:
            for n in range(3):
                handle = await manager.spawn(f"w{n}", **python_worker(), data_channel=DATA)
                paths.append(handle.spec.data_path)
            1 / 0  # noqa: B018
    assert child_pids() == set()
    assert not any(os.path.exists(p) for p in paths if p)


def test_workers_exit_when_the_parent_is_killed(tmp_path: Any) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import anyio, sys
        from aspect_ipc import DataChannelOptions, ProcessManager
        async def main():
            async with ProcessManager(namespace="{namespace()}") as manager:
                handle = await manager.spawn("w", executable=sys.executable,
                    args=[{PYTHON_WORKER!r}], data_channel=DataChannelOptions(enabled=True))
                print(handle.pid, handle.spec.data_path, flush=True)
                await anyio.sleep(3600)
        anyio.run(main)
    """)
    )
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        pid_text, path = parent.stdout.readline().split()
        worker_pid = int(pid_text)
        assert pid_alive(worker_pid)
        parent.kill()
    deadline = time.monotonic() + 10  # a hang guard; the worker sees stdin EOF at once
    while pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(worker_pid)
    assert not os.path.exists(path)


async def test_a_relative_socket_dir_is_the_parents_even_for_a_worker_running_elsewhere(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was checked from the parent's directory and used from the worker's (cwd=), so the
    # worker failed to listen ("bind: no such file or directory", "listen EACCES").
    (tmp_path / "sockets").mkdir()
    monkeypatch.chdir(tmp_path)
    async with ProcessManager(namespace=namespace(), socket_dir="sockets") as manager:
        assert manager.socket_dir == str(tmp_path / "sockets")
        handle = await manager.spawn("w", **python_worker(), cwd="/", data_channel=DATA)
        assert await handle.request_via_data("echo", [1]) == [1]
        assert handle.spec.data_path is not None
        assert handle.spec.data_path.startswith(str(tmp_path / "sockets") + "/")
    assert DataChannelOptions(path="here.sock").path == str(tmp_path / "here.sock")


async def test_a_socket_dir_open_to_every_user_is_warned_about_once(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Any local user may remove or replace a socket in a world-writable directory without the
    # sticky bit; it was accepted silently (deployment drill). A sticky one (as /tmp) is fine.
    open_dir, sticky_dir = tmp_path / "open", tmp_path / "sticky"
    for directory, mode in ((open_dir, 0o777), (sticky_dir, 0o1777)):
        directory.mkdir()
        directory.chmod(mode)
    for directory in (open_dir, sticky_dir):
        async with ProcessManager(namespace=namespace(), socket_dir=str(directory)) as manager:
            for worker_id in ("a", "b"):
                handle = await manager.spawn(worker_id, **python_worker(), data_channel=DATA)
                assert await handle.request_via_data("echo", [1]) == [1]
    warnings = [r.getMessage() for r in caplog.records if "not sticky" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert str(open_dir) in warnings[0] and "chmod +t" in warnings[0], warnings


def test_a_socket_dir_too_long_for_any_socket_is_a_value_error_at_once() -> None:
    # It was a plain IpcError from the first spawn().
    match = r"socket_dir: socket directory '/tmp/x+' is too long: no socket name fits"
    with pytest.raises(ValueError, match=match):
        ProcessManager(socket_dir="/tmp/" + "x" * 120)
    # Room for short plain names only: spawn() of any other id raised the IpcError (found by the
    # deployment drill with an 84-byte directory).
    with pytest.raises(ValueError, match=match):
        ProcessManager(socket_dir="/tmp/" + "x" * 80)
    assert ProcessManager(socket_dir="/tmp/" + "x" * 60).socket_dir == "/tmp/" + "x" * 60
    with pytest.raises(ValueError, match="socket_dir must be a directory's path"):
        ProcessManager(socket_dir="")


@pytest.mark.parametrize(
    ("command", "error", "words"),
    [
        ({"executable": "/bin/tr\0ue"}, ValueError, "executable '/bin/tr\\x00ue' contains a NUL"),
        ({"executable": ""}, ValueError, "executable must not be empty"),
        ({"executable": 42}, TypeError, "executable must be a string, not int"),
        ({"args": "--fast"}, TypeError, "args must be a list of strings (one per argument)"),
        ({"args": ["ok", 3]}, TypeError, "args[1] must be a string, not int"),
        ({"args": ["a\0b"]}, ValueError, "args[0] 'a\\x00b' contains a NUL"),
        ({"env": {"": "1"}}, ValueError, "env: '' cannot be an environment variable's name"),
        ({"env": {"A=B": "1"}}, ValueError, "env: 'A=B' cannot be an environment variable's"),
        ({"env": {"A": 1}}, TypeError, "env must map strings to strings: 'A' -> 1 is not"),
        ({"env": {"A": "x\0"}}, ValueError, "env: the value of 'A' contains a NUL"),
        ({"env": ["A=1"]}, TypeError, "env must be a mapping of names to strings, not list"),
        ({"cwd": b"/tmp"}, TypeError, "cwd must be a string, not bytes"),
        (
            {"env": {"ASPECT_IPC_MAX_LINE_LENGTH": "2048"}},
            ValueError,
            "ASPECT_IPC_MAX_LINE_LENGTH is set by the parent for each worker (spec 5.1), so "
            "'2048' would be replaced; its value comes from ControlChannelOptions(max_line",
        ),
        ({"env": {"ASPECT_IPC_TOKEN": "x"}}, ValueError, "comes from a fresh secret the parent"),
    ],
)
async def test_a_command_the_os_would_refuse_or_misread_is_refused_before_anything_starts(
    command: dict[str, Any], error: type[Exception], words: str
) -> None:
    # A NUL in the executable read as "executable not found: ... (no such file)"; args given as
    # one string became one argument per letter; an empty variable name was let through.
    async with ProcessManager(namespace=namespace()) as manager:
        with pytest.raises(error) as caught:
            await manager.spawn("w", **{**python_worker(), **command})
        assert words in str(caught.value)
        assert manager.handles == {} and child_pids() == set()


async def test_env_may_repeat_this_processs_own_variables_theirs_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # env={**os.environ, ...} is common; in a worker that spawns workers its environment holds
    # the spec's variables, which are dropped as inherited (spec 5.1), not refused.
    monkeypatch.setenv("ASPECT_IPC_NAMESPACE", "outer")
    monkeypatch.setenv("ASPECT_IPC_BAR", "inherited")
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), env={**os.environ, "MINE": "1"})
        assert await handle.request("getEnv", {"name": "ASPECT_IPC_NAMESPACE"}) == manager.namespace
        assert await handle.request("getEnv", {"name": "MINE"}) == "1"
        # One the parent does not set passes as the user gave it.
        assert await handle.request("getEnv", {"name": "ASPECT_IPC_BAR"}) == "inherited"


async def test_paths_may_be_path_objects(tmp_path: Any) -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        worker = python_worker()
        handle = await manager.spawn(
            "w", executable=Path(worker["executable"]), args=[Path(worker["args"][0])], cwd=tmp_path
        )
        assert await handle.request("add", {"a": 1, "b": 2}) == 3
