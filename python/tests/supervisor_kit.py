"""Tools of the supervisor tests (test_supervisor_*.py): what this process holds, in /proc."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from workers import PYTHON_WORKER


def children() -> tuple[set[int], set[int]]:
    """This process's children: (live, zombies)."""
    live: set[int] = set()
    zombies: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            (zombies if fields[0] == b"Z" else live).add(int(entry))
    return live, zombies


def open_fds() -> dict[int, str]:
    """This process's descriptors and what they point to (pipes, sockets, pidfds...)."""
    fds = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            fds[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
    return fds


def socket_files(namespace: str, directory: str = "/tmp") -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(namespace)]


def rss_peak_kib() -> int:
    """This process's peak resident set size (VmHWM), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_rss_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def launcher(tmp_path: Path, name: str, shell: str) -> dict[str, object]:
    """Spawn arguments for ``sh -c <shell>``, which ends by exec'ing the Python test worker.

    ``exec`` keeps the pid, so the worker is still the spawned process (spec 7.5).
    """
    script = tmp_path / f"{name}.sh"
    body = textwrap.dedent(shell).strip()
    script.write_text(f"{body}\nexec {sys.executable} {PYTHON_WORKER}\n")
    return {"executable": "/bin/sh", "args": [str(script)]}


def starts_once(tmp_path: Path, name: str, then: str = "") -> dict[str, object]:
    """A :func:`launcher` whose first run starts the worker (after ``then``, shell) and every
    later run writes ``exiting early`` to stderr and exits 3 before ``$/ready``: a restart
    that fails."""
    mark = tmp_path / f"{name}-started-once"
    return launcher(
        tmp_path,
        name,
        f"if [ -e {mark} ]; then echo 'exiting early' >&2; exit 3; fi\ntouch {mark}\n"
        + textwrap.dedent(then).strip(),
    )
