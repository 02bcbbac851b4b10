"""What /proc says about processes: the suite's one reader of it."""

from __future__ import annotations

import os

__all__ = ["alive", "child_processes", "children_of", "stopped"]


def _stat_fields(pid: int | str) -> list[bytes] | None:
    # Fields after the command name, which may itself hold spaces and parentheses.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def child_processes(pid: int) -> tuple[set[int], set[int]]:
    """The children of ``pid``: (live, zombies)."""
    live: set[int] = set()
    zombies: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None and int(fields[1]) == pid:
                (zombies if fields[0] == b"Z" else live).add(int(entry))
    return live, zombies


def children_of(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    return child_processes(pid)[0]


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def stopped(pid: int) -> bool:
    """True once every thread of ``pid`` has stopped (SIGSTOP's state ``T``).

    ``kill(pid, SIGSTOP)`` returns before the threads stop: one running on another CPU runs
    on until it next enters the kernel, long enough to answer a request.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    states = [_stat_fields(f"{pid}/task/{tid}") for tid in threads]
    return bool(states) and all(s is not None and s[0] == b"T" for s in states)
