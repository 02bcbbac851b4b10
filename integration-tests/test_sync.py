"""The blocking API (aspect_ipc.sync) over Python, Node and Go workers: from a script, from
eight threads at once, and Ctrl-C (a real SIGINT to a real script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _procfs import alive
from aspect_ipc import DataChannelOptions, RemoteError, WorkerCrashed
from aspect_ipc.sync import LOOP_THREAD, ProcessManager
from conftest import WORKERS

DATA = DataChannelOptions(enabled=True)

SCRIPT = """
import json, sys
from aspect_ipc import DataChannelOptions, RemoteError
from aspect_ipc.sync import ProcessManager

namespace, worker = sys.argv[1], json.loads(sys.argv[2])
exits = []
try:
    with ProcessManager(namespace) as manager:
        manager.on("exit", exits.append)
        handle = manager.spawn("w", **worker, data_channel=DataChannelOptions(enabled=True))
        print("add", handle.request("add", {"a": 20, "b": 22}), flush=True)
        print("data", handle.request_via_data("add", {"a": 1, "b": 2}), flush=True)
        try:
            handle.request("fail", {"message": "no"})
        except RemoteError as exc:
            print("error", exc.code, flush=True)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DataChannelOptions(enabled=True))
        items = ({"a": i, "b": 1} for i in range(1000))
        print("map", sum(pool.map("add", items)), flush=True)
        print("pids", " ".join(str(h.pid) for h in [handle, *pool.handles]), flush=True)
        if sys.argv[3] == "wait":
            pool.request("sleep", {"seconds": 60, "tag": "x"}, timeout=120)
finally:
    print("stopped", sorted(e.worker_id for e in exits), flush=True)
"""


def _script(tmp_path: Path, namespace: str, worker: dict[str, Any], mode: str) -> Any:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, str(path), namespace, json.dumps(worker), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_blocking_api_from_a_script(
    worker: dict[str, Any], namespace: str, tmp_path: Path
) -> None:
    process = _script(tmp_path, namespace, worker, "end")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[:4] == [
        "add 42",
        "data 3",
        "error -32000",
        f"map {sum(range(1, 1001))}",
    ]
    assert lines[-1] == "stopped ['p-0', 'p-1', 'w']"


def test_ctrl_c_stops_every_worker_before_propagating(
    worker: dict[str, Any], namespace: str, tmp_path: Path
) -> None:
    process = _script(tmp_path, namespace, worker, "wait")
    assert process.stdout is not None
    for line in iter(process.stdout.readline, ""):
        if line.startswith("pids "):
            pids = [int(p) for p in line.split()[1:]]
            break
    time.sleep(0.3)  # let the sleep request reach its worker
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    # The script stopped them on its way out (not left for them to notice its death).
    assert stdout.splitlines()[-1] == "stopped ['p-0', 'p-1', 'w']"
    assert len(pids) == 3 and not [pid for pid in pids if alive(pid)]
    assert not [p for p in os.listdir("/tmp") if p.startswith(namespace)]


def test_eight_threads_share_one_handle_and_one_pool(
    worker: dict[str, Any], namespace: str
) -> None:
    seen: list[str] = []
    with ProcessManager(namespace) as manager:
        manager.on("ready", lambda e: seen.append(threading.current_thread().name))
        handle = manager.spawn("w", **worker, data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DATA)

        def work(n: int) -> list[Any]:
            results = []
            for i in range(40):
                target = handle if i % 2 else pool
                call = target.request_via_data if n % 2 else target.request
                results.append(call("add", {"a": n, "b": i}))
            mapped = pool.map(
                "add", ({"a": n, "b": i} for i in range(40)), ordered=n % 2 == 0
            )
            return [*results, sorted(mapped)]

        with ThreadPoolExecutor(8) as executor:
            outcomes = list(executor.map(work, range(8)))
        for n, outcome in enumerate(outcomes):
            assert outcome == [n + i for i in range(40)] + [[n + i for i in range(40)]]
        try:
            pool.request("crash", {"code": 3})
        except WorkerCrashed as exc:
            assert exc.exit_code == 3
        else:
            raise AssertionError("no WorkerCrashed")
        try:
            handle.request("add", {"a": "x", "b": 1})
        except RemoteError as exc:
            assert exc.code == -32602
    assert seen == [LOOP_THREAD] * 3


CYCLES = """
import json, os, random, signal, sys, threading, time
from aspect_ipc import DataChannelOptions
from aspect_ipc.sync import LOOP_THREAD, ProcessManager

