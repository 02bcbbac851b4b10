"""Helpers for tests that run real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

# An unpacked sdist carries the test worker beside tests/ (pyproject.toml); the repository, above.
ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "integration-tests").is_dir():
    ROOT = Path(__file__).resolve().parents[2]
PYTHON_WORKER = str(ROOT / "integration-tests" / "workers" / "python" / "worker.py")


def namespace() -> str:
    """A namespace no other test (or parallel run) uses: socket paths stay unique and short."""
    return f"t{uuid.uuid4().hex[:10]}"


def python_worker() -> dict[str, object]:
    return {"executable": sys.executable, "args": [PYTHON_WORKER]}


def run_parent(script: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a parent program's source) in a Python process of its own, its
    arguments the Python test worker's path, a fresh namespace, then ``extra``: for what would
    end or disturb the test run (signals, fork, the loop's last clean-up). A hang fails."""
    return subprocess.run(
        [sys.executable, "-c", script, PYTHON_WORKER, namespace(), *extra],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def child_pids() -> set[int]:
    """Live (non-zombie) processes whose parent is this process."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != b"Z":
            pids.add(int(entry))
    return pids


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
