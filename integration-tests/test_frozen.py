"""The frozen parent (`make dist`): the demo, run where aspect_ipc cannot be imported.

The binary runs from an empty working directory with a bare environment (no virtualenv on PATH,
no PYTHONPATH), so everything it imports comes out of its own bundle. Workers are found through
``--root``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _procfs import alive, children_of
from conftest import ROOT

FROZEN = ROOT / ".build/dist/aspect-ipc-demo"
PARENT = ROOT / "examples/dual-channel/parent.py"
MARKER_LIBRARY_PATH = "/opt/aspect-ipc-test/lib"

HOLDING_WORKER = """\
import anyio
from aspect_ipc.worker import Worker

worker = Worker()


@worker.control("getStatus")
async def get_status(params):
    await anyio.sleep_forever()


worker.run()
"""


@pytest.fixture(scope="module")
def frozen() -> Path:
    if not FROZEN.exists():
        pytest.fail(f"the frozen parent is not built ({FROZEN}): run make dist")
    return FROZEN


@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Short and private: the data socket's path must stay under 107 bytes.
    path = tempfile.mkdtemp(prefix="fz", dir="/tmp")
    yield path
    assert os.listdir(path) == [], "socket files left"
    os.rmdir(path)


def bare_environment(home: str) -> dict[str, str]:
    path = [p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p]
    # The onefile binary unpacks itself under TMPDIR, and a SIGKILLed one leaves that (18 MB)
    # behind (PyInstaller's behaviour, docs/frozen.md): in the test's own directory, not /tmp.
    unpack = os.path.join(home, "unpack")
    os.makedirs(unpack, exist_ok=True)
    return {
        "PATH": os.pathsep.join(path),
        "HOME": home,
        "TMPDIR": unpack,
        "LD_LIBRARY_PATH": MARKER_LIBRARY_PATH,
    }


def worker_options(language: str) -> list[str]:
    # Frozen, sys.executable is the binary: the Python worker needs an interpreter named.
    return ["--worker", language] + (
        ["--python", sys.executable] if language == "python" else []
    )


def normalised(output: str) -> list[str]:
    return re.sub(r"'uptime': \d+", "'uptime': N", output).splitlines()


def test_frozen_parent_prints_the_same_flow_as_the_script(
    frozen: Path, language: str, socket_dir: str, tmp_path: Path
) -> None:
    options = [
        *worker_options(language),
        "--root",
        str(ROOT),
        "--socket-dir",
        socket_dir,
    ]
    env = bare_environment(str(tmp_path))
    script = subprocess.run(
        [sys.executable, str(PARENT), *options],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PATH": os.environ["PATH"]},
    )
    assert script.returncode == 0, script.stderr
    binary = subprocess.run(
        [str(frozen), *options],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert binary.returncode == 0, binary.stderr
    # The parent's lines in their order, and the worker's (its stderr, forwarded) in theirs: the
    # two come through different pipes, and nothing orders them against each other (spec 4.6).
    # A run on a loaded machine printed "Worker: Processing 100x100 matrix..." after the result.
    for side in (True, False):
        got = [
            line
            for line in normalised(binary.stdout)
            if line.startswith("Worker:") is side
        ]
        want = [
            line
            for line in normalised(script.stdout)
            if line.startswith("Worker:") is side
        ]
        assert got == want
    assert "Parent: Data channel result: {'processed': 1000, 'sum': " in binary.stdout
    assert binary.stdout.splitlines()[-1] == "Parent: Done"


def test_the_frozen_binary_starts_with_an_empty_environment(frozen: Path) -> None:
    # No PATH, no HOME, no PYTHONHOME: all it needs is inside the binary.
    output = subprocess.run(
        [str(frozen), "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={},
    )
    assert output.returncode == 0
    assert "--worker {python,node,go}" in output.stdout


def _wait_until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after 10 s: {what}")
        time.sleep(0.02)


def test_sigkill_of_the_onefile_binary_ends_its_python_and_its_worker(
    frozen: Path, socket_dir: str, tmp_path: Path
) -> None:
    # A onefile binary is two processes: the bootloader and the Python program under it. The
    # kill reaches only the bootloader; freeze_support() must bring the rest down with it.
    root = tmp_path / "root"
    (root / "examples/dual-channel").mkdir(parents=True)
    (root / "examples/dual-channel/worker.py").write_text(HOLDING_WORKER)
    binary = subprocess.Popen(
        [
            str(frozen),
            *worker_options("python"),
            "--root",
            str(root),
            "--socket-dir",
            socket_dir,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=bare_environment(str(tmp_path)),
    )
    try:
        assert binary.stdout is not None
        for line in binary.stdout:
            if line.startswith("Parent: Status") or line == "Parent: Done\n":
                pytest.fail(f"the holding worker answered: {line}")
            if line.startswith("=== Control Channel"):
                break
        [program] = children_of(binary.pid)
        [worker] = children_of(program)
        with open(f"/proc/{worker}/environ", "rb") as f:
            environ = dict(
                item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item
            )
        # What the bootloader did to the environment is undone for the worker.
        assert not [k for k in environ if k.startswith((b"_PYI_", b"_MEIPASS"))]
        assert environ[b"LD_LIBRARY_PATH"] == MARKER_LIBRARY_PATH.encode()
        assert b"LD_LIBRARY_PATH_ORIG" not in environ
        os.kill(binary.pid, signal.SIGKILL)
        binary.wait(timeout=10)
        _wait_until(lambda: not alive(program), "the frozen parent's Python process")
        _wait_until(lambda: not alive(worker), "its worker")
        _wait_until(lambda: os.listdir(socket_dir) == [], "the worker's socket file")
    finally:
        if binary.poll() is None:
            binary.kill()
            binary.wait()
        if binary.stdout is not None:
            binary.stdout.close()
