"""A worker stopped by a signal or stdin EOF cancels its handlers before it closes (spec 8.3,
8.4): what a handler sends on cancellation reaches the parent, and nothing logs a traceback.

Real worker processes; the parent side is this test, reading the worker's stdout to its end.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from worker_process import WorkerProcess, started

__all__ = ["started"]  # the fixture

# The test worker's ``sleep``, on the backend given in argv (the test worker runs on asyncio).
ON_BACKEND = textwrap.dedent(
    """
    import sys
    import anyio
    from aspect_ipc.worker import Worker

    worker = Worker()

    async def sleep(params):
        try:
            await anyio.sleep(params["seconds"])
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await worker.notify("cancelObserved", {"tag": params.get("tag")})
            raise
        return "done"

    worker.control("sleep")(sleep)
    worker.data("sleep")(sleep)
    worker.control("echo")(lambda params: params)
    worker.run(backend=sys.argv[1])
    """
)


def _start(started: Any, tmp_path: Path, backend: str) -> WorkerProcess:
    if backend == "asyncio":
        return started()  # integration-tests/workers/python/worker.py itself
    script = tmp_path / "on_backend.py"
    script.write_text(ON_BACKEND)
    return started([str(script), backend])  # type: ignore[no-any-return]


def _error(message: dict[str, Any]) -> tuple[Any, Any]:
    return message.get("id"), message["error"]["code"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("channel", ["control", "data"])
@pytest.mark.parametrize("event", ["SIGTERM", "SIGINT", "stdin EOF"])
def test_handlers_are_cancelled_before_the_control_channel_closes(
    started: Any, tmp_path: Path, backend: str, channel: str, event: str
) -> None:
    """``sleep`` running on either channel, then the event: the parent reads ``cancelObserved``
    on stdout before the worker exits 0, and the worker's stderr has no traceback."""
    worker = _start(started, tmp_path, backend)
    worker.connect()
    sleep = {"id": 1, "method": "sleep", "params": {"seconds": 60, "tag": channel}}
    if channel == "control":
        worker.send(sleep)
    else:
        worker.data_send(sleep)
    worker.send({"id": 2, "method": "echo", "params": ["running"]})
    assert worker.receive()["id"] == 2  # the sleep has started by now
    if event == "stdin EOF":
        worker.stdin.close()
    else:
        os.kill(worker.process.pid, signal.Signals[event])
    lines = [json.loads(line) for line in worker.stdout.read().splitlines()]  # up to its exit
    code = worker.process.wait(timeout=30)
    stderr = worker.stderr()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr
    observed = [m["params"] for m in lines if m.get("method") == "cancelObserved"]
    assert observed == [{"tag": channel}], (lines, stderr)
    if channel == "control":
        assert [_error(m) for m in lines if "error" in m] == [(1, -32002)]
    assert not os.path.exists(worker.path)
