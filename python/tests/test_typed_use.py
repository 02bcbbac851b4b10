"""A user's program under ``mypy --strict``, as a stranger's type checker sees the public API:
what the docs show type-checks, and the mistakes a type checker can catch are caught, on the
calls that pass options on (spawn_pool, the blocking API, map) as on ``spawn`` itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

GOOD = """
    import sys

    import anyio
    from aspect_ipc import DataChannelOptions, ProcessManager, SpawnOptions, sync
    from aspect_ipc.worker import Worker

    WORKER: SpawnOptions = {
        "executable": sys.executable,
        "args": ["square_worker.py"],
        "data_channel": DataChannelOptions(enabled=True),
    }


    async def main() -> None:
        async with ProcessManager(namespace="typed", request_timeout=5) as manager:
            pool = await manager.spawn_pool("squares", 2, max_requests_per_worker=100, **WORKER)
            async with pool.map("square", [{"n": 1}], ordered=False, retries=1) as results:
                async for square in results:
                    print(square)
            stats = manager.stats()
            print(stats.requests_sent)


    anyio.run(main)
    with sync.ProcessManager(namespace="typed", backend="trio", startup_timeout=3) as blocking:
        handle = blocking.spawn("one", executable=sys.executable, args=["w.py"])
        pool = blocking.spawn_pool("squares", 2, **WORKER)
        print(sum(pool.map("square", [{"n": 1}], max_in_flight=4)), handle.id)

    worker = Worker()
    worker.on("ready")(lambda info: None)
"""

# Each line holds one mistake, and its error names it.
BAD = {
    'WORKER: SpawnOptions = {"executable": sys.executable, "arg": []}': '"arg"',
    'await manager.spawn_pool("p", 2, executable=sys.executable, data_chanel=None)': "data_chanel",
    'await manager.spawn_pool("p", 2, executable=1)': '"executable"',
    'sync.ProcessManager(namespace="x", request_timout=1)': "request_timout",
    'blocking.spawn("one", executable=sys.executable, startup_timeout="3")': '"startup_timeout"',
    'blocking.spawn_pool("p", 2, executable=sys.executable, health=True)': '"health"',
    'blocking.get("p-0")  # a correct line between the others': "",
    'list(blocking_pool.map("square", [], ordred=True))': "ordred",
    'Worker().on("readyy")': '"on" of "Worker"',
}


def _mypy(tmp_path: Path, program: str) -> list[str]:
    (tmp_path / "user.py").write_text(program)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "user.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 1), run.stderr
    return [line for line in run.stdout.splitlines() if ": error:" in line]


def test_what_the_docs_show_type_checks_and_the_mistakes_do_not(tmp_path: Path) -> None:
    assert _mypy(tmp_path, textwrap.dedent(GOOD)) == []
    head = [
        "import sys",
        "from aspect_ipc import ProcessManager, SpawnOptions, sync",
        "from aspect_ipc.worker import Worker",
        "async def main(manager: ProcessManager, blocking: sync.ProcessManager) -> None:",
        '    blocking_pool = blocking.spawn_pool("p", 2, executable=sys.executable)',
    ]
    bad = "\n".join([*head, *(f"    {line}" for line in BAD)]) + "\n"
    errors = _mypy(tmp_path, bad)
    first = len(head) + 1  # the line of BAD's first entry in the program
    for number, (line, names) in enumerate(BAD.items(), start=first):
        found = [error for error in errors if error.startswith(f"user.py:{number}:")]
        if names:
            assert found and all(names in error for error in found[:1]), (line, errors)
        else:
            assert not found, (line, found)
