"""The state of a :class:`~aspect_ipc.ProcessHandle` and the plumbing every part of it uses:
its settings, its life cycle state (:mod:`._lifecycle`), its events and its output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from . import _fork, _lifecycle
from ._child import ChildProcess
from ._events import Listeners
from ._loggers import library_logger
from ._logging import log_event, log_stderr_line
from ._stderr import CONTINUED, stray_pieces
from .channel import Channel, HandlerTable
from .errors import IpcError
from .options import (
    ControlChannelOptions,
    DataChannelOptions,
    EventKind,
    HealthCheck,
    ProcessEvent,
    RestartPolicy,
    WorkerState,
)

__all__ = ["HandleCore", "Settings", "SpawnSpec", "logger"]

logger = library_logger("aspect_ipc.manager")


class Settings(Protocol):
    """What a handle reads from its manager, when it needs it (the manager's live values)."""

    namespace: str
    request_timeout: float
    shutdown_grace: float


@dataclass(frozen=True)
class SpawnSpec:
    """Everything needed to (re)start one worker."""

    executable: str
    args: tuple[str, ...]
    cwd: str | None
    env: dict[str, str] | None
    control: ControlChannelOptions
    data: DataChannelOptions
    data_path: str | None
    startup_timeout: float
    restart_policy: RestartPolicy
    stderr_tail_lines: int
    remote_tracebacks: bool = True
    health: HealthCheck | None = None


class HandleCore:
    """The state shared by a handle's supervision, incarnations and calls."""

    id: str
    """The worker id given to ``spawn`` (also the worker's ``ASPECT_IPC_WORKER_ID``)."""
    pid: int | None
    """The process id of the current (or last) incarnation; None before the first start."""
    restarts: int
    """How many times the worker was restarted after a crash (``restart()`` does not count)."""
    exit_code: int | None
    """The last incarnation's exit code; None while it runs, or if a signal ended it."""
    signal: int | None
    """The signal number that ended the last incarnation, else None."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        spec: SpawnSpec,
        *,
        start_slots: anyio.Semaphore | None = None,
        listeners: Listeners | None = None,
        on_stopped: Callable[[Any], None] | None = None,
    ) -> None:
        """Made by the manager: ``settings`` are its live settings, ``start_slots`` limits
        concurrent start-ups, ``listeners`` are its event listeners (called after the handle's),
        ``on_stopped`` is told when the worker is stopped for good (not failed).
        """
        self.id = worker_id
        self.spec = spec
        self.pid = None
        self.exit_code = None
        self.signal = None
        self.restarts = 0
        self._restarts_in_a_row = 0  # when it failed for good: the restarts since the last reset
        self._settings = settings
        self._start_slots = start_slots
        self._manager_listeners = listeners
        self._on_stopped = on_stopped
        self._state = WorkerState.STARTING
        self._changed = anyio.Event()
        self._control: Channel | None = None
        self._data: Channel | None = None
        self._child: ChildProcess | None = None
        self._exited = anyio.Event()
        self._incarnation_done = anyio.Event()
        self._last_error: IpcError | None = None
        self._stop_requested = False
        self._stop_event = anyio.Event()
        self._stop_grace = settings.shutdown_grace
        self._restart_event = anyio.Event()  # restart(): end this incarnation gracefully
        self._restart_requested = False
        self._readies = 0  # incarnations that reached ready: restart() waits for the next
        self._backoff_scope: anyio.CancelScope | None = None
        self._startup_scope: anyio.CancelScope | None = None
        self._slot_wait: anyio.CancelScope | None = None
        self._holding_slot = False
        self._serving = False
        self._started = False  # spawn() has returned the handle
        self._done = anyio.Event()
        self._handlers = HandlerTable()
        self._listeners = Listeners()
        self.logger_name = f"aspect_ipc.worker.{worker_id}"
        """The logger of this worker's stderr lines (see the parent guide's Logging)."""
        self._log = library_logger(self.logger_name)
        self._generation = _fork.generation  # see _fork: a forked child must leave it alone

    def __repr__(self) -> str:
        return f"<ProcessHandle {self.id!r} pid={self.pid} state={self._state.value}>"

    # -- plumbing -----------------------------------------------------------------------------

    def _live(self, via: str) -> Channel | None:
        return self._control if via == "control" else self._data if via == "data" else None

    def _set_state(self, state: WorkerState) -> None:
        if self._stop_requested and state not in _lifecycle.ENDED:
            return  # a stop is final: nothing but its end changes the state any more
        if not _lifecycle.allowed(self._state, state):
            logger.debug(
                "worker %s: no move from %s to %s",
                self.id,
                self._state,
                state,
                extra={"worker_id": self.id},
            )
            return
        self._state = state
        if state in (WorkerState.RESTARTING, WorkerState.FAILED, WorkerState.STOPPED):
            self._incarnation_done.set()  # callers of the last incarnation see the verdict
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def _emit(self, kind: str, **fields: Any) -> None:
        event = ProcessEvent(EventKind(kind), self.id, pid=self.pid, **fields)
        log_event(event)
        self._listeners.emit(event, also=self._manager_listeners)

    def _stderr_line(self, line: str, continues: bool) -> None:
        # The log shows that a piece goes on; the event carries the worker's text alone, so
        # that the pieces join back into the line (info["continues"] says one follows).
        log_stderr_line(self._log, self.id, line + CONTINUED if continues else line)
        self._emit(
            "output", stream="stderr", line=line, info={"continues": True} if continues else {}
        )

    def _stray_output(self, frame: bytes | bytearray | memoryview | None, error: IpcError) -> bool:
        extra = {"worker_id": self.id}
        if frame is None:  # a line over the limit, skipped: nothing of it to show as output
            self._log.warning("worker %s: stdout: %s", self.id, error, extra=extra)
            return True
        # In pieces, as stderr lines are: a 1 MiB line was one record and one event.
        for piece, continues in stray_pieces(bytes(frame)):
            self._log.warning(
                "worker %s: stdout, not a protocol message (%s): %s",
                self.id,
                error,
                piece + CONTINUED if continues else piece,
                extra=extra,
            )
            info = {"continues": True} if continues else {}
            self._emit("output", stream="stdout", line=piece, info=info)
        return True
