"""ProcessHandle: one supervised worker, across its restarts.

Theory of operation: a supervisor task (in the manager's task group) runs *incarnations* one after
another. An incarnation starts the process (:mod:`._child`), runs the handshake of spec section 7
(:mod:`._startup`), serves both channels until the process exits or a channel breaks, then fails
whatever is pending with ``WorkerCrashed`` (or ``ChannelClosed`` after a clean exit) and reports
the outcome. The supervisor then stops, gives up, or restarts after the policy's backoff. Callers
hold the handle, not a process: a request made while the worker is (re)starting waits for it to
be running, within the request's timeout.

A stop is a request to the supervisor, final at every moment of the life cycle: it cancels a
backoff, prevents the next incarnation, and a *stopper* task inside the current incarnation
escalates (``$/shutdown`` when the worker is serving, then SIGTERM, then SIGKILL to its process
group) while the incarnation goes on to its end as usual. Every incarnation, however it ends
(an error, a cancelled ``spawn()``, a stop), kills what is left of the process group, waits for
the exit, removes a stale socket file, reaps the process and closes every descriptor, shielded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal as signals
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from . import _process
from ._calls import annotated, check_grace, check_timeout
from ._child import ChildProcess
from ._outcome import Outcome, outcome_of, split, with_tail
from ._startup import Startup, handshake
from ._stderr import CONTINUED, StderrPump
from .channel import Channel, Handler, HandlerTable
from .constants import METHOD_READY, METHOD_SHUTDOWN
from .errors import (
    ChannelClosed,
    ExecutableNotFound,
    IpcError,
    RemoteError,
    RequestTimeout,
    StartupError,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerUnavailable,
    fresh,
)
from .framing import LineDelimitedFraming
from .options import (
    ControlChannelOptions,
    DataChannelOptions,
    ProcessEvent,
    RestartPolicy,
    WorkerState,
)
from .transports import FdTransport, remove_stale_socket

if TYPE_CHECKING:
    from .manager import ProcessManager

__all__ = ["ProcessHandle", "SpawnSpec"]

logger = logging.getLogger("aspect_ipc.manager")

_KILL_WAIT = 5.0  # after SIGKILL, seconds to wait for the exit before reaping in a thread
TERM_WAIT = 1.0
"""Seconds between SIGTERM and SIGKILL once a serving worker's grace period is spent."""
# A start-up slot (ProcessManager's max_concurrent_starts) is given back when the handshake
# ends, or after this long: a worker that waits for something must not hold up the others.
_SLOT_HOLD = 2.0


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


