"""A handler of the workers' requests, in the parent, that calls ``sys.exit(code)`` or raises
KeyboardInterrupt ends the program as it would anywhere else in it (real parent scripts, a real
worker): the manager's block is left, its workers are stopped as leaving it stops them (their
``$/shutdown``: exit code 0), and the exception comes out of the block as itself. The program
exits with the code asked, nothing on stderr; a KeyboardInterrupt can be caught around the block.

On trio and in the blocking API it used to come out as an ExceptionGroup, with its traceback on
stderr and exit code 1 (the blocking API's loop thread also printed anyio's shutdown traceback);
asyncio, which lets these two out of its tasks as they are, already ended this way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workers import PYTHON_WORKER, namespace

_ASYNC = """
import sys

import anyio

from aspect_ipc import ProcessManager

how, backend = sys.argv[3], sys.argv[4]


def leave(params):
    if how == "exit":
        sys.exit(3)
    raise KeyboardInterrupt


async def main():
    async with ProcessManager(namespace=sys.argv[1]) as manager:
        manager.on("exit", lambda event: print("worker exit code", event.exit_code, flush=True))
        handle = await manager.spawn("w", executable=sys.executable, args=[sys.argv[2]])
        handle.on_request("leave", leave)
        await handle.request("callParent", {"method": "leave", "params": {}, "via": "control"})
        print("the call returned", flush=True)
    print("after the block", flush=True)


try:
    anyio.run(main, backend=backend)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""

_BLOCKING = """
import sys

from aspect_ipc.sync import ProcessManager

how = sys.argv[3]


def leave(params):
    if how == "exit":
        sys.exit(3)
    raise KeyboardInterrupt


try:
    with ProcessManager(namespace=sys.argv[1]) as manager:
        manager.on("exit", lambda event: print("worker exit code", event.exit_code, flush=True))
        handle = manager.spawn("w", executable=sys.executable, args=[sys.argv[2]])
        handle.on_request("leave", leave)
        try:
            handle.request("callParent", {"method": "leave", "params": {}, "via": "control"})
        except Exception as exc:  # the call fails as its channel closes; the exit follows
            print("the call failed:", type(exc).__name__, flush=True)
    print("after the block", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("how", ["exit", "interrupt"])
@pytest.mark.parametrize("api", ["asyncio", "trio", "blocking"])
def test_a_parent_handler_leaving_the_program_ends_it_as_a_script_would(
    tmp_path: Path, api: str, how: str
) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_BLOCKING if api == "blocking" else _ASYNC)
    process = subprocess.run(
        [sys.executable, str(script), namespace(), PYTHON_WORKER, how, api],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.stderr == ""
    assert "worker exit code 0" in process.stdout  # stopped, as at the end of the block
    assert "the call returned" not in process.stdout
    assert "after the block" not in process.stdout
    if how == "exit":
        assert process.returncode == 3
        assert "interrupted" not in process.stdout
    else:
        assert process.returncode == 0
        assert process.stdout.rstrip().endswith("interrupted")
