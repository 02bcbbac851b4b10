"""The manager's workers by id: who holds an id and a data path, and what the gone ones leave."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._loggers import release_logger
from .errors import WorkerIdInUse
from .metrics import ManagerStats, WorkerStats, retire

if TYPE_CHECKING:
    from .handle import ProcessHandle

__all__ = ["WorkerRegistry"]

_ENDED = ("stopped", "failed")


class WorkerRegistry:
    """The workers of one manager, by id. A worker stopped for good leaves (its counters stay
    in the totals); a failed one stays, for its verdict, until its id is spawned again."""

    def __init__(self) -> None:
        self.handles: dict[str, ProcessHandle] = {}
        self._retired: WorkerStats | None = None  # the counters of workers dropped (forget)
        self._held_loggers: set[str] = set()  # gone workers' loggers a child logger holds

    def claim(self, worker_id: str, data_path: str | None) -> None:
        """Check that ``worker_id`` and ``data_path`` are free for a new worker (WorkerIdInUse
        if a live worker has either); an ended worker of that id is dropped."""
        existing = self.handles.get(worker_id)
        if existing is not None and existing.state.value not in _ENDED:
            raise WorkerIdInUse(
                f"worker id {worker_id!r} is already in use (state "
                f"{existing.state.value}); stop it first or pick another id"
            )
        if data_path is not None:
            taken = {h.spec.data_path for h in self.handles.values() if h.state.value not in _ENDED}
            if data_path in taken:
                raise WorkerIdInUse(f"data path {data_path} is already used by another worker")
        if existing is not None:  # its counters stay in the totals, which never go down
            self.forget(existing)

    def add(self, handle: ProcessHandle) -> None:
        """``handle`` is starting: it has its id from now on."""
        self.handles[handle.id] = handle

    def discard(self, handle: ProcessHandle) -> None:
        """``handle`` never started (its spawn failed or was cancelled): nothing of it stays."""
        if self.handles.get(handle.id) is handle:
            del self.handles[handle.id]
        self.release_logger(handle.logger_name)

    def forget(self, handle: ProcessHandle) -> None:
        """Drop ``handle``, stopped for good (a pool's recycled or removed worker), so that a
        long-lived pool does not keep every worker it ever had; its counters stay in the
        totals of :meth:`stats`."""
        if self.handles.get(handle.id) is handle and handle.state.value in _ENDED:
            del self.handles[handle.id]
            self._retired = retire(self._retired, handle.stats())
            self.release_logger(handle.logger_name)

    def release_logger(self, name: str) -> None:
        """Drop a gone worker's logger (see release_logger); one a dotted child holds is tried
        again as each later one goes, children first."""
        self._held_loggers.add(name)
        for held in sorted(self._held_loggers, key=lambda n: -n.count(".")):
            if release_logger(held):
                self._held_loggers.discard(held)

    def stats(self) -> ManagerStats:
        """Every worker's stats by id, and the totals (the dropped ones' included)."""
        workers = {worker_id: h.stats() for worker_id, h in self.handles.items()}
        return ManagerStats.of(workers, self._retired)
