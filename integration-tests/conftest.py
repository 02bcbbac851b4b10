"""Fixtures of the cross-language suite: every test runs once per worker language."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _procfs import children_of

ROOT = Path(__file__).resolve().parents[1]
WORKERS = {
    "python": [
        sys.executable,
        str(ROOT / "integration-tests/workers/python/worker.py"),
    ],
    "node": [
        shutil.which("node") or "node",
        str(ROOT / "integration-tests/workers/node/build/worker.js"),
    ],
    "go": [str(ROOT / ".build/go/test-worker")],
}
# Misbehaving peers, plain Python without the SDK (integration-tests/hostile/).
HOSTILE = ROOT / "integration-tests/hostile"


def pytest_configure(config: pytest.Config) -> None:
    # As in python/pyproject.toml: anything left unclosed fails the test that leaked it.
    config.addinivalue_line("filterwarnings", "error::ResourceWarning")
    config.addinivalue_line(
        "filterwarnings", "error::pytest.PytestUnraisableExceptionWarning"
    )


@pytest.fixture(params=["asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(WORKERS))
def language(request: pytest.FixtureRequest) -> str:
    command = WORKERS[request.param]
    if not os.path.exists(command[-1]):
        pytest.fail(
            f"the {request.param} test worker is not built ({command[-1]}): run make build"
        )
    return str(request.param)


@pytest.fixture
def worker(language: str) -> dict[str, Any]:
    command = WORKERS[language]
    return {"executable": command[0], "args": command[1:]}


@pytest.fixture
def spawned_token() -> Callable[[int], str | None]:
    """Returns ``read(pid)``: the ``ASPECT_IPC_TOKEN`` a process was started with, or None.

    ``/proc/<pid>/environ`` shows the environment a process was *started* with, whatever it
    removed since: a test can learn a worker's token the way any process of the same user can.
    """

    def read(pid: int) -> str | None:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for entry in f.read().split(b"\0"):
                name, _, value = entry.partition(b"=")
                if name == b"ASPECT_IPC_TOKEN":
                    return value.decode()
        return None

    return read


@pytest.fixture
def namespace() -> str:
    return f"it{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def hygiene(namespace: str) -> Iterator[None]:
    """After every test: no child process, no socket file of ours, no leaked descriptor."""
    fds = len(os.listdir("/proc/self/fd"))
    yield
    assert children_of(os.getpid()) == set(), "child processes left behind"
    assert not [p for p in os.listdir("/tmp") if p.startswith(namespace)], (
        "socket files left"
    )
    assert len(os.listdir("/proc/self/fd")) <= fds, "file descriptors leaked"
