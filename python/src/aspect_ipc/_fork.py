"""Which process owns the library's objects: those made before a ``fork()`` belong to the
parent, and in the child they must not touch its workers, sockets or event loop.

A forked child inherits the parent's descriptors, the workers' process groups and the event
loop's epoll instance: shared, not copied, so a descriptor the child removes from it is gone
for the parent too, and the child's loop would read the parent's sockets. A child that left
``async with ProcessManager`` (``sys.exit()`` in it: ``asyncio.run`` then cancels every task and
runs the loop to let them end) used to stop the parent's workers and take their descriptors out
of the parent's epoll set, and the parent hung. Now:

- in each child, ``generation`` changes (``os.register_at_fork``), and the library's objects,
  which record it when made, leave the parent's things alone: leaving a manager's block does
  nothing, and using one raises :func:`forked_error`;
- the child's copy of every asyncio loop a manager runs on gets an epoll instance of its own
  (empty): whatever the child's loop does from then on, it does not touch the parent's.

Checking is one integer comparison.
"""

from __future__ import annotations

import asyncio
import os
import select
import weakref

__all__ = ["forked_error", "generation", "watch_loop"]

generation = 0
"""Bumped in every child right after ``fork()``: an object that recorded another value was
made by an ancestor process."""

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def watch_loop(loop: asyncio.AbstractEventLoop) -> None:
    """``loop`` runs a manager: a forked child's copy of it gets an epoll set of its own."""
    _loops.add(loop)


def _after_fork_in_child() -> None:
    global generation
    generation += 1
    for loop in list(_loops):
        _own_epoll(loop)


def _own_epoll(loop: asyncio.AbstractEventLoop) -> None:
    # asyncio's selector loop keeps a selectors.EpollSelector, whose select.epoll is the shared
    # instance (uvloop and others have none we can see: left as they are).
    selector = getattr(loop, "_selector", None)
    inherited = getattr(selector, "_selector", None)
    if not isinstance(inherited, select.epoll):
        return
    try:
        selector._selector = select.epoll()  # type: ignore[union-attr]
    except OSError:
        return
    inherited.close()  # the child's descriptor of the parent's instance, not the instance


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_error(what: str) -> RuntimeError:
    """The error of using, in a forked child, ``what`` made by the parent."""
    return RuntimeError(
        f"{what} belongs to the process that created it, not to this forked child (pid "
        f"{os.getpid()}): its workers, sockets and event loop are the parent's. Create a new "
        "ProcessManager in the child, or end the child with os._exit() or exec()"
    )