namespace, worker, backend = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
outcomes = {"done": 0, "interrupted": 0}
for cycle in range(int(sys.argv[4])):
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.0001, 0.05))
            with ProcessManager(namespace, backend=backend) as manager:
                handle = manager.spawn("w", **worker, data_channel=DataChannelOptions(enabled=True))
                handle.request("echo", [cycle])
            outcomes["done"] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except KeyboardInterrupt:
        outcomes["interrupted"] += 1
    for _ in range(500):  # a loop thread is gone once the block is left (5 s: a hang guard)
        if not any(t.name == LOOP_THREAD for t in threading.enumerate()):
            break
        time.sleep(0.01)
    else:
        outcomes["loop thread left"] = cycle
        break
print(json.dumps(outcomes), flush=True)
"""


def test_a_ctrl_c_at_any_moment_of_many_managers_never_hangs(namespace: str) -> None:
    # One SIGINT per cycle, at a random moment of `with ProcessManager()`, spawn, a request and
    # the exit. The leaks drill hung within a few hundred cycles: a KeyboardInterrupt that lands
    # in a threading.Event or a Future's wait can leave its lock held, and the loop thread then
    # blocks on it as it hands over the portal; one that lands as SimpleQueue.get() returns
    # loses what it returned.
    worker = json.dumps({"executable": WORKERS["go"][0], "args": WORKERS["go"][1:]})
    for backend in ("asyncio", "trio"):
        done = subprocess.run(
            [sys.executable, "-c", CYCLES, namespace, worker, backend, "300"],
            capture_output=True,
            text=True,
            timeout=400,  # a hang guard: it hung for good
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outcomes = json.loads(done.stdout)
        assert "loop thread left" not in outcomes, outcomes
        assert outcomes["interrupted"] > 0 and outcomes["done"] > 0, (
            outcomes
        )  # both happened


STORM = """
import json, os, signal, sys, threading, time
from aspect_ipc import DataChannelOptions
from aspect_ipc.sync import LOOP_THREAD, ProcessManager

namespace, worker, backend = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
armed = True
signal.signal(signal.SIGALRM, lambda *_: armed and os.kill(os.getpid(), signal.SIGINT))
report = {}
try:
    with ProcessManager(namespace, backend=backend) as manager:
        handle = manager.spawn("w", **worker, data_channel=DataChannelOptions(enabled=True))
        pool = manager.spawn_pool("p", 2, **worker)
        pids = [handle.pid] + [h.pid for h in pool.handles]
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.001)  # a SIGINT every millisecond
        time.sleep(30)
except KeyboardInterrupt as exc:
    report["chained"] = exc.__context__ is not None  # a traceback printed for each
