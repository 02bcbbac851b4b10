"""The blocking API (aspect_ipc.sync) with real Python workers: no event loop in the test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aspect_ipc import (
    DataChannelOptions,
    ProcessEvent,
    RemoteError,
    RequestTimeout,
    WorkerState,
    WorkerUnavailable,
)
from aspect_ipc.sync import LOOP_THREAD, ProcessManager
from workers import PYTHON_WORKER, child_pids, namespace, python_worker, run_parent

DATA = DataChannelOptions(enabled=True)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_requests_events_and_stop(backend: str) -> None:
    threads: list[str] = []
    with ProcessManager(namespace(), backend=backend, request_timeout=5) as manager:
        manager.on("ready", lambda e: threads.append(threading.current_thread().name))
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        assert handle.state is WorkerState.RUNNING and handle.pid in child_pids()
        assert handle.request("add", {"a": 2, "b": 40}) == 42
        assert handle.request_via_data("echo", [b"\x00\xff"]) == [b"\x00\xff"]
        handle.notify("add", {"a": 1, "b": 1})
        with pytest.raises(RemoteError):
            handle.request("fail", {"message": "boom"})
        with pytest.raises(RequestTimeout):
            handle.request("sleep", {"seconds": 5, "tag": "t"}, timeout=0.2)
        handle.stop()
        assert handle.state is WorkerState.STOPPED and handle.exit_code == 0
    assert threads == [LOOP_THREAD]
    assert child_pids() == set()
    assert not [t for t in threading.enumerate() if t.name == LOOP_THREAD]


def test_blocking_pool_map_from_eight_threads() -> None:
    with ProcessManager(namespace()) as manager:
        pool = manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        assert [r for r in pool.map("add", ({"a": i, "b": 1} for i in range(300)))] == [
            i + 1 for i in range(300)
        ]
        unordered = pool.map("add", ({"a": i, "b": 1} for i in range(50)), ordered=False)
        assert sorted(unordered) == [i + 1 for i in range(50)]

        def work(n: int) -> list[Any]:
            worker = manager.get("p-0") if n % 2 else pool
            return [worker.request("add", {"a": n, "b": i}) for i in range(50)]

        with ThreadPoolExecutor(8) as executor:
            results = list(executor.map(work, range(8)))
        assert results == [[n + i for i in range(50)] for n in range(8)]
        with pool.map("add", ({"a": i, "b": 0} for i in range(10**7))) as mapped:
            for result in mapped:
                if result == 10:
                    break
        for result in pool.map("add", ({"a": i, "b": 0} for i in range(10**7))):
            assert result == 0
            break  # the dropped iterator cancels the rest
        assert pool.request("add", {"a": 1, "b": 1}) == 2
    assert child_pids() == set()


def test_a_map_on_a_stopped_pool_raises_at_once() -> None:
    with ProcessManager(namespace()) as manager:
        pool = manager.spawn_pool("p", 2, **python_worker())
        pool.stop()
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                list(pool.map("echo", [[1], [2]]))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)  # a hang guard: it hung here, in the map's close
        assert not thread.is_alive(), "pool.map on a stopped pool did not return"
        assert [type(e) for e in outcome] == [WorkerUnavailable]


def test_a_callback_calling_the_blocking_api_gets_an_error_not_a_deadlock() -> None:
    errors: list[BaseException] = []
    with ProcessManager(namespace()) as manager:

        def on_exit(event: ProcessEvent) -> None:
            try:
                manager.spawn("again", **python_worker())
            except RuntimeError as exc:
                errors.append(exc)

        manager.on("exit", on_exit)
        manager.spawn("w", **python_worker()).stop()
    assert len(errors) == 1 and ".aio" in str(errors[0])


def test_works_from_a_thread_running_an_event_loop() -> None:
    async def notebook_cell() -> Any:
        with ProcessManager(namespace()) as manager:
            handle = manager.spawn("w", **python_worker())
            return handle.request("add", {"a": 1, "b": 2})

    assert asyncio.run(notebook_cell()) == 3
    assert child_pids() == set()


TRIO_IN_TRIO = textwrap.dedent(
    """
    import sys
    import trio
    from aspect_ipc.sync import ProcessManager

    async def in_trio():
        try:
            ProcessManager(sys.argv[2], backend="trio").__enter__()
        except RuntimeError as exc:
            print("refused:", exc, flush=True)
        with ProcessManager(sys.argv[2], backend="asyncio") as manager:
            handle = manager.spawn("w", executable=sys.executable, args=[sys.argv[1]])
            print("asyncio backend:", handle.request("add", {"a": 1, "b": 2}), flush=True)

    trio.run(in_trio)
    """
)


def test_the_trio_backend_from_a_thread_running_trio_is_a_clear_error_not_a_deadlock() -> None:
    # anyio's trio portal refuses calls from a trio thread, and its clean-up then waited for
    # ever: `with ProcessManager(backend="trio")` inside trio.run hung. The asyncio backend
    # works there (its loop has a thread of its own). In a process of its own: a hang fails.
    pytest.importorskip("trio")
    done = run_parent(TRIO_IN_TRIO)
    assert done.returncode == 0, done.stderr[-3000:]
    refused, answered = done.stdout.splitlines()
    assert refused.startswith("refused: the blocking ProcessManager with backend='trio' cannot")
    assert answered == "asyncio backend: 3"


def test_events_from_the_blocking_api_are_the_async_ones() -> None:
    events: list[ProcessEvent] = []
    with ProcessManager(namespace()) as manager:
        manager.on("exit", events.append)
        manager.spawn("w", **python_worker()).stop()
    assert [e.kind for e in events] == ["exit"] and events[0].worker_id == "w"


def test_ctrl_c_stops_every_worker_before_propagating(tmp_path: Any) -> None:
    ns = namespace()
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from aspect_ipc import DataChannelOptions
            from aspect_ipc.sync import ProcessManager
            exits = []
            try:
                with ProcessManager({ns!r}) as manager:
                    manager.on("exit", exits.append)
                    pool = manager.spawn_pool("p", 2, executable=sys.executable,
                        args=[{PYTHON_WORKER!r}], data_channel=DataChannelOptions(enabled=True))
                    print(" ".join(str(h.pid) for h in pool.handles), flush=True)
                    pool.request("sleep", {{"seconds": 60, "tag": "x"}}, timeout=120)
            finally:
                print("stopped", sorted(e.worker_id for e in exits), flush=True)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    pids = [int(p) for p in process.stdout.readline().split()]
    assert len(pids) == 2
    time.sleep(0.3)  # let the request reach its worker
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert "KeyboardInterrupt" in stderr and process.returncode != 0
    # The workers were stopped by the script on its way out (not left to notice its death).
    assert "stopped ['p-0', 'p-1']" in stdout
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    assert not [p for p in os.listdir("/tmp") if p.startswith(ns)]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def test_blocking_spawn_and_spawn_pool_pass_every_option() -> None:
    """remote_tracebacks=False and env reach the workers through the blocking API too."""
    with ProcessManager(namespace()) as manager:
        single = manager.spawn("one", **python_worker(), remote_tracebacks=False)
        pool = manager.spawn_pool(
            "p", 2, **python_worker(), remote_tracebacks=False, env={"POOL_MARK": "m"}
        )
        assert len(pool.handles) == 2
        with pytest.raises(RemoteError) as info:
            single.request("fail", {"message": "secret"})
        assert info.value.data == {"type": "RuntimeError"}
        for worker_id in ("p-0", "p-1"):
            with pytest.raises(RemoteError) as info:
                manager.get(worker_id).request("fail", {"message": "secret"})
            assert info.value.data == {"type": "RuntimeError"}
            assert info.value.remote_traceback is None
            assert manager.get(worker_id).request("getEnv", {"name": "POOL_MARK"}) == "m"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_events_iterate_and_end_with_the_manager(backend: str) -> None:
    """events() is a plain iterator over the async stream: filtered by kind, each next() waits
    for the next event, and a thread blocked in it sees the end when the manager exits."""
    got: list[ProcessEvent] = []
    with ProcessManager(namespace(), backend=backend) as manager:
        everything = manager.events()
        exits = manager.events("exit", "stop")
        reader = threading.Thread(target=lambda: got.extend(exits))
        reader.start()
        manager.spawn("w", **python_worker()).stop()
        assert [next(everything).kind for _ in range(4)] == ["spawn", "ready", "exit", "stop"]
        with manager.events() as closed:
            pass
        assert list(closed) == []  # closed: nothing more comes
        manager.spawn("v", **python_worker())
        assert next(everything).kind == "spawn"
    reader.join(timeout=30)
    assert not reader.is_alive()  # the manager's exit ended the blocked iteration
    assert [(e.kind, e.worker_id) for e in got] == [
        ("exit", "w"),
        ("stop", "w"),
        ("exit", "v"),
        ("stop", "v"),
    ]
    # What was buffered when the manager closed still comes, then the iteration ends for good.
    assert [e.kind for e in everything] == ["ready", "exit", "stop"]
    assert next(everything, None) is None


def test_blocking_events_reject_unknown_kinds() -> None:
    with ProcessManager(namespace()) as manager, pytest.raises(ValueError, match="unknown event"):
        manager.events("exited")


def test_blocking_restart_and_stats() -> None:
    with ProcessManager(namespace(), request_timeout=5) as manager:
        handle = manager.spawn("w", **python_worker())
        first = handle.pid
        assert [handle.request("add", {"a": i, "b": 1}) for i in range(3)] == [1, 2, 3]
        control = handle.stats().control
        assert control.requests_sent >= 3 and control.bytes_out > 0
        assert manager.stats().workers["w"].control.requests_sent == control.requests_sent
        handle.restart()
        assert handle.state is WorkerState.RUNNING and handle.pid != first
        assert handle.request("add", {"a": 1, "b": 1}) == 2
    assert child_pids() == set()
