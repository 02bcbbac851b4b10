"""Running the parent from a frozen (PyInstaller) binary.

A frozen parent differs from ``python parent.py`` in three ways that reach its workers:

- ``sys.executable`` is the binary itself, not a Python interpreter;
- the bootloader points ``LD_LIBRARY_PATH`` at the libraries it unpacked and sets ``_PYI_*``
  variables: a worker inheriting them can load the bundle's libssl instead of the system's, or (a
  frozen worker) take itself for part of the parent's bundle;
- a onefile binary runs as two processes, the bootloader and the Python process under it. A
  SIGKILL reaches only the bootloader, leaving the Python process, and so the workers, running.

:func:`child_environment` undoes the second for every worker the manager spawns;
:func:`freeze_support` handles the third and multiprocessing's re-exec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Mapping

__all__ = ["child_environment", "freeze_support", "is_frozen"]

_PR_SET_PDEATHSIG = 1
_BOOTLOADER_PREFIXES = ("_PYI_", "_MEIPASS")


def is_frozen() -> bool:
    """True when this process runs from a PyInstaller (or similar) frozen binary."""
    return bool(getattr(sys, "frozen", False))


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` as the user's shell had it, before a frozen binary's bootloader changed it.

    Unfrozen, it is returned unchanged (as a copy).
    """
    env = dict(environ)
    if not is_frozen():
        return env
    for name in list(env):
        if name.startswith(_BOOTLOADER_PREFIXES):
            del env[name]
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        env["LD_LIBRARY_PATH"] = original
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def freeze_support() -> None:
    """Call first thing in a frozen parent's entry point; a no-op when not frozen.

    It runs :func:`multiprocessing.freeze_support` (a frozen binary that uses multiprocessing is
    re-executed for each child process, and this is what turns that re-execution into the
    child), and, in a onefile binary on Linux, asks the kernel to send this process SIGTERM
    when the bootloader above it dies, so that a SIGKILL of the binary still ends the parent
    and, through their stdin closing, its workers.
    """
    if not is_frozen():
        return
    import multiprocessing  # only frozen parents pay for these imports

    multiprocessing.freeze_support()
    if sys.platform.startswith("linux") and _under_onefile_bootloader():
        _die_with_parent(signal.SIGTERM)


def _under_onefile_bootloader() -> bool:
    # The onefile bootloader runs the same executable as its Python child.
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{os.getppid()}/exe") == os.readlink("/proc/self/exe")
    return False


def _die_with_parent(signum: int) -> None:
    import ctypes

    bootloader = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        return
    # The bootloader may have died before prctl took effect: then no signal will ever come.
    if os.getppid() != bootloader:
        os.kill(os.getpid(), signum)
