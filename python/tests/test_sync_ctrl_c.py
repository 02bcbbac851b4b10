"""Ctrl-C in the blocking API, caught by the program, which goes on with the same worker (a real
script, a real worker, real SIGINTs).

A blocking request writes its message from the calling thread when the channel is idle. A
KeyboardInterrupt can land between a write and the count it returns; when the write was a part
of a large message, the rest was lost and the next message was written into the middle of it:
on control the worker answered a parse error (id null) and the next request waited for its
timeout. Only messages that a single write takes whole are written from the thread now; the
others go through the loop's writer, which a Ctrl-C does not interrupt."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers import PYTHON_WORKER, namespace

_SCRIPT = """
import os, signal, sys, threading, time

from aspect_ipc import DataChannelOptions
from aspect_ipc.sync import ProcessManager

big = "x" * (1000 * 1024)  # under the control channel's line limit (1 MiB)
interrupted = 0
with ProcessManager(namespace=sys.argv[1]) as manager:
    handle = manager.spawn(
        "w", executable=sys.executable, args=[sys.argv[2]],
        data_channel=DataChannelOptions(enabled=True),
    )
    for attempt in range(40):
        send = handle.request if attempt % 2 == 0 else handle.request_via_data
        timer = threading.Timer(0.0005 * (attempt % 10 + 1), os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            send("echo", {"b": big}, timeout=60)
            timer.join()
            time.sleep(0.05)  # the KeyboardInterrupt lands here if the request was quicker
        except KeyboardInterrupt:
            interrupted += 1
            timer.join()
        # The program goes on: every channel still carries whole messages.
        assert handle.request("echo", {"n": attempt}, timeout=20) == {"n": attempt}
        assert handle.request_via_data("echo", {"n": attempt}, timeout=20) == {"n": attempt}
    print("interrupted during a request:", interrupted, flush=True)
"""


def test_ctrl_c_during_large_blocking_requests_leaves_the_channels_whole(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(_SCRIPT)
    process = subprocess.run(
        [sys.executable, str(script), namespace(), PYTHON_WORKER],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "parse error" not in process.stderr.lower()
    count = int(process.stdout.rsplit(":", 1)[1])
    assert count > 0  # some SIGINTs did land during a request, as meant


_STORM = """
import os, sys, time

from aspect_ipc import DataChannelOptions
from aspect_ipc.sync import ProcessManager

interrupted = 0
with ProcessManager(namespace=sys.argv[1], backend=sys.argv[3]) as manager:
    handle = manager.spawn(
        "w", executable=sys.executable, args=[sys.argv[2]],
        data_channel=DataChannelOptions(enabled=True),
    )
    end = time.monotonic() + 4
    announced = False
    # Every line of the loop is inside a try: a SIGINT may land on any of them (the loop's own
    # condition included), and the program under test goes on, as a program that catches
    # KeyboardInterrupt does.
    while True:
        try:
            while time.monotonic() < end:
                try:
                    if not announced:  # the signals start once this is read: inside the try
                        announced = True
                        print("ready", flush=True)
                    for round in range(1000):  # streams left early, and small requests
                        for item in handle.stream_via_data("countTo", {"n": 30, "size": 0}):
                            if item == round % 31:
                                break
                        handle.request("echo", [round], timeout=20)
                        handle.request_via_data("echo", [round], timeout=20)
                        if time.monotonic() > end:
                            break
                except KeyboardInterrupt:
                    interrupted += 1
            break
        except KeyboardInterrupt:  # one more, between two of the above
            interrupted += 1
    try:
        time.sleep(1.5)  # the signals stop; what they interrupted settles
    except KeyboardInterrupt:
        time.sleep(1.5)
    stats = handle.stats()
    # Nothing left behind: every interrupted request was taken back.
    print("in flight:", stats.control.in_flight, stats.data.in_flight, flush=True)
    assert handle.request("echo", ["after"], timeout=20) == ["after"]
    items = list(handle.stream_via_data("countTo", {"n": 3, "size": 0}))
    assert items == [0, 1, 2], items
print("interrupted:", interrupted, flush=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_storm_of_ctrl_c_leaves_nothing_held_and_nothing_pending(
    tmp_path: Path, backend: str
) -> None:
    # A SIGINT every 1-20 ms at a program that catches KeyboardInterrupt and goes on. It hung
    # for good in 8 of 20 runs (an interrupt left a threading.Condition held, which the loop
    # thread then waited for), and left requests pending (in_flight > 0 for ever).
    script = tmp_path / "storm.py"
    script.write_text(_STORM)
    child = subprocess.Popen(
        [sys.executable, str(script), namespace(), PYTHON_WORKER, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        rng = random.Random(19)
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline and child.poll() is None:
            child.send_signal(signal.SIGINT)
            time.sleep(rng.uniform(0.001, 0.02))
        stdout, stderr = child.communicate(timeout=120)  # a hang guard: it hung for good
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr[-3000:]
    assert "in flight: 0 0" in stdout, stdout + stderr[-2000:]
    assert int(stdout.rsplit(":", 1)[1]) > 10  # the signals did land


_ENTER = """
import json, signal, sys, threading, time
from aspect_ipc.sync import LOOP_THREAD, ProcessManager

backend, delays = sys.argv[3], [float(d) for d in sys.argv[4:]]
signal.signal(signal.SIGALRM, signal.default_int_handler)  # Python's SIGINT handler
outcomes = []
for delay in delays:
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        with ProcessManager(namespace=sys.argv[2], backend=backend):
            time.sleep(1)  # the KeyboardInterrupt lands here if the start was quicker
        outcomes.append("no interrupt")
    except KeyboardInterrupt:
        outcomes.append("interrupted")
    signal.setitimer(signal.ITIMER_REAL, 0)
    left = [t.name for t in threading.enumerate() if t.name == LOOP_THREAD]
    if left:
        outcomes.append(f"loop thread left after {delay}")
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_while_the_manager_starts_leaves_no_loop_running(backend: str) -> None:
    # A KeyboardInterrupt 8-12 ms into `with ProcessManager()` (asyncio; 8-80 ms on trio) hung
    # the script for good: anyio's start_blocking_portal joined a loop thread it never stopped.
    delays = [0.001 * n for n in range(1, 30, 2)] + [0.04, 0.06, 0.08, 0.1, 0.15]
    done = subprocess.run(
        [sys.executable, "-c", _ENTER, PYTHON_WORKER, namespace(), backend]
        + [str(d) for d in delays],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: it hung for good
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout)
    assert outcomes == ["interrupted"] * len(delays), outcomes
