"""ProcessHandle: one supervised worker, across its restarts.

Theory of operation: a supervisor task (in the manager's task group) runs *incarnations* one after
another. An incarnation spawns the process, runs the handshake of spec section 7, serves both
channels until the process exits or a channel breaks, then fails whatever is pending with
``WorkerCrashed`` (or ``ChannelClosed`` after a clean exit) and reports the outcome. The
supervisor then stops, gives up, or restarts after the policy's backoff. Callers hold the handle,
not a process: a request made while the worker is (re)starting waits for it to be running, within
the request's timeout.
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
import anyio.lowlevel
from anyio.abc import Process, TaskStatus

from . import _process
from .channel import Channel, Handler, HandlerTable
from .constants import METHOD_HELLO, METHOD_READY, METHOD_SHUTDOWN, PROTOCOL_VERSION
from .errors import (
    ChannelClosed,
    DataChannelTimeout,
    ExecutableNotFound,
    IpcError,
    ProtocolVersionMismatch,
    RemoteError,
    RequestTimeout,
    StartupError,
    TransportError,
    Unauthorized,
    WorkerCrashed,
    WorkerExitedDuringStartup,
    WorkerUnavailable,
    fresh,
)
from .framing import LengthPrefixedFraming, LineDelimitedFraming
from .jsonrpc import ErrorCode
from .options import (
    ControlChannelOptions,
    DataChannelOptions,
    ProcessEvent,
    RestartPolicy,
    WorkerState,
)
from .transports import FdTransport, SocketTransport, TransportFactory, remove_stale_socket

if TYPE_CHECKING:
    from .manager import ProcessManager

__all__ = ["ProcessHandle", "SpawnSpec"]

logger = logging.getLogger("aspect_ipc.manager")


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


@dataclass
class _Outcome:
    exit_code: int | None
    signal: int | None
    crashed: bool
    uptime: float
    error: IpcError


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
        self._process: Process | None = None
        self._exited = anyio.Event()
        self._incarnation_done = anyio.Event()
        self._last_error: IpcError | None = None
        self._stop_requested = False
        self._backoff_scope: anyio.CancelScope | None = None
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
        ``timeout`` (default: the manager's ``request_timeout``).

        Raises:
            RemoteError: the worker answered with an error.
            RequestTimeout: no answer within ``timeout`` (the worker is sent ``$/cancelRequest``).
            WorkerCrashed: the worker died while the request was pending.
            WorkerUnavailable: the worker is stopped, or failed for good.
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
        """Stop the worker: ``$/shutdown``, then SIGTERM, then SIGKILL, ``grace`` s apart."""
        grace = self._manager.shutdown_grace if grace is None else grace
        if self._state in (WorkerState.STOPPED, WorkerState.FAILED):
            return
        self._stop_requested = True
        self._set_state(WorkerState.STOPPING)
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        process, control = self._process, self._control
        if process is not None and not self._exited.is_set():
            with anyio.move_on_after(grace):
                if control is not None and not control.closed:
                    with contextlib.suppress(IpcError):
                        await control.request(
                            METHOD_SHUTDOWN, {"timeout": grace * 0.8}, timeout=grace
                        )
                await self._exited.wait()
            for sig in (signals.SIGTERM, signals.SIGKILL):
                if self._exited.is_set():
                    break
                _process.signal_group(process.pid, sig)
                with anyio.move_on_after(grace if sig == signals.SIGTERM else math.inf):
                    await self._exited.wait()
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
            while True:
                self._set_state(WorkerState.STARTING)
                try:
                    outcome = await self._incarnation(status)
                except IpcError as exc:
                    if status is not None:
                        raise  # the first start fails spawn() itself
                    self._log.warning("restart failed: %s", exc)
                    outcome = _Outcome(None, None, True, 0.0, exc)
                status = None
                if outcome.crashed and not self._stop_requested:
                    self._emit(
                        "crash",
                        exit_code=outcome.exit_code,
                        signal=outcome.signal,
                        error=outcome.error,
                    )
                else:
                    self._emit("exit", exit_code=outcome.exit_code, signal=outcome.signal)
                if self._stop_requested or not outcome.crashed:
                    self._set_state(WorkerState.STOPPED)
                    return
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
                    await anyio.sleep(delay)
                self._backoff_scope = None
                if self._stop_requested:
                    self._set_state(WorkerState.STOPPED)
                    return
        finally:
            if self._state not in (WorkerState.STOPPED, WorkerState.FAILED):
                self._set_state(WorkerState.STOPPED)
            self._done.set()

    async def _incarnation(self, status: TaskStatus[None] | None) -> _Outcome:
        spec = self.spec
        token = _process.new_token() if spec.data_path else None
        env = _process.build_env(
            namespace=self._manager.namespace,
            worker_id=self.id,
            user_env=spec.env,
            data_path=spec.data_path,
            token=token,
            max_frame_size=spec.data.max_frame_size,
        )
        executable = _process.resolve_executable(spec.executable, env, spec.cwd)
        if spec.data_path:
            await _process.check_data_path_free(spec.data_path)
        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr
        try:
            process = await anyio.open_process(
                [executable, *spec.args],
                stdin=pipes[0][0],
                stdout=pipes[1][1],
                stderr=pipes[2][1],
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            for read_end, write_end in pipes:
                os.close(read_end)
                os.close(write_end)
            if isinstance(exc, ValueError):  # e.g. a NUL byte in an argument or the environment
                raise ValueError(f"cannot start {executable}: {exc}") from None
            raise ExecutableNotFound(f"cannot start {executable}: {exc.strerror}") from exc
        for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
            os.close(fd)
        # The control channel writes to a duplicate of the worker's stdin: when it closes (the
        # worker closed its stdout), the worker does not see EOF until its incarnation is over,
        # so a worker that lives on without its control channel is seen as broken (spec 8.5),
        # not told to exit cleanly by us.
        stdin_held = pipes[0][1]
        self._process, self.pid = process, process.pid
        self._exited, self._incarnation_done = anyio.Event(), anyio.Event()
        started = anyio.current_time()
        self._emit("spawn")
        control = Channel(
            FdTransport(pipes[1][0], os.dup(stdin_held), name=f"worker {self.id} stdio"),
            LineDelimitedFraming(spec.control.max_line_length),
            spec.control.serialization,
            name=f"worker {self.id} control channel",
        )
        control.bad_input_hook = self._stray_output
        ready_params: dict[str, Any] = {}
        ready = anyio.Event()

        def on_ready(params: Any) -> None:
            ready_params.update(params if isinstance(params, dict) else {})
            ready.set()

        control._on_reserved_notification(METHOD_READY, on_ready)
        self._handlers.install(control, "control")
        stderr = _process.StderrPump(
            FdTransport(pipes[2][0], None, name=f"worker {self.id} stderr"),
            self._stderr_line,
            spec.stderr_tail_lines,
        )
        exit_status: list[int] = []

        async def reap() -> None:
            exit_status.append(await process.wait())
            self._exited.set()

        data: Channel | None = None
        failure: IpcError | None = None
        outcome: _Outcome | None = None
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(stderr.run)
                task_group.start_soon(reap)
                async with control:
                    self._control = control
                    try:
                        data = await self._handshake(task_group, ready, ready_params, token)
                    except IpcError as exc:
                        failure = exc
                        _process.signal_group(process.pid, signals.SIGKILL)
                        with anyio.move_on_after(2):
                            await self._exited.wait()
                    else:
                        outcome = await self._serve(
                            status, control, data, ready_params, stderr, exit_status, started
                        )
                task_group.cancel_scope.cancel()
        finally:
            self._control = self._data = None
            _process.signal_group(process.pid, signals.SIGKILL)  # stragglers in its group
            if spec.data_path and self._exited.is_set():
                with anyio.CancelScope(shield=True), contextlib.suppress(IpcError):
                    await remove_stale_socket(spec.data_path)  # a crashed worker's leftover
            if failure is not None:
                self._last_error = WorkerUnavailable(str(failure))
                if isinstance(failure, StartupError):
                    failure = self._with_tail(failure, stderr, exit_status)
            await stderr.aclose()
            os.close(stdin_held)
        if failure is not None:
            raise failure
        assert outcome is not None
        return outcome

    async def _serve(
        self,
        status: TaskStatus[None] | None,
        control: Channel,
        data: Channel | None,
        ready_params: dict[str, Any],
        stderr: _process.StderrPump,
        exit_status: list[int],
        started: float,
    ) -> _Outcome:
        """Run a ready worker until it exits or a channel breaks; return what happened."""
        assert self._process is not None
        self._data = data
        stderr.drain_now()  # lines written before $/hello was answered come first
        self._set_state(WorkerState.RUNNING)
        self._emit("ready", info=dict(ready_params))
        if status is not None:
            status.started()
        waits = [self._exited.wait, control.wait_closed]
        if data is not None:
            waits.append(data.wait_closed)
        await _first_of(*waits)
        cause: str | None = None
        if not self._exited.is_set() and not self._stop_requested:
            # A channel closed first. A worker shutting itself down closes its channels just
            # before it exits: give it the grace period; one still alive after it is broken.
            with anyio.move_on_after(self._manager.shutdown_grace):
                await self._exited.wait()
            if not self._exited.is_set():
                closed = control if control.closed else data
                cause = str(closed.close_reason) if closed is not None else None
                _process.signal_group(self._process.pid, signals.SIGKILL)
        await self._exited.wait()
        with anyio.move_on_after(0.5):  # the worker's last words precede the verdict
            await stderr.wait_closed()
        outcome = self._outcome(exit_status[0], anyio.current_time() - started, stderr, cause)
        self._last_error = outcome.error
        for channel in (control, data):
            if channel is not None:
                channel.close(outcome.error)
        return outcome

    async def _handshake(
        self, task_group: Any, ready: anyio.Event, params: dict[str, Any], token: str | None
    ) -> Channel | None:
        spec = self.spec
        deadline = anyio.current_time() + spec.startup_timeout
        # The scope gets a little slack beyond the deadline, so that a connection attempt that
        # runs out at the deadline reports why (spec 7.6) before the scope gives up on it.
        with anyio.move_on_after(spec.startup_timeout + _STARTUP_SLACK) as scope:
            with anyio.move_on_after(spec.startup_timeout):
                await _first_of(ready.wait, self._exited.wait)
            if not ready.is_set() and not self._exited.is_set():
                scope.cancel()  # no $/ready in time: the timeout error below
                await anyio.lowlevel.checkpoint()
            if not ready.is_set():
                raise WorkerExitedDuringStartup(
                    f"worker {self.id} exited during start-up", exit_code=None, signal=None
                )
            if params.get("protocol") != PROTOCOL_VERSION:
                raise ProtocolVersionMismatch(
                    f"protocol version mismatch: parent speaks {PROTOCOL_VERSION}, "
                    f"worker {self.id} speaks {params.get('protocol')!r}"
                )
            if spec.data_path is None:
                return None
            if not params.get("dataPath"):
                raise StartupError(
                    f"worker {self.id} did not open the data channel ($/ready has dataPath null): "
                    "does it read ASPECT_IPC_DATA_PATH?"
                )
            if params["dataPath"] != spec.data_path:
                raise StartupError(
                    f"worker {self.id} announced the data path {params['dataPath']!r} in $/ready, "
                    f"not the one it was given ({spec.data_path!r} in ASPECT_IPC_DATA_PATH)"
                )
            remaining = max(deadline - anyio.current_time(), 0.001)
            try:
                transport = await TransportFactory.create_pipe_client(
                    spec.data_path, timeout=remaining
                )
            except TransportError as exc:
                raise DataChannelTimeout(f"worker {self.id}: {exc}") from None
            try:
                self._check_peer(transport, params)
            except Unauthorized:
                await transport.aclose()
                raise
            data = Channel(
                transport,
                LengthPrefixedFraming(spec.data.max_frame_size),
                spec.data.serialization,
                name=f"worker {self.id} data channel",
            )
            self._handlers.install(data, "data")
            await task_group.start(_run_channel, data)
            try:
                await data.request(
                    METHOD_HELLO, {"token": token, "protocol": PROTOCOL_VERSION}, timeout=math.inf
                )
            except RemoteError as exc:
                if exc.code == ErrorCode.PROTOCOL_VERSION_MISMATCH:
                    raise ProtocolVersionMismatch(f"worker {self.id}: {exc.message}") from None
                raise Unauthorized(
                    exc.code, f"worker {self.id} refused $/hello: {exc.message}", exc.data
                ) from None
            except ChannelClosed as exc:
                raise StartupError(
                    f"worker {self.id} closed the data channel during $/hello: {exc}"
                ) from None
            return data
        if self._exited.is_set():
            raise WorkerExitedDuringStartup(
                f"worker {self.id} exited during start-up", exit_code=None, signal=None
            )
        stage = "send $/ready" if not ready.is_set() else "complete the data channel handshake"
        causes = (
            "Likely causes: the worker does not use an aspect-ipc SDK (or never starts it); "
            "it ignores ASPECT_IPC_DATA_PATH; it is slow to start (raise startup_timeout)."
        )
        prefix = "data channel connection timeout" if spec.data_path else "start-up timeout"
        raise DataChannelTimeout(
            f"{prefix}: worker {self.id} did not {stage} within {spec.startup_timeout:g} s. "
            + causes
        )

    def _check_peer(self, transport: SocketTransport, ready: dict[str, Any]) -> None:
        credentials = transport.peer_credentials()
        if credentials is None or self.pid is None:
            return
        announced = ready.get("pid")
        if (
            credentials.uid != os.getuid()
            or credentials.pid != announced
            or not (isinstance(announced, int) and _process.is_descendant(announced, self.pid))
        ):
            raise Unauthorized(
                ErrorCode.UNAUTHORIZED,
                f"unauthorized peer on {self.spec.data_path}: pid {credentials.pid} uid "
                f"{credentials.uid} is not worker {self.id} (pid {announced}, child of {self.pid})",
            )

    def _outcome(
        self, returncode: int, uptime: float, stderr: _process.StderrPump, cause: str | None
    ) -> _Outcome:
        exit_code, signal = (returncode, None) if returncode >= 0 else (None, -returncode)
        self.exit_code, self.signal = exit_code, signal
        crashed = (exit_code != 0 or cause is not None) and not self._stop_requested
        how = f"exit code {exit_code}" if signal is None else f"signal {_signal_name(signal)}"
        if cause is not None:  # the parent killed it: say why
            how = f"{how}, killed by the parent after its channel broke: {cause}"
        if crashed:
            tail = stderr.tail()
            text = f"worker {self.id} crashed ({how})"
            error: IpcError = WorkerCrashed(
                f"{text}; last lines of its stderr:\n{tail}" if tail else text,
                exit_code=exit_code,
                signal=signal,
                stderr_tail=tail,
            )
        else:
            error = ChannelClosed(f"worker {self.id} exited ({how})")
        return _Outcome(exit_code, signal, exit_code != 0 or cause is not None, uptime, error)

    def _with_tail(
        self, exc: StartupError, stderr: _process.StderrPump, status: list[int]
    ) -> StartupError:
        stderr.drain_now()
        text = str(exc).split("\n--- last lines", 1)[0]
        if isinstance(exc, WorkerExitedDuringStartup) and status:
            code = status[0]
            how = f"exit code {code}" if code >= 0 else f"signal {_signal_name(-code)}"
            return WorkerExitedDuringStartup(
                f"{text} ({how})",
                exit_code=code if code >= 0 else None,
                signal=-code if code < 0 else None,
                stderr_tail=stderr.tail(),
            )
        return type(exc)(text, stderr_tail=stderr.tail())

    # -- calls --------------------------------------------------------------------------------

    async def _call(self, via: str, method: str, params: Any, timeout: float | None) -> Any:
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
            if self._state in (WorkerState.STOPPED, WorkerState.FAILED, WorkerState.STOPPING):
                if via == "data" and self.spec.data_path is None:
                    raise WorkerUnavailable(f"worker {self.id} has no data channel")
                raise WorkerUnavailable(f"worker {self.id} is {self._state.value}")
            if via == "data" and self.spec.data_path is None:
                raise WorkerUnavailable(
                    f"worker {self.id} has no data channel: spawn it with "
                    "data_channel=DataChannelOptions(enabled=True)"
                )
            await self._changed.wait()

    # -- plumbing -----------------------------------------------------------------------------

    def _live(self, via: str) -> Channel | None:
        return self._control if via == "control" else self._data if via == "data" else None

    def _set_state(self, state: WorkerState) -> None:
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

    def _stderr_line(self, line: str) -> None:
        self._log.info("%s", line)
        self._emit("output", stream="stderr", line=line)

    def _stray_output(self, frame: bytes | bytearray | None, error: IpcError) -> bool:
        line = f"<{error}>" if frame is None else frame.decode("utf-8", "replace")
        self._log.warning("stdout (not a protocol message): %s", line)
        self._emit("output", stream="stdout", line=line)
        return True


async def _run_channel(channel: Channel, *, task_status: TaskStatus[None]) -> None:
    async with channel:
        task_status.started()
        await channel.wait_closed()


async def _first_of(*waits: Callable[[], Awaitable[Any]]) -> None:
    async with anyio.create_task_group() as task_group:

        async def run(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            task_group.cancel_scope.cancel()

        for wait in waits:
            task_group.start_soon(run, wait)


_STARTUP_SLACK = 0.25


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return str(number)
