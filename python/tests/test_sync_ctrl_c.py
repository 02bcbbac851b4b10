"""Ctrl-C in the blocking API, caught by the program, which goes on with the same worker (a real
script, a real worker, real SIGINTs).

A blocking request writes its message from the calling thread when the channel is idle. A
KeyboardInterrupt can land between a write and the count it returns; when the write was a part
of a large message, the rest was lost and the next message was written into the middle of it:
on control the worker answered a parse error (id null) and the next request waited for its
timeout. Only messages that a single write takes whole are written from the thread now; the
others go through the loop's writer, which a Ctrl-C does not interrupt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
