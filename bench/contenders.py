"""Who is measured: aspect-ipc with each worker language (and event loop), and its baselines.

Every contender runs in its own driver process (driver.py): long-lived for the whole run, or a
fresh one for every measurement with ``--fresh``. The coordinator (schedule.py) never measures
anything itself; it hands cells to the drivers in turn.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BASELINE_KEYS",
    "GRPC_SERVER",
    "WORKER_NAMES",
    "Contender",
    "available",
    "baselines",
    "find_worker",
]

ROOT = Path(__file__).resolve().parent.parent
WORKER_NAMES = ("python", "node", "go")
GRPC_SERVER = ROOT / ".build/bench/grpc-echo-server"
"""The Go gRPC echo server, built from bench/grpc/ by ``make bench``."""


@dataclass(frozen=True)
class Contender:
    """One row of every table. ``kind``: "aspect" (a worker language on an anyio ``backend``),
    "raw_socket", "mp_pipe", "grpc_go" or "grpc_python"."""

    key: str
    name: str
    short: str
    """The name in a ratio: ``0.42x raw``."""
    kind: str
    worker: str = ""
    backend: str = "asyncio"
    executable: str = ""
    args: tuple[str, ...] = ()
    busy_poll: float = 0.0
    """The data channel's ``busy_poll`` (seconds): 0 for the plain rows."""
    receive_wait: float = 0.0
    """The data channel's ``receive_wait`` (seconds): 0 for the plain rows."""

    @property
    def is_aspect(self) -> bool:
        return self.kind == "aspect"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Contender:
        return cls(**{**data, "args": tuple(data["args"])})


BASELINE_KEYS = ("raw_socket", "mp_pipe", "grpc_go", "grpc_python")


def baselines() -> list[Contender | str]:
    """The four baselines, or for each one that cannot run, why (a note to print)."""
    found: list[Contender | str] = [
        Contender("raw_socket", "raw socket", "raw", "raw_socket"),
        Contender("mp_pipe", "mp.Pipe", "mp.Pipe", "mp_pipe"),
    ]
    grpcio = importlib.util.find_spec("grpc") is not None
    missing_grpcio = (
        "grpcio is not installed (make bench installs it: pip install -e 'python[bench]')"
    )
    if not grpcio:
        found.append(f"gRPC (Go server): {missing_grpcio}")
    elif not os.access(GRPC_SERVER, os.X_OK):
        found.append(f"gRPC (Go server): {GRPC_SERVER.relative_to(ROOT)} is not built (make bench)")
    else:
        found.append(
            Contender(
                "grpc_go", "gRPC, Go server", "gRPC-Go", "grpc_go", executable=str(GRPC_SERVER)
            )
        )
    if grpcio:
        server = ROOT / "bench/grpc/server.py"
        found.append(
            Contender(
                "grpc_python",
                "gRPC, Python server",
                "gRPC-Py",
                "grpc_python",
                executable=sys.executable,
                args=(str(server),),
            )
        )
    else:
        found.append(f"gRPC (Python server): {missing_grpcio}")
    return found


BUSY_POLL = 50e-6
"""The busy rows' ``DataChannelOptions.busy_poll``: 50 µs, a few small round trips."""
RECEIVE_WAIT = 200e-6
"""The waiting rows' ``DataChannelOptions.receive_wait``: 200 µs."""


def find_worker(
    name: str, backend: str = "asyncio", busy_poll: float = 0.0, receive_wait: float = 0.0
) -> Contender | str:
    """aspect-ipc with the test worker ``name`` and the parent on ``backend`` (the data channel
    busy polling for ``busy_poll`` seconds, or waiting in the receive call for ``receive_wait``
    seconds), or why it cannot run (a note to print)."""
    key = name if backend == "asyncio" else f"{name}_{backend}"
    label = f"{name} worker" + ("" if backend == "asyncio" else f" ({backend})")
    if busy_poll:
        key += "_busy"
        label += f" (busy poll {busy_poll * 1e6:g} µs)"
    if receive_wait:
        key += "_wait"
        label += f" (receive wait {receive_wait * 1e6:g} µs)"

    def contender(executable: str, *args: str) -> Contender:
        return Contender(
            key, label, key, "aspect", name, backend, executable, args, busy_poll, receive_wait
        )

    if backend not in ("asyncio", "trio"):
        return f"unknown event loop {backend!r} (known: asyncio, trio)"
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        return "trio is not installed"
    if name == "python":
        return contender(sys.executable, str(ROOT / "integration-tests/workers/python/worker.py"))
    if name == "node":
        script = ROOT / "integration-tests/workers/node/build/worker.js"
        node = shutil.which("node")
        if node is None:
            return "node is not on PATH"
        if not script.is_file():
            return f"{script.relative_to(ROOT)} is not built (make build-node)"
        return contender(node, str(script))
    if name == "go":
        binary = ROOT / ".build/go/test-worker"
        if not os.access(binary, os.X_OK):
            return f"{binary.relative_to(ROOT)} is not built (make build-go)"
        return contender(str(binary))
    return f"unknown worker {name!r} (known: {', '.join(WORKER_NAMES)})"


def available(
    workers: list[str],
    trio_workers: list[str],
    busy_workers: Sequence[str] = (),
    wait_workers: Sequence[str] = (),
) -> tuple[list[Contender], list[str]]:
    """The contenders of a run (baselines first), and a note for each one that was skipped.
    ``busy_workers``: also measured on asyncio with the data channel busy polling;
    ``wait_workers``: also with it waiting in the receive call (``receive_wait``).
    """
    contenders: list[Contender] = []
    notes: list[str] = []
    wanted: list[tuple[str, str, float, float]] = [(name, "asyncio", 0.0, 0.0) for name in workers]
    wanted += [(name, "trio", 0.0, 0.0) for name in trio_workers if name in workers]
    wanted += [(name, "asyncio", 0.0, RECEIVE_WAIT) for name in wait_workers if name in workers]
    wanted += [(name, "asyncio", BUSY_POLL, 0.0) for name in busy_workers if name in workers]
    found_workers = [
        (name, find_worker(name, backend, poll, wait)) for name, backend, poll, wait in wanted
    ]
    for label, found in [("", b) for b in baselines()] + found_workers:
        if isinstance(found, str):
            notes.append(f"{label} worker: {found}" if label else found)
        else:
            contenders.append(found)
    return contenders, notes
