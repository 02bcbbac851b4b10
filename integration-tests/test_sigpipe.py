"""A parent whose program restored SIGPIPE's default action (as command-line tools often do, to
die quietly when piped into `head`): a worker that goes away while the parent writes to it must
be an error (WorkerCrashed, ChannelClosed), never the parent killed by the signal (exit 141,
without a word). Found by a drill: a worker crashing while requests flowed killed the parent on
every run, through the data socket's sendmsg and the control pipe's write alike.

Each parent is a script run in a process of its own (the signal would end the test run).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

PARENT = textwrap.dedent(
    """
    import json, signal, sys
    import anyio
    from aspect_ipc import DataChannelOptions, IpcError, ProcessManager, RestartPolicy

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    worker = json.loads(sys.argv[1])

    async def main():
        policy = RestartPolicy(enabled=True, max_restarts=100, backoff=0.01, max_backoff=0.01)
        async with ProcessManager(namespace=sys.argv[2], restart_policy=policy) as manager:
            handle = await manager.spawn(
                "w", **worker, data_channel=DataChannelOptions(enabled=True)
            )
            failures = 0

            async def send(via):
                nonlocal failures
                big = {"b": b"x" * 200_000} if via == "data" else {"s": "x" * 200_000}
                call = handle.request_via_data if via == "data" else handle.request
                while True:
                    try:
                        await call("echo", big, timeout=10)
                    except IpcError:
                        failures += 1

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(send, "data")
                    group.start_soon(send, "control")
                for _ in range(int(sys.argv[3])):
                    try:
                        await handle.request("crash", {"code": 1}, timeout=10)
                    except IpcError:
                        pass
                    await anyio.sleep(0.05)
                group.cancel_scope.cancel()
            print("survived", failures, handle.restarts, flush=True)

    anyio.run(main)
    """
)

# A worker of no SDK: it says $/ready, closes its stdin (the parent's end of that pipe has no
# reader any more), and lives on.
CLOSES_STDIN = textwrap.dedent(
    """
    import json, os, time
    ready = {"protocol": 1, "sdk": "raw", "sdkVersion": "0", "language": "python",
             "pid": os.getpid(), "dataPath": None}
    os.write(1, (json.dumps({"jsonrpc": "2.0", "method": "$/ready", "params": ready}) + "\\n").encode())
    os.close(0)
    time.sleep(30)
    """
)

CONTROL_ONLY = textwrap.dedent(
    """
    import signal, sys
    import anyio
    from aspect_ipc import ChannelClosed, ProcessManager

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    async def main():
        async with ProcessManager(namespace=sys.argv[2], shutdown_grace=1) as manager:
            handle = await manager.spawn("w", executable=sys.executable, args=["-c", sys.argv[1]])
            await anyio.sleep(0.3)  # its stdin is closed by now
            outcomes = []
            for _ in range(3):
                try:
                    await handle.request("echo", [1], timeout=5)
                    outcomes.append("answered")
                except ChannelClosed as exc:
                    outcomes.append(type(exc).__name__)
            print("survived", outcomes, flush=True)

    anyio.run(main)
    """
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_workers_crashing_while_the_parent_writes_never_kill_it_with_sigpipe(
    worker: dict[str, Any], namespace: str
) -> None:
    done = _run(PARENT, json.dumps(worker), namespace, "10")
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert done.stdout.startswith("survived"), done.stdout


def test_a_worker_that_closed_its_stdin_is_a_closed_channel_not_sigpipe(
    namespace: str,
) -> None:
    done = _run(CONTROL_ONLY, CLOSES_STDIN, namespace)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert done.stdout.startswith("survived ["), done.stdout
    assert "answered" not in done.stdout
