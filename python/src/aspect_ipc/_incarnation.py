"""One incarnation of a worker: start the process, the handshake, serve, and leave nothing.

See :mod:`aspect_ipc.handle` for the theory of operation.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal as signals
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus

from . import _process
from ._child import ChildProcess
from ._handle_core import HandleCore, logger
from ._handler_errors import ENV_TRACEBACKS
from ._handshake import Startup, handshake, hook_failure
from ._health import hung_outcome, ping_until_hung
from ._outcome import Outcome, exit_first, outcome_of, split, with_tail
from ._stderr import StderrPump
from .channel import Channel
from .constants import METHOD_PING, METHOD_READY, METHOD_SHUTDOWN
from .errors import (
    IpcError,
    RemoteError,
    StartupError,
    WorkerExitedDuringStartup,
    WorkerUnavailable,
)
from .framing import LineDelimitedFraming
from .options import WorkerState
from .shutdown import shutdown_timeout_for
from .transports import FdTransport, remove_stale_socket

__all__ = ["TERM_WAIT", "Incarnations"]

_KILL_WAIT = 5.0  # after SIGKILL, seconds to wait for the exit before reaping in a thread
TERM_WAIT = 1.0
"""Seconds between SIGTERM and SIGKILL once a serving worker's grace period is spent."""
# A start-up slot (ProcessManager's max_concurrent_starts) is given back when the handshake
# ends, or after this long: a worker that waits for something must not hold up the others.
_SLOT_HOLD = 2.0


