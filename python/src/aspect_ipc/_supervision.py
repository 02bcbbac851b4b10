"""A worker's supervision: its incarnations one after the other, the restart policy between
them, and the events and states that say so (the loop is the handle's supervisor task)."""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from ._incarnation import Incarnations
from ._outcome import Outcome
from .errors import IpcError, StartupError, WorkerHung
from .options import WorkerState

__all__ = ["Supervision"]


class Supervision(Incarnations):
    """The supervisor task of a :class:`ProcessHandle` (see the module)."""

    async def _supervise(self, *, task_status: TaskStatus[None]) -> None:
        policy = self.spec.restart_policy
        status: TaskStatus[None] | None = task_status
        attempts = 0
        try:
            while not self._stop_requested:
                self._set_state(WorkerState.STARTING)
                try:
                    outcome = await self._incarnation(status)
                except IpcError as exc:
                    if status is not None and not self._stop_requested:
                        raise  # the first start fails spawn() itself
                    if not self._stop_requested:
                        self._log.warning("restart failed: %s", exc, extra={"worker_id": self.id})
                    self._last_error = exc
                    outcome = Outcome(self.exit_code, self.signal, True, 0.0, exc)
                if self._stop_requested:
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                    break
                status = None
                if self._restart_requested:  # restart(): at once, and not a crash
                    self._restart_requested = False
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                    self._emit("restart", delay=0.0, info={"requested": True})
                    continue
                if not outcome.crashed:
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                    break
                self._emit(
                    "crash",
                    exit_code=outcome.exit_code,
                    signal=outcome.signal,
                    error=outcome.error,
                    info={"hung": True} if isinstance(outcome.error, WorkerHung) else {},
                )
                if outcome.uptime >= policy.reset_after:
                    attempts = 0
                if not policy.enabled or attempts >= policy.max_restarts:
                    self._restarts_in_a_row = attempts
                    self._set_state(WorkerState.FAILED)
                    self._emit("failed", error=outcome.error)
                    return
                attempts += 1
                self.restarts += 1
                delay = policy.delay(attempts)
                self._set_state(WorkerState.RESTARTING)
                self._emit("restart", attempt=attempts, delay=delay)
                with anyio.CancelScope() as self._backoff_scope:
                    if not self._stop_requested:
                        await anyio.sleep(delay)
                self._backoff_scope = None
            if not self._started:  # stopped before the first start completed
                raise StartupError(
                    f"worker {self.id} was stopped during its start-up (stop() was called, or "
                    "the manager closed)"
                )
        except Exception as exc:
            if status is not None or isinstance(exc, IpcError):
                raise  # the first start's failure: spawn() raises it
            # A bug in this worker's supervision gives up on this worker, not on the manager
            # and its other workers (an exception here would end the manager's task group).
            self._log.exception(
                "worker %s: its supervisor failed (a bug in aspect-ipc: please report it)",
                self.id,
                extra={"worker_id": self.id},
            )
            self._last_error = IpcError(f"worker {self.id}: its supervisor failed: {exc!r}")
            self._set_state(WorkerState.FAILED)
            self._emit("failed", error=self._last_error)
        finally:
            if self._state not in (WorkerState.STOPPED, WorkerState.FAILED):
                self._set_state(WorkerState.STOPPED)
                if self._started:
                    self._emit("stop", info={"requested": self._stop_requested})
            self._done.set()
            if self._state is WorkerState.STOPPED and self._on_stopped is not None:
                self._on_stopped(self)
