"""The foreign parent dies (spec 8.3, 8.4; decisions D19, D20): the worker and every process of
its group are gone within 2 s, busy or not; a broken stdout is a clean stop, not a SIGPIPE death.

For the parent's death the worker is started through an intermediate process (a few lines of
Python, foreign_parent.process.LAUNCHER) that alone holds the worker's stdin; killing it with
SIGKILL is the death of the worker's parent.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from foreign_parent import ForeignWorker, exited, fixtures, line, request

hygiene = fixtures.hygiene
language = fixtures.language

BOUND = (
    2.0  # seconds, the spec's bound (8.3) for the worker and its whole process group
)


@pytest.mark.parametrize("handler", [None, "sleep", "sleepBusy"])
def test_the_worker_and_its_group_die_with_the_parent(
    language: str, handler: str | None
) -> None:
    with ForeignWorker(language, via_launcher=True) as launched:
        worker_pid = launched.ready()["pid"]
        assert worker_pid != launched.process.pid, "the worker is the launcher's child"
        connection = launched.open_data()
        child_pid = connection.call("spawnChild", {"seconds": 60})["result"]["pid"]
        if handler is not None:
            params = {"seconds": 30, "tag": "parent-death"}
            connection.send(request(handler, params, "in-flight"))
            time.sleep(0.2)  # the handler has started
        since = time.monotonic()
        launched.process.kill()  # SIGKILL: the worker's stdin reaches EOF
        seconds = exited([worker_pid, child_pid], BOUND + 3)
        print(
            f"\n{language}: parent killed ({handler or 'idle'}): group gone after {seconds} s"
        )
        assert seconds is not None, (
            f"still alive {BOUND + 3} s after the parent's death"
        )
        assert time.monotonic() - since < BOUND + 3
        assert seconds < BOUND, f"the worker and its child took {seconds:.3f} s to go"
        assert not os.path.exists(launched.data_path), "socket file left"


def test_a_broken_stdout_is_a_clean_stop(language: str) -> None:
    with ForeignWorker(language, read_control=False) as worker:
        assert worker.process.stdout is not None
        ready = json.loads(worker.process.stdout.readline())
        assert ready["method"] == "$/ready"
        worker.process.stdout.close()  # the parent's end of the control channel is gone
        for request_id in range(1, 4):  # answers that can only fail with EPIPE
            worker.write(line(request("$/ping", request_id=request_id)))
        exited_at = worker.wait_exit(5.0)
        assert exited_at is not None, "still running 5 s after its stdout broke"
        code = worker.process.returncode
        assert code == 0, (
            f"exit code {code} (-13 is SIGPIPE); stderr: {worker.stderr()[-800:]}"
        )
        assert not os.path.exists(worker.data_path), "socket file left"
