"""The dual-channel example's parent: one worker, two channels, the seed's flow of output.

    python examples/dual-channel/parent.py --worker python|node|go

The worker's stderr lines are printed as they arrive, between the parent's own lines.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
from aspect_ipc import (
    DataChannelOptions,
    ProcessEvent,
    ProcessManager,
    RestartPolicy,
    freeze_support,
)

NAMESPACE = "dual-channel-example"


def repository_root() -> Path:
    # Frozen by PyInstaller, __file__ points into the unpacked bundle: the workers live beside
    # the checkout the binary is run from, so fall back to the working directory.
    if getattr(sys, "frozen", False):
        return Path.cwd()
    return Path(__file__).resolve().parents[2]


def worker_command(kind: str, root: Path, python: str | None) -> list[str]:
    """The command line that starts the example worker written in ``kind``."""
    if kind == "python":
        # When frozen, sys.executable is this binary, not a Python: never re-exec it.
        interpreter = python or (
            shutil.which("python3") if getattr(sys, "frozen", False) else sys.executable
        )
        if interpreter is None:
            raise SystemExit(
                "no Python interpreter found for the Python worker: pass --python"
            )
        return [interpreter, str(root / "examples/dual-channel/worker.py")]
    if kind == "node":
        return ["node", str(root / "examples/dual-channel/build/worker.js")]
    if kind == "go":
        return [str(root / ".build/go/dual-channel-worker")]
    raise SystemExit(f"unknown worker kind {kind!r}: use python, node or go")


def show(value: dict[str, Any]) -> str:
    return repr(value)


async def main(
    kind: str, root: Path, python: str | None, socket_dir: str | None
) -> None:
    command = worker_command(kind, root, python)
    print("Parent: Starting ProcessManager...")
    async with ProcessManager(
        namespace=NAMESPACE,
        socket_dir=socket_dir,
        restart_policy=RestartPolicy(
            enabled=True, max_restarts=3, backoff=1.0, max_backoff=10.0
        ),
    ) as manager:
        manager.on("spawn", lambda e: print(f"Parent: Process spawned: {e.worker_id}"))
        manager.on("output", lambda e: print(e.line))
        manager.on("ready", lambda e: print(f"Parent: Process ready: {e.worker_id}"))

        def on_exit(event: ProcessEvent) -> None:
            print(
                f"Parent: Process exited: {event.worker_id} (code: {event.exit_code})"
            )

        manager.on("exit", on_exit)
        print("Parent: Spawning worker with dual channels...")
        # Unfrozen, the Python worker imports aspect_ipc from wherever this parent did; a frozen
        # parent's sys.path is its bundle, of no use to another interpreter.
        env = (
            {"PYTHONPATH": os.pathsep.join(sys.path)}
            if kind == "python" and not getattr(sys, "frozen", False)
            else None
        )
        handle = await manager.spawn(
            "worker-1",
            executable=command[0],
            args=command[1:],
            env=env,
            data_channel=DataChannelOptions(enabled=True),
        )
        print("Parent: Both channels established")

        print("\n=== Control Channel (stdio) ===")
        print(f"Parent: Status: {show(await handle.request('getStatus'))}")
        print(f"Parent: Config: {show(await handle.request('getConfig'))}")

        print("\n=== Data Channel (Unix socket + MessagePack) ===")
        rng = random.Random(42)
        items = [{"id": i, "value": rng.random() * 100} for i in range(1000)]
        print(f"Parent: Sending {len(items)} items via data channel...")
        result = await handle.request_via_data("processItems", {"items": items})
        result = {"processed": result["processed"], "sum": round(result["sum"], 3)}
        print(f"Parent: Data channel result: {show(result)}")
        matrix = [[rng.random() for _ in range(100)] for _ in range(100)]
        print("Parent: Sending 100x100 matrix via data channel...")
        result = await handle.request_via_data("processMatrix", {"matrix": matrix})
        result = {"sum": round(result["sum"], 3), "avg": round(result["avg"], 7)}
        print(f"Parent: Matrix result: {show(result)}")

        print("\n=== Shutdown ===")
        print("Parent: Sending shutdown command...")
        await handle.request("shutdown")
        await handle.wait()
        print("Parent: Stopping all processes...")
    print("Parent: Done")


def cli() -> None:
    freeze_support()  # before anything else: a no-op unless frozen (see the README)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["python", "node", "go"], default="python")
    parser.add_argument(
        "--root", type=Path, help="the aspect-ipc checkout holding the workers"
    )
    parser.add_argument(
        "--python", help="interpreter for the Python worker (when frozen)"
    )
    parser.add_argument(
        "--socket-dir", help="directory of the data channel's socket (default /tmp)"
    )
    options = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    anyio.run(
        main,
        options.worker,
        options.root or repository_root(),
        options.python,
        options.socket_dir,
    )


if __name__ == "__main__":
    cli()
