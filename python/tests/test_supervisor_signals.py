"""Signals reach the worker's own processes only, never one that got a reaped worker's pid.

To make the kernel hand a reaped worker's pid to another process at once, the tests write
``/proc/sys/kernel/ns_last_pid`` (root, or CAP_CHECKPOINT_RESTORE): the *impostor* started next
gets the worker's old pid, in a session (and process group) of its own, like an unrelated daemon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from aspect_ipc import ProcessEvent, ProcessManager, WorkerCrashed
from aspect_ipc._child import ChildProcess
from supervisor_kit import launcher
from workers import namespace, pid_alive, run_parent

pytestmark = pytest.mark.anyio
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def _can_choose_pids() -> bool:
    return os.access(NS_LAST_PID, os.W_OK)


needs_pid_choice = pytest.mark.skipif(
    not _can_choose_pids(), reason=f"choosing the next pid needs write access to {NS_LAST_PID}"
)


def _impostor_at(pid: int, tries: int = 20) -> subprocess.Popen[bytes] | None:
    """A process with ``pid`` in a session of its own, if the pid is free; else None."""
    for _ in range(tries):
        if os.path.exists(f"/proc/{pid}"):
            return None  # still taken (a zombie keeps its pid)
        with open(NS_LAST_PID, "w") as f:
            f.write(str(pid - 1))
        impostor = subprocess.Popen(["sleep", "30"], start_new_session=True)
        if impostor.pid == pid:
            return impostor
        impostor.kill()  # another process of the machine took the pid first: again
        impostor.wait()
    return None


async def test_the_group_is_signalled_while_its_leader_is_an_unreaped_zombie(
    tmp_path: Path,
) -> None:
    # The leader starts a member of its group and exits at once: only the group signal,
    # sent before the reap, can reach the member.
    member_file = tmp_path / "member"
    child = await ChildProcess.start(
        ["/bin/sh", "-c", f"sleep 60 & echo $! > {member_file}"],
        stdin=0,
        stdout=1,
        stderr=2,
        cwd=None,
        env=dict(os.environ),
    )
    with anyio.fail_after(10):
        await child.watch()
    assert child.returncode == 0 and not child.reaped
    assert os.path.exists(f"/proc/{child.pid}")  # a zombie: its pid, and group id, are held
    member = int(member_file.read_text())
    assert pid_alive(member)
    child.signal_group(signal.SIGKILL)
    child.reap()
    with anyio.fail_after(5):
        while pid_alive(member):
            await anyio.sleep(0.01)
    assert not os.path.exists(f"/proc/{child.pid}")


@needs_pid_choice
async def test_nothing_is_signalled_once_the_worker_is_reaped() -> None:
    child = await ChildProcess.start(
        ["/bin/true"], stdin=0, stdout=1, stderr=2, cwd=None, env=dict(os.environ)
    )
    with anyio.fail_after(10):
        await child.watch()
    child.reap()
    impostor = _impostor_at(child.pid)
    assert impostor is not None, "could not place a process at the reaped pid"
    try:
        child.signal_group(signal.SIGKILL)
        child.signal(signal.SIGKILL)
        await anyio.sleep(0.1)
        assert impostor.poll() is None, "a signal meant for the worker killed another process"
    finally:
        impostor.kill()
        impostor.wait()


@needs_pid_choice
async def test_a_crashed_worker_pid_given_to_another_process_is_left_alone(
    tmp_path: Path,
) -> None:
    # The worker's stderr ends with an unfinished line, forwarded at end of stream: after the
    # worker exited, and before its incarnation's clean-up signals its group. There, the test
    # waits for the pid to be free (a parent that reaped early frees it) and takes it.
    worker = launcher(tmp_path, "words", "printf 'last words' >&2")
    impostors: list[subprocess.Popen[bytes]] = []

    def take_the_pid(event: ProcessEvent) -> None:
        if event.line != "last words" or event.pid is None:
            return
        deadline = time.monotonic() + 0.3
        while os.path.exists(f"/proc/{event.pid}") and time.monotonic() < deadline:
            time.sleep(0.002)
        impostor = _impostor_at(event.pid) or subprocess.Popen(
            ["sleep", "30"], start_new_session=True
        )
        impostors.append(impostor)

    try:
        async with ProcessManager(namespace=namespace()) as manager:
            manager.on("output", take_the_pid)
            handle = await manager.spawn("w", **worker)
            with pytest.raises(WorkerCrashed):
                await handle.request("crash", {"code": 1})
            await handle.wait()
        await anyio.sleep(0.2)
        assert len(impostors) == 1
        assert impostors[0].poll() is None, "the parent killed an unrelated process"
    finally:
        for impostor in impostors:
            impostor.kill()
            impostor.wait()


SIGCHLD_IGNORED = textwrap.dedent(
    """
    import signal, sys
    import anyio
    from aspect_ipc import ProcessManager, WorkerCrashed

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    async def main():
        async with ProcessManager(namespace=sys.argv[2]) as manager:
            handle = await manager.spawn("w", executable=sys.executable, args=[sys.argv[1]])
            try:
                await handle.request("crash", {"code": 3})
            except WorkerCrashed as exc:
                print("crashed", exc.exit_code, exc.signal, str(exc).split("\\n")[0], flush=True)
            again = await manager.spawn("w2", executable=sys.executable, args=[sys.argv[1]])
            await again.stop()
            print("stopped", again.state.value, again.exit_code, again.signal, flush=True)

    anyio.run(main)
    """
)


def test_with_sigchld_ignored_an_end_is_of_unknown_status_and_the_parent_says_why() -> None:
    # The kernel reaps every child at once then: the parent made up "signal SIGKILL" for a
    # worker that exited with code 3, and a clean exit read as a SIGKILL crash.
    done = run_parent(SIGCHLD_IGNORED)
    assert done.returncode == 0, done.stderr[-3000:]
    crashed, stopped = done.stdout.splitlines()
    assert crashed.startswith("crashed None None worker w crashed (exit status unknown: ")
    assert "SIGCHLD is ignored, or a SIGCHLD handler waits for any child" in crashed
    assert stopped == "stopped stopped None None"
    assert done.stderr.count("SIGCHLD is ignored in this process (signal.SIG_IGN)") == 1


SIGTERM_INHERITED = textwrap.dedent(
    """
    import os, signal, sys
    import anyio
    from aspect_ipc import ProcessManager

    sent = signal.SIGINT if sys.argv[3] == "ignore-int" else signal.SIGTERM
    if sys.argv[3] == "block":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    else:  # what a shell does to a command it starts in the background, for SIGINT
        signal.signal(sent, signal.SIG_IGN)

    def term_bits(pid):
        bits = {}
        for line in open(f"/proc/{pid}/status"):
            name, _, value = line.partition(":")
            if name in ("SigBlk", "SigIgn"):
                bits[name] = bool(int(value, 16) & (1 << (sent - 1)))
        return bits

    async def main():
        async with ProcessManager(namespace=sys.argv[2]) as manager:
            handle = await manager.spawn("w", executable=sys.executable, args=[sys.argv[1]])
            print(term_bits(handle.pid), flush=True)
            os.kill(handle.pid, sent)
            with anyio.fail_after(20):  # a hang guard: it used to run on
                await handle.wait()
            print("exit", handle.exit_code, flush=True)

    anyio.run(main)
    """
)


@pytest.mark.parametrize("how", ["ignore", "block", "ignore-int"])
def test_a_parent_that_ignores_or_blocks_sigterm_does_not_pass_that_to_its_workers(
    how: str,
) -> None:
    # Both survive exec: a Python worker kept running after SIGTERM (spec 8.4), and stop()
    # had to wait for the SIGKILL. Likewise SIGINT, ignored by a parent a shell started with
    # `cmd &` (found by the deployment drill: Python and Go workers then ignored it).
    done = run_parent(SIGTERM_INHERITED, how)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["{'SigBlk': False, 'SigIgn': False}", "exit 0"]