armed = False
signal.setitimer(signal.ITIMER_REAL, 0)
report["loop threads"] = [t.name for t in threading.enumerate() if t.name == LOOP_THREAD]
report["alive"] = [pid for pid in pids if os.path.exists(f"/proc/{pid}/cmdline")
                   and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
print(json.dumps(report), flush=True)
"""


def test_a_storm_of_ctrl_c_while_leaving_cuts_nothing_short(namespace: str) -> None:
    # docs/pools.md: a second Ctrl-C during the clean-up does not cut it short. One that landed
    # in the clean-up's own handler escaped it (the workers and the loop thread were still
    # running as the block was left), and each further one chained a traceback.
    worker = json.dumps({"executable": WORKERS["go"][0], "args": WORKERS["go"][1:]})
    reports = []
    for run in range(8):
        backend = ("asyncio", "trio")[run % 2]
        done = subprocess.run(
            [sys.executable, "-c", STORM, f"{namespace}{run}", worker, backend],
            capture_output=True,
            text=True,
            timeout=120,  # a hang guard
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        reports.append(json.loads(done.stdout))
    assert reports == [{"chained": False, "loop threads": [], "alive": []}] * 8, reports


EVERY_LINE = """
import inspect, json, linecache, os, signal, sys, threading, time
import aspect_ipc.sync as blocking
from aspect_ipc.sync import LOOP_THREAD, ProcessManager, _caller, _loop_thread

namespace, worker, backend = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
FILES = {blocking.__file__, _loop_thread.__file__, _caller.__file__}
lines = []  # (file, line) as the blocking API runs them in the main thread, first time each
target = None  # the line to raise a SIGINT at, once
fired = False

def trace(frame, event, arg):
    return local if frame.f_code.co_filename in FILES else None

def local(frame, event, arg):
    global target, fired
    if event == "line":
        here = (frame.f_code.co_filename, frame.f_lineno)
        if target is None and here not in lines:
            lines.append(here)
        if here == target:
            target, fired = (), True
            signal.raise_signal(signal.SIGINT)
    return local

def run(n, at):
    global target, fired
    target, fired, interrupts, pid = at, False, 0, None
    sys.settrace(trace)
    try:
        with ProcessManager(f"{namespace}{n}", backend=backend) as manager:
            handle = manager.spawn("w", **worker)
            pid = handle.pid
            handle.request("echo", [n])
    except KeyboardInterrupt:
        interrupts += 1
    finally:
        sys.settrace(None)
    for _ in range(300):  # the loop thread is gone once the block is left (3 s: a hang guard)
        if not any(t.name == LOOP_THREAD for t in threading.enumerate()):
            break
        time.sleep(0.01)
    left = [t.name for t in threading.enumerate() if t.name == LOOP_THREAD]
    stat = f"/proc/{pid}/stat"
    running = pid is not None and os.path.exists(stat) and (
        open(stat).read().rsplit(")", 1)[1].split()[0] != "Z")
    return interrupts, left, running

run(0, None)  # a dry run: the lines to try
# Not __exit__'s lines before the one that holds Ctrl-C: a KeyboardInterrupt there comes before
# any code of ours has run (Python's own limit). Traced, the signal is handled in the trace
# function, before its line runs; untraced, nothing between __exit__'s start and that C call
# looks for one.
code, first = ProcessManager.__exit__.__code__, ProcessManager.__exit__.__code__.co_firstlineno
source, _ = inspect.getsourcelines(ProcessManager.__exit__)
hold = first + next(i for i, text in enumerate(source) if "signal.signal(" in text)
tried, wrong = 0, []
for n, at in enumerate(lines, 1):
    if at[0] == code.co_filename and first <= at[1] <= hold:
        continue
    outcome = run(n, at)
    if not fired:
        continue  # a line this run did not take (a wait that found its answer at once)
    tried += 1
    if outcome != (1, [], False):
        wrong.append([os.path.basename(at[0]), at[1], linecache.getline(*at).strip(), *outcome])
        break  # what is left running would be counted against every later line
print(json.dumps({"tried": tried, "wrong": wrong}), flush=True)
"""


def test_a_ctrl_c_at_each_line_of_the_blocking_api_is_raised_once_and_leaves_nothing(
    namespace: str,
) -> None:
    """An attacker's timing: a SIGINT raised at each line the blocking API runs in the main
    thread (the start, a spawn, a request, the clean-up), one line per cycle. Each time one
    KeyboardInterrupt comes out of the with block, and the worker and the loop thread are gone.
    (Before: a Ctrl-C in the clean-up's lines before it held Ctrl-C, or between the loop's
    start and __enter__'s return, left both running, a fraction of a percent of the storm
    test's runs; one just after the stop, close() calling stop() for ever.)"""
    worker = json.dumps({"executable": WORKERS["go"][0], "args": WORKERS["go"][1:]})
    for backend in ("asyncio", "trio"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                EVERY_LINE,
                f"{namespace}{backend[0]}",
                worker,
                backend,
            ],
            capture_output=True,
            text=True,
            timeout=300,  # a hang guard
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert report["tried"] >= 80, report  # the lines were found and taken
        assert report["wrong"] == [], report
