"""Workers do not outlive their parent: when it dies by SIGKILL or SIGTERM, every worker, and
every process a worker started in its process group, is gone within 2 s, busy or not, and no
socket file is left.

The parent is a small real program using ProcessManager. Its worker is busy in ``sleepBusy`` (a
handler that ignores cancellation) and has started a child with ``spawnChild``. The parent does
nothing on SIGTERM: Python's default action ends it at once, like SIGKILL (a graceful stop on
SIGTERM is the application's choice: catch it and leave the ``async with`` block). The workers
learn of the death from their stdin reaching EOF (spec 8.3, decision D19).
"""

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
from _procfs import alive

BOUND = 2.0  # seconds from the parent's death to the last process of its workers gone

PARENT = textwrap.dedent("""
    import json, sys
    import anyio
    from aspect_ipc import DataChannelOptions, ProcessManager

    async def main():
        namespace, command = sys.argv[1], json.loads(sys.argv[2])
        async with ProcessManager(namespace=namespace) as manager:
            handle = await manager.spawn("w", executable=command[0], args=command[1:],
                                         data_channel=DataChannelOptions(enabled=True))
            child = await handle.request("spawnChild", {"seconds": 60})
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(handle.request_via_data, "sleepBusy", {"seconds": 60})
                task_group.start_soon(handle.request, "sleepBusy", {"seconds": 60})
                await anyio.sleep(0.3)  # both handlers are running
                print(json.dumps({"worker": handle.pid, "child": child["pid"],
                                  "path": handle.spec.data_path}), flush=True)
                await anyio.sleep(3600)

    anyio.run(main)
""")


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"]
)
def test_workers_and_their_children_die_with_the_parent(
    worker: dict[str, Any], namespace: str, tmp_path: Path, sig: signal.Signals
) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    command = json.dumps([worker["executable"], *worker["args"]])
    parent = subprocess.Popen(
        [sys.executable, str(script), namespace, command],
        stdout=subprocess.PIPE,
        text=True,
    )
    with parent:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, f"the parent did not start its worker (exit code {parent.wait()})"
        started = json.loads(line)
        processes = [started["worker"], started["child"]]
        assert all(alive(pid) for pid in processes)
        assert os.path.exists(started["path"])
        parent.send_signal(sig)
        died = time.monotonic()
        assert parent.wait(timeout=10) == -sig
        deadline = died + 10  # a hang guard; the promise is checked below
        while any(alive(pid) for pid in processes) and time.monotonic() < deadline:
            time.sleep(0.01)
        gone_after = time.monotonic() - died
        left = [pid for pid in processes if alive(pid)]
        for pid in left:  # never leave them running for the next test
            os.kill(pid, signal.SIGKILL)
    assert left == [], f"still running {gone_after:.1f} s after the parent died: {left}"
    assert gone_after < BOUND, f"the worker and its child took {gone_after:.2f} s to go"
    assert not os.path.exists(started["path"]), "the worker left its socket file"