class Incarnations(HandleCore):
    """Runs a worker's incarnations, one at a time (:meth:`_incarnation`)."""

    async def _incarnation(self, status: TaskStatus[None] | None) -> Outcome:
        spec = self.spec
        self.exit_code = self.signal = None
        self._serving = False
        self._restart_event = anyio.Event()
        token = _process.new_token() if spec.data_path else None
        env = _process.build_env(
            namespace=self._settings.namespace,
            worker_id=self.id,
            user_env=spec.env,
            data_path=spec.data_path,
            token=token,
            max_frame_size=spec.data.max_frame_size,
            max_line_length=spec.control.max_line_length,
        )
        if not spec.remote_tracebacks:
            env[ENV_TRACEBACKS] = "0"  # spec 5.3: handler errors come without their stack
        environb = _process.encode_env(env)
        executable = _process.resolve_executable(spec.executable, env, spec.cwd)
        _process.warn_if_exits_unknowable()
        if spec.data_path:
            _process.check_data_path_free(spec.data_path)
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
            child = await self._start(executable, fds, environb)
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
            # Neither a verdict nor a failure: the incarnation was cancelled from outside (the
            # host cancelled every task, as asyncio.run does at its end), with no stop asked
            # for. The worker still gets SIGTERM and a moment to exit cleanly (spec 8.4).
            cut_short = child is not None and failure is None and outcome is None
            # A start-up that failed stops the worker as spec 8.2 stops one not yet serving
            # (7.6): SIGTERM at once, SIGKILL after the grace period, so that it can say why.
            term_wait = TERM_WAIT if cut_short else self._grace() if failure is not None else None
            with anyio.CancelScope(shield=True):
                await self._end(child, stderr, transports, fds, term_wait=term_wait)
            if cut_short:
                self._emit("exit", exit_code=self.exit_code, signal=self.signal)
        if failure is not None:
            assert stderr is not None and child is not None
            self._last_error = WorkerUnavailable(str(failure))
            raise with_tail(failure, stderr, child.returncode) from None
        if outcome is None:
            # The cancellation was absorbed on its way out (anyio's task groups can take a
            # native asyncio cancel for their own): it goes on as what it is.
            raise anyio.get_cancelled_exc_class()()
        return outcome

    async def _start(
        self, executable: str, fds: list[int], env: dict[bytes, bytes]
    ) -> ChildProcess:
        try:
            return await ChildProcess.start(
                [executable, *self.spec.args],
                stdin=fds[0],
                stdout=fds[3],
                stderr=fds[5],
                cwd=self.spec.cwd,
                env=env,
            )
        except ValueError as exc:
            raise _process.start_failure(executable, exc) from None
        except OSError as exc:
            raise _process.start_failure(executable, exc) from exc

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
            spec.control.codec,
            name=f"worker {self.id} control channel",
            log_extra={"worker_id": self.id},
        )
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

        def stray_output(frame: bytes | bytearray | memoryview | None, error: IpcError) -> bool:
            if not startup.ready.is_set() and hook_failure(error):
                startup.unreadable = error  # its $/ready may be what failed: no use waiting
                startup.ready.set()
            return self._stray_output(frame, error)

        control.bad_input_hook = stray_output

        def on_ready(params: Any) -> None:
            if startup.ready.is_set():  # the spec's once (7.2): told, not acted on
                logger.warning(
                    "worker %s: a second $/ready, ignored: %.200r",
                    self.id,
                    params,
                    extra={"worker_id": self.id},
                )
                # Spec 7.2: reported as the worker's output, as anything off the protocol is.
                self._emit("output", stream="stdout", line=f"<a second $/ready: {params!r:.200}>")
                return
            startup.announced = params  # checked by handshake()
            startup.ready.set()

        control._on_reserved_notification(METHOD_READY, on_ready)
        control._on_reserved_request(METHOD_READY, startup.ready_as_request)
        self._handlers.install(control, "control")
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
                    failure = await exit_first(self.id, exc, child)
                else:
                    self._give_back_start_slot()
                    outcome = await self._serve(status, control, data, startup, stderr)
                finally:
                    self._control = self._data = None
            task_group.cancel_scope.cancel()
        return failure, outcome

    async def _take_start_slot(self) -> bool:
        """Wait for a start-up slot of the manager; False if a stop came first."""
        slots = self._start_slots
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
            assert self._start_slots is not None
            self._start_slots.release()

    async def _give_back_start_slot_later(self) -> None:
        await anyio.sleep(_SLOT_HOLD)
        self._give_back_start_slot()

    async def _watch(self, child: ChildProcess) -> None:
        await child.watch()
        if self._startup_scope is not None:
            self._startup_scope.cancel()  # a worker that died during its start-up: say so now

    def _grace(self) -> float:
        """The grace period of this stop: stop(grace=...)'s, else the manager's."""
        return self._stop_grace if self._stop_requested else self._settings.shutdown_grace

    async def _stopper(self, child: ChildProcess, control: Channel) -> None:
        """Once a stop (or a restart()) is requested: the escalation of spec 8.2, on this
        incarnation."""
        await _first_of(self._stop_event.wait, self._restart_event.wait)
        grace = self._grace()
        if self._serving and not control.closed and not child.exited.is_set():
            with anyio.move_on_after(grace):
                started = anyio.current_time()
                await _data_barrier(self._data, grace / 2)
                left = max(grace - (anyio.current_time() - started), 0.001)
                try:
                    await control.request(
                        METHOD_SHUTDOWN, {"timeout": shutdown_timeout_for(left)}, timeout=left
                    )
                except RemoteError as exc:  # it refused: said, and the escalation goes on
                    logger.warning(
                        "worker %s answered $/shutdown with an error (%s); waiting for it to "
                        "exit, then SIGTERM",
                        self.id,
                        exc,
                        extra={"worker_id": self.id},
                    )
                except IpcError:
                    pass  # gone, or no answer in time: the escalation goes on
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
        *,
        term_wait: float | None = None,
    ) -> None:
        """Leave nothing behind: the group killed, the exit awaited, the socket file, the reap.
        ``term_wait``: a worker still running gets SIGTERM and that long to exit first."""
        self._startup_scope = None
        self._give_back_start_slot()
        if child is not None:
            if term_wait is not None and not child.exited.is_set():
                child.signal_group(signals.SIGTERM)
                with anyio.move_on_after(term_wait):
                    await child.watch()
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
    ) -> Outcome:
        """Run a ready worker until it exits or a channel breaks; return what happened."""
        exited = self._exited
        self._data = data
        self._serving = True
        stderr.drain_now()  # lines written before $/hello was answered come first
        # Its uptime, which the restart policy's reset_after measures, counts from ready: a
        # worker that takes longer than reset_after to start and then crashes at once is not
        # stable (counted from the spawn, it was restarted for ever).
        running_since = anyio.current_time()
        if not self._stop_requested:
            self._readies += 1  # before the state change wakes restart()
            self._set_state(WorkerState.RUNNING)
            self._emit("ready", info=dict(startup.ready_params))
            if status is not None:
                status.started()
                self._started = True
        waits = [exited.wait, control.wait_closed]
        if data is not None:
            waits.append(data.wait_closed)
        health, hung = self.spec.health, False

        async def health_check() -> None:
            nonlocal hung
            assert health is not None
            await ping_until_hung(
                self.id,
                control,
                health,
                lambda: self._stop_event.is_set() or self._restart_event.is_set(),
            )
            hung = True

        if health is not None:
            waits.append(health_check)
        await _first_of(*waits)
        uptime = anyio.current_time() - running_since  # not the verdict's waits below
        cause: str | None = None
        if hung:
            assert self._child is not None
            self._child.signal_group(signals.SIGKILL)  # a hung worker will not answer $/shutdown
        elif not exited.is_set() and not self._stop_requested:
            # A channel closed first. A worker shutting itself down closes its channels just
            # before it exits: give it the grace period; one still alive after it is broken.
            with anyio.move_on_after(self._settings.shutdown_grace):
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
            uptime,
            stderr,
            cause,
            stopped=self._stop_requested or self._restart_requested,
        )
        if hung and health is not None and not self._stop_requested:
            outcome = hung_outcome(self.id, health, outcome, stderr.tail())
        self.exit_code, self.signal = outcome.exit_code, outcome.signal
        self._last_error = outcome.error
        for channel in (control, data):
            if channel is not None:
                channel.close(outcome.error)
        return outcome


async def _data_barrier(data: Channel | None, limit: float) -> None:
    """Before ``$/shutdown`` (spec 8.1): a ``$/ping`` on data, answered once the worker has taken
    in every request sent on data before it, so that none is refused as arriving after the
    ``$/shutdown`` (the channels are not ordered with each other); at most ``limit`` seconds."""
    if data is not None and not data.closed:
        with contextlib.suppress(IpcError):
            await data.request(METHOD_PING, None, timeout=limit)


async def _first_of(*waits: Callable[[], Awaitable[Any]]) -> None:
    async with anyio.create_task_group() as task_group:

        async def run(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            task_group.cancel_scope.cancel()

        for wait in waits:
            task_group.start_soon(run, wait)
