"""Starting many workers at once does not hold up the workers already running.

``ASPECT_IPC_LOAD_SCALE=full`` (``make soak``) starts 100 workers; the default, 32.

No test here bounds a time. The storm's test makes each process creation wait, in the thread
that creates it, until a running worker has answered a request sent after the creation began:
the creation and the event loop must run at the same time, or the gate is never opened.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from typing import Any

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, StartupError
from supervisor_kit import children
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
WORKERS = 100 if os.environ.get("ASPECT_IPC_LOAD_SCALE") == "full" else 32
# How long a creation waits for the running worker before it gives up and records that the
# event loop did not run meanwhile: a hang guard for the failing case, not a bound on speed.
GATE_GIVE_UP = 30.0
DATA = DataChannelOptions(enabled=True)


class Answers:
    """The running worker's answers, counted where a creating thread can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self.gates_opened = 0
        self.gates_given_up = 0
        self._changed = threading.Condition()

    def answered(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for_one_sent_after_now(self) -> None:
        """Return once a request sent after this call has been answered (or give up)."""
        with self._changed:
            if self.gates_given_up:
                return  # the loop was already seen held: do not wait again for every worker
            # The next answer may be to a request already in flight; the one after it was
            # sent after that answer, so after now.
            target = self.count + 2
            if self._changed.wait_for(lambda: self.count >= target, GATE_GIVE_UP):
                self.gates_opened += 1
            else:
                self.gates_given_up += 1


def gated_popen(answers: Answers) -> type[subprocess.Popen[Any]]:
    class GatedPopen(subprocess.Popen[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            answers.wait_for_one_sent_after_now()
            super().__init__(*args, **kwargs)

    return GatedPopen


async def test_a_running_worker_answers_while_many_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = Answers()
    async with ProcessManager(namespace=namespace(), startup_timeout=300) as manager:
        healthy = await manager.spawn("healthy", **python_worker(), data_channel=DATA)
        monkeypatch.setattr(subprocess, "Popen", gated_popen(answers))
        async with anyio.create_task_group() as probes:

            async def probe() -> None:
                for n in range(10**9):
                    assert await healthy.request_via_data("echo", [n, "x" * 64]) == [n, "x" * 64]
                    answers.answered()
                    await anyio.sleep(0.01)

            probes.start_soon(probe)
            async with anyio.create_task_group() as spawns:
                for n in range(WORKERS):
                    spawn = functools.partial(manager.spawn, f"w{n}", **python_worker())
                    spawns.start_soon(spawn)
            probes.cancel_scope.cancel()
        monkeypatch.undo()
        assert answers.gates_given_up == 0, "a process was created while the event loop was held"
        assert len(manager.handles) == WORKERS + 1
        assert all(h.state.value == "running" for h in manager.handles.values())
        assert answers.gates_opened == WORKERS  # every creation went through the gate
    assert children() == (set(), set())


async def test_a_worker_slow_to_start_does_not_hold_up_the_others() -> None:
    # One start-up slot, taken by a worker that never sends $/ready: it gives the slot back
    # after 2 s, not at its start-up timeout, so the next worker starts meanwhile.
    async with ProcessManager(
        namespace=namespace(), startup_timeout=60, max_concurrent_starts=1
    ) as manager:
        spawned = anyio.Event()
        manager.on("spawn", lambda _: spawned.set())
        async with anyio.create_task_group() as task_group:

            async def slow() -> None:
                with pytest.raises(StartupError, match="stopped during its start-up"):
                    await manager.spawn("slow", **python_worker(), env={"TEST_NO_READY": "1"})

            task_group.start_soon(slow)
            await spawned.wait()  # the slow worker holds the only slot
            with anyio.fail_after(30):  # not the slow one's start-up timeout (60 s)
                handle = await manager.spawn("quick", **python_worker())
            assert await handle.request("add", {"a": 1, "b": 2}) == 3
            assert manager.get("slow").state.value == "starting"
            await manager.stop("slow")