class ProcessHandle:
    """A worker under supervision. Obtained from :meth:`ProcessManager.spawn`."""

    def __init__(self, manager: ProcessManager, worker_id: str, spec: SpawnSpec) -> None:
        self.id = worker_id
        self.spec = spec
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.restarts = 0
        self._manager = manager
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
        self._stop_grace = manager.shutdown_grace
        self._backoff_scope: anyio.CancelScope | None = None
        self._startup_scope: anyio.CancelScope | None = None
        self._slot_wait: anyio.CancelScope | None = None
        self._holding_slot = False
        self._serving = False
        self._started = False  # spawn() has returned the handle
        self._done = anyio.Event()
        self._handlers = HandlerTable()
        self._listeners: dict[str, list[Callable[[ProcessEvent], Any]]] = {}
        self._log = logging.getLogger(f"aspect_ipc.worker.{worker_id}")

    def __repr__(self) -> str:
        return f"<ProcessHandle {self.id!r} pid={self.pid} state={self._state.value}>"

    # -- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
        """starting, running, stopping, stopped, restarting or failed."""
        return self._state

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call ``method`` on the control channel (JSON over stdio) and return the result.

        A request made while the worker is starting or restarting waits until it runs, within
        ``timeout`` (default: the manager's ``request_timeout``; ``math.inf``: no limit).

        Raises:
            ValueError: ``timeout`` is not a positive number of seconds.
            RemoteError: the worker answered with an error (its text names the worker, the
                channel and the method).
            RequestTimeout: no answer within ``timeout`` (the worker is sent ``$/cancelRequest``).
            WorkerCrashed: the worker died while the request was pending.
            WorkerUnavailable: the worker is stopped, or failed for good (the message says why).
        """
        return await self._call("control", method, params, timeout)

    async def request_via_data(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Like :meth:`request`, on the data channel (MessagePack over the socket)."""
        return await self._call("data", method, params, timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification on the control channel."""
        await (await self._channel_when_running("control")).notify(method, params)

    async def notify_via_data(self, method: str, params: Any = None) -> None:
        """Send a notification on the data channel."""
        await (await self._channel_when_running("data")).notify(method, params)

    def on_request(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Answer requests the worker sends on ``via`` (``"control"`` or ``"data"``)."""
        self._handlers.add(via, method, handler, notification=False, live=self._live(via))

    def on_notification(self, method: str, handler: Handler, *, via: str = "control") -> None:
        """Handle notifications the worker sends on ``via`` (``"control"`` or ``"data"``)."""
        self._handlers.add(via, method, handler, notification=True, live=self._live(via))

    def on(self, kind: str, callback: Callable[[ProcessEvent], Any]) -> None:
        """Call ``callback(event)`` for this worker's events of ``kind`` (see ProcessEvent)."""
        self._listeners.setdefault(kind, []).append(callback)

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop the worker for good, whatever it is doing, and wait until it is stopped.

        A serving worker is sent ``$/shutdown`` and given ``grace`` seconds (default: the
        manager's ``shutdown_grace``) to exit, then SIGTERM and at most ``TERM_WAIT`` (1 s)
        more, then SIGKILL, to its whole process group (spec 8.2). A worker that is starting or
        restarting gets SIGTERM at once, then SIGKILL after ``grace``; a pending restart is
        cancelled. Either way ``stop()`` returns within ``grace`` + 1 s + the time a SIGKILL
        takes. No restart follows a stop. Cancelling the caller does not cancel the stop.

        Raises:
            ValueError: ``grace`` is negative or not a number.
        """
        check_grace("grace", grace)
        if not self._stop_requested and not self._done.is_set():
            self._stop_grace = self._manager.shutdown_grace if grace is None else grace
            self._set_state(WorkerState.STOPPING)
            self._stop_requested = True
            self._stop_event.set()
            for scope in (self._backoff_scope, self._slot_wait):
                if scope is not None:
                    scope.cancel()
        await self._done.wait()

    async def wait(self) -> int | None:
        """Wait until the worker is stopped or failed for good; return its last exit code."""
        await self._done.wait()
        return self.exit_code

    # -- supervision --------------------------------------------------------------------------

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
                        self._log.warning("restart failed: %s", exc)
                    self._last_error = exc
                    outcome = Outcome(self.exit_code, self.signal, True, 0.0, exc)
                if self._stop_requested:
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                    break
                status = None
                if not outcome.crashed:
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                    break
                self._emit(
                    "crash", exit_code=outcome.exit_code, signal=outcome.signal, error=outcome.error
                )
                if outcome.uptime >= policy.reset_after:
                    attempts = 0
                if not policy.enabled or attempts >= policy.max_restarts:
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
        finally:
            if self._state not in (WorkerState.STOPPED, WorkerState.FAILED):
                self._set_state(WorkerState.STOPPED)
            self._done.set()

    async def _incarnation(self, status: TaskStatus[None] | None) -> Outcome:
        spec = self.spec
        self.exit_code = self.signal = None
        self._serving = False
        token = _process.new_token() if spec.data_path else None
        env = _process.build_env(
            namespace=self._manager.namespace,
            worker_id=self.id,
            user_env=spec.env,
            data_path=spec.data_path,
            token=token,
            max_frame_size=spec.data.max_frame_size,
            max_line_length=spec.control.max_line_length,
        )
        executable = _process.resolve_executable(spec.executable, env, spec.cwd)
        if spec.data_path:
            await _process.check_data_path_free(spec.data_path)
        fds: list[int] = []  # descriptors owned here until a transport takes them
        child: ChildProcess | None = None
        transports: list[FdTransport] = []
        stderr: StderrPump | None = None
        failure: IpcError | None = None
        outcome: Outcome | None = None
        try:
            try:
                for _ in range(3):  # stdin, stdout, stderr
                    fds.extend(os.pipe())
                stdin_held = os.dup(fds[1])
                fds.append(stdin_held)
            except OSError as exc:
                raise _process.startup_os_error(f"cannot start worker {self.id}", exc) from exc
            if not await self._take_start_slot():
                raise StartupError(f"worker {self.id} was stopped during its start-up")
            child = await self._start(executable, fds, env)
            for fd in (fds[0], fds[3], fds[5]):  # the child's ends
                fds.remove(fd)
                os.close(fd)
            # The control channel writes to a duplicate of the worker's stdin: when it closes
            # (the worker closed its stdout), the worker does not see EOF until its incarnation
            # is over, so a worker that lives on without its control channel is seen as broken
            # (spec 8.5), not told to exit cleanly by us.
            stdin_write, stdout_read, stderr_read = fds[:3]
            control_transport = FdTransport(
                stdout_read, stdin_write, name=f"worker {self.id} stdio"
            )
            stderr_transport = FdTransport(stderr_read, None, name=f"worker {self.id} stderr")
            transports += [control_transport, stderr_transport]
            del fds[:3]  # the transports own them now
            self._child, self.pid, self._exited = child, child.pid, child.exited
            self._incarnation_done = anyio.Event()
            self._emit("spawn")
            stderr = StderrPump(stderr_transport, self._stderr_line, spec.stderr_tail_lines)
            failure, outcome = await self._run(status, child, control_transport, stderr, token)
        finally:
            with anyio.CancelScope(shield=True):
                await self._end(child, stderr, transports, fds)
        if failure is not None:
            assert stderr is not None and child is not None
            self._last_error = WorkerUnavailable(str(failure))
            raise with_tail(failure, stderr, child.returncode) from None
        assert outcome is not None
        return outcome

    async def _start(self, executable: str, fds: list[int], env: dict[str, str]) -> ChildProcess:
        try:
            return await ChildProcess.start(
                [executable, *self.spec.args],
                stdin=fds[0],
                stdout=fds[3],
                stderr=fds[5],
                cwd=self.spec.cwd,
                env=env,
            )
        except ValueError as exc:  # a NUL byte in an argument or the environment
            raise ValueError(f"cannot start {executable}: {exc}") from None
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError):
                raise ExecutableNotFound(f"cannot start {executable}: {exc.strerror}") from exc
            raise _process.startup_os_error(f"cannot start {executable}", exc) from exc

    async def _run(
        self,
        status: TaskStatus[None] | None,
        child: ChildProcess,
        control_transport: FdTransport,
        stderr: StderrPump,
        token: str | None,
    ) -> tuple[IpcError | None, Outcome | None]:
        """The incarnation's life: its tasks, the handshake, then serving until the end."""
        spec = self.spec
        control = Channel(
            control_transport,
            LineDelimitedFraming(spec.control.max_line_length),
            spec.control.serialization,
            name=f"worker {self.id} control channel",
        )
        control.bad_input_hook = self._stray_output
        startup = Startup(
            self.id,
            child.pid,
            spec.data_path,
            spec.data,
            spec.startup_timeout,
            token,
            self._handlers,
            anyio.Event(),
            {},
        )

        def on_ready(params: Any) -> None:
            startup.ready_params.update(params if isinstance(params, dict) else {})
            startup.ready.set()

        control._on_reserved_notification(METHOD_READY, on_ready)
        self._handlers.install(control, "control")
        started = anyio.current_time()
        failure: IpcError | None = None
        outcome: Outcome | None = None
        self._startup_scope = anyio.CancelScope()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(stderr.run)
            task_group.start_soon(self._watch, child)
            task_group.start_soon(self._stopper, child, control)
            task_group.start_soon(self._give_back_start_slot_later)
            async with control:
                self._control = control
                data: Channel | None = None
                try:
                    with self._startup_scope:
                        data = await handshake(startup, task_group)
                    if self._startup_scope.cancelled_caught:
                        raise WorkerExitedDuringStartup(
                            f"worker {self.id} exited during start-up", exit_code=None, signal=None
                        )
                except IpcError as exc:
                    failure = exc
                else:
                    self._give_back_start_slot()
                    outcome = await self._serve(status, control, data, startup, stderr, started)
                finally:
                    self._control = self._data = None
            task_group.cancel_scope.cancel()
        return failure, outcome

    async def _take_start_slot(self) -> bool:
        """Wait for a start-up slot of the manager; False if a stop came first."""
        slots = self._manager._start_slots
        with anyio.CancelScope() as self._slot_wait:
            if not self._stop_requested:
                if slots is not None:
                    await slots.acquire()
                    self._holding_slot = True
                return True
        self._slot_wait = None
        return False

    def _give_back_start_slot(self) -> None:
        self._slot_wait = None
        if self._holding_slot:
            self._holding_slot = False
            assert self._manager._start_slots is not None
            self._manager._start_slots.release()

    async def _give_back_start_slot_later(self) -> None:
        await anyio.sleep(_SLOT_HOLD)
        self._give_back_start_slot()

    async def _watch(self, child: ChildProcess) -> None:
        await child.watch()
        if self._startup_scope is not None:
            self._startup_scope.cancel()  # a worker that died during its start-up: say so now

    async def _stopper(self, child: ChildProcess, control: Channel) -> None:
        """Once a stop is requested: the escalation of spec 8.2, on this incarnation."""
        await self._stop_event.wait()
        grace = self._stop_grace
        if self._serving and not control.closed and not child.exited.is_set():
            with anyio.move_on_after(grace):
                with contextlib.suppress(IpcError):
                    await control.request(METHOD_SHUTDOWN, {"timeout": grace * 0.8}, timeout=grace)
                await child.exited.wait()
            # The grace period is spent: SIGTERM is the last courtesy, not a second grace period
            # (SDK workers exit within 200 ms of it, spec 8.4), so the stop stays bounded.
            grace = min(grace, TERM_WAIT)
        for sig in (signals.SIGTERM, signals.SIGKILL):
            if child.exited.is_set():
                return
            child.signal_group(sig)
            with anyio.move_on_after(grace if sig == signals.SIGTERM else math.inf):
                await child.exited.wait()

    async def _end(
        self,
        child: ChildProcess | None,
        stderr: StderrPump | None,
        transports: list[FdTransport],
        fds: list[int],
    ) -> None:
        """Leave nothing behind: the group killed, the exit awaited, the socket file, the reap."""
        self._startup_scope = None
        self._give_back_start_slot()
        if child is not None:
            child.signal_group(signals.SIGKILL)  # stragglers in its group, or the worker itself
            with anyio.move_on_after(_KILL_WAIT):
                await child.watch()
            if self.spec.data_path and child.exited.is_set():
                with contextlib.suppress(IpcError):
                    await remove_stale_socket(self.spec.data_path)  # a crashed worker's leftover
            child.reap()
            if child.returncode is not None:
                self.exit_code, self.signal = split(child.returncode)
        if stderr is not None:
            stderr.drain_now()
        for transport in transports:
            await transport.aclose()
        for fd in fds:
            os.close(fd)

    async def _serve(
        self,
        status: TaskStatus[None] | None,
        control: Channel,
        data: Channel | None,
        startup: Startup,
        stderr: StderrPump,
        started: float,
    ) -> Outcome:
        """Run a ready worker until it exits or a channel breaks; return what happened."""
        exited = self._exited
        self._data = data
        self._serving = True
        stderr.drain_now()  # lines written before $/hello was answered come first
        if not self._stop_requested:
            self._set_state(WorkerState.RUNNING)
            self._emit("ready", info=dict(startup.ready_params))
            if status is not None:
                status.started()
                self._started = True
        waits = [exited.wait, control.wait_closed]
        if data is not None:
            waits.append(data.wait_closed)
        await _first_of(*waits)
        cause: str | None = None
        if not exited.is_set() and not self._stop_requested:
            # A channel closed first. A worker shutting itself down closes its channels just
            # before it exits: give it the grace period; one still alive after it is broken.
            with anyio.move_on_after(self._manager.shutdown_grace):
                await exited.wait()
            if not exited.is_set():
                closed = control if control.closed else data
                cause = str(closed.close_reason) if closed is not None else None
                assert self._child is not None
                self._child.signal_group(signals.SIGKILL)
        await exited.wait()
        with anyio.move_on_after(0.5):  # the worker's last words precede the verdict
            await stderr.wait_closed()
        assert self._child is not None and self._child.returncode is not None
        outcome = outcome_of(
            self.id,
            self._child.returncode,
            anyio.current_time() - started,
            stderr,
            cause,
            stopped=self._stop_requested,
        )
        self.exit_code, self.signal = outcome.exit_code, outcome.signal
        self._last_error = outcome.error
        for channel in (control, data):
            if channel is not None:
                channel.close(outcome.error)
        return outcome

    # -- calls --------------------------------------------------------------------------------

    async def _call(self, via: str, method: str, params: Any, timeout: float | None) -> Any:
        check_timeout("timeout", timeout)
        limit = self._manager.request_timeout if timeout is None else timeout
        finite = limit is not None and not math.isinf(limit)
        remaining = limit if finite else math.inf
        channel = self._control if via == "control" else self._data
        if self._state is not WorkerState.RUNNING or channel is None or channel.closed:
            started = anyio.current_time()
            try:
                with anyio.fail_after(remaining if finite else None):
                    channel = await self._channel_when_running(via)
            except TimeoutError:
                raise RequestTimeout(
                    f"worker {self.id}: {method!r} was not sent on the {via} channel: the worker "
                    f"was not running within {limit:g} s (it is {self._state.value})"
                ) from None
            if finite:
                remaining = max(remaining - (anyio.current_time() - started), 0.0)
        incarnation_done = self._incarnation_done
        try:
            return await channel.request(method, params, timeout=remaining)
        except RemoteError as exc:
            raise annotated(exc, self.id, via, method) from None
        except RequestTimeout:
            raise RequestTimeout(
                f"worker {self.id}: no response to {method!r} on the {via} channel within "
                f"{limit:g} s; the worker was sent $/cancelRequest"
            ) from None
        except WorkerCrashed:
            raise
        except ChannelClosed:
            # A channel often sees the end (EOF) before the exit status is in, and the status
            # says what happened (WorkerCrashed, or a clean exit). The supervisor ends every
            # incarnation whose channel closed within the shutdown grace (then SIGKILL), so
            # this wait is bounded; the cap is a safety net for a busy event loop.
            with anyio.move_on_after(self._manager.shutdown_grace + 10.0):
                await incarnation_done.wait()
            if self._last_error is not None:
                raise fresh(self._last_error) from None
            raise

    async def _channel_when_running(self, via: str) -> Channel:
        while True:
            channel = self._control if via == "control" else self._data
            if self._state is WorkerState.RUNNING and channel is not None and not channel.closed:
                return channel
            if via == "data" and self.spec.data_path is None:
                raise WorkerUnavailable(
                    f"worker {self.id} has no data channel: spawn it with "
                    "data_channel=DataChannelOptions(enabled=True)"
                )
            if self._state in (WorkerState.STOPPED, WorkerState.FAILED, WorkerState.STOPPING):
                raise WorkerUnavailable(self._unavailable())
            await self._changed.wait()

    def _unavailable(self) -> str:
        """Why nothing can be sent: the state, and for a failed worker its last crash."""
        state = self._state.value
        if self._state is WorkerState.FAILED:
            policy = self.spec.restart_policy
            tried = (
                f"after {self.restarts} restart(s) of at most {policy.max_restarts}"
                if policy.enabled
                else "(no restart policy)"
            )
            last = str(self._last_error).split("\n", 1)[0] if self._last_error else "unknown"
            return f"worker {self.id} has failed for good {tried}; its last crash: {last}"
        if self._stop_requested:
            return f"worker {self.id} is {state}: it was stopped (stop() or the manager closing)"
        how = "" if self.exit_code is None else f" (it exited with code {self.exit_code})"
        return f"worker {self.id} is {state}{how}"

    # -- plumbing -----------------------------------------------------------------------------

    def _live(self, via: str) -> Channel | None:
        return self._control if via == "control" else self._data if via == "data" else None

    def _set_state(self, state: WorkerState) -> None:
        if self._stop_requested and state not in (WorkerState.STOPPED, WorkerState.FAILED):
            return  # a stop is final: nothing but its end changes the state any more
        self._state = state
        if state in (WorkerState.RESTARTING, WorkerState.FAILED, WorkerState.STOPPED):
            self._incarnation_done.set()  # callers of the last incarnation see the verdict
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def _emit(self, kind: str, **fields: Any) -> None:
        event = ProcessEvent(kind, self.id, pid=self.pid, **fields)
        for callback in [*self._listeners.get(kind, ()), *self._manager._listeners.get(kind, ())]:
            try:
                callback(event)
            except Exception:
                logger.exception("worker %s: %s event callback failed", self.id, kind)

    def _stderr_line(self, line: str, continues: bool) -> None:
        text = line + CONTINUED if continues else line
        self._log.info("%s", text)
        self._emit(
            "output", stream="stderr", line=text, info={"continues": True} if continues else {}
        )

    def _stray_output(self, frame: bytes | bytearray | None, error: IpcError) -> bool:
        line = f"<{error}>" if frame is None else frame.decode("utf-8", "replace")
        self._log.warning("stdout (not a protocol message): %s", line)
        self._emit("output", stream="stdout", line=line)
        return True


async def _first_of(*waits: Callable[[], Awaitable[Any]]) -> None:
    async with anyio.create_task_group() as task_group:

        async def run(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            task_group.cancel_scope.cancel()

        for wait in waits:
            task_group.start_soon(run, wait)
