"""What /proc says about processes: the suite's one reader of it."""

from __future__ import annotations

import os

__all__ = ["alive", "children_of", "rss_kib"]


def _stat_fields(pid: int | str) -> list[bytes] | None:
    # Fields after the command name, which may itself hold spaces and parentheses.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def children_of(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None and int(fields[1]) == pid and fields[0] != b"Z":
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def rss_kib(pid: int | str = "self") -> int:
    """The resident set size of ``pid`` (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise LookupError(f"no VmRSS for process {pid}")
