"""ProcessManager: spawns workers, supervises them, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Unpack

import anyio
from anyio.abc import TaskGroup

from . import _fork
from ._calls import check_grace, check_name, check_timeout
from ._command import checked_command
from ._events import CallbackRunner, EventStream, Listener, Listeners, in_event_callback
from ._loggers import library_logger
from ._option_checks import (
    check_flag,
    check_instance,
    check_spawn_options,
    checked_socket_dir,
)
from ._registry import WorkerRegistry
from ._trace import trace_mode
from .errors import WorkerIdInUse
from .handle import ProcessHandle, SpawnSpec
from .metrics import ManagerStats
from .option_types import SpawnOptions
from .options import ControlChannelOptions, DataChannelOptions, HealthCheck, RestartPolicy
from .paths import PipePath

if TYPE_CHECKING:
    from .pool import WorkerPool

__all__ = ["ProcessManager"]

logger = library_logger("aspect_ipc.manager")

# When the manager closes, async event callbacks still running get this long to finish.
_CALLBACK_GRACE = 5.0


class ProcessManager:
    """Spawns and supervises workers; an async context manager.

    Leaving the ``async with`` block, normally, by an exception or by cancellation, stops every
    worker (``$/shutdown``, then SIGTERM, then SIGKILL) and removes their socket files.

    Args:
        namespace: names the workers' data paths (``/tmp/<namespace>-<id>.sock``).
        request_timeout: default seconds a request waits for its answer (``math.inf``: forever).
        startup_timeout: default seconds from spawn to both channels ready.
        shutdown_grace: seconds between the steps of the stop escalation.
        restart_policy: default policy for crashed workers.
        socket_dir: directory of the default data paths (default ``/tmp``).
        max_concurrent_starts: workers started at the same time, at most (default: four times
            the CPU count, at least 8); further spawns wait their turn before their start-up
            timeout begins. Starting interpreters is CPU-heavy: a hundred at once would starve
            this process and the workers already running. A slot is held until the worker is
            ready, or for 2 s at most.
        metrics: keep metrics for each worker's channels (default; see :meth:`stats`); False
            turns counting off for every worker spawned without ``metrics=`` of its own.
    """

    def __init__(
        self,
        namespace: str = "aspect-ipc",
        *,
        request_timeout: float = 30.0,
        startup_timeout: float = 10.0,
        shutdown_grace: float = 5.0,
        restart_policy: RestartPolicy | None = None,
        socket_dir: str | None = None,
        max_concurrent_starts: int | None = None,
        metrics: bool = True,
    ) -> None:
        check_name("namespace", namespace)
        check_timeout("request_timeout", request_timeout)
        check_timeout("startup_timeout", startup_timeout, optional=False)
        check_grace("shutdown_grace", shutdown_grace, optional=False)
        check_instance("restart_policy", restart_policy, RestartPolicy)
        check_flag("metrics", metrics)
        if max_concurrent_starts is None:
            max_concurrent_starts = max(8, 4 * (os.cpu_count() or 1))
        if not isinstance(max_concurrent_starts, int) or max_concurrent_starts < 1:
            raise ValueError(
                f"max_concurrent_starts must be a positive integer, not {max_concurrent_starts!r}"
            )
        self.max_concurrent_starts = max_concurrent_starts
        """How many workers may be starting (spawned, not yet ready) at once."""
        self.metrics = metrics
        """Whether workers count metrics (``stats()``) unless ``spawn(metrics=...)`` says."""
        self.namespace = namespace
        """Names this manager's workers' socket paths and is their ``ASPECT_IPC_NAMESPACE``."""
        self.request_timeout = request_timeout
        """Seconds a request waits for its answer unless the call gives ``timeout``."""
        self.startup_timeout = startup_timeout
        """Seconds from spawn to ready unless ``spawn(startup_timeout=...)`` says."""
        self.shutdown_grace = shutdown_grace
        """Seconds a stopping worker gets after ``$/shutdown`` before SIGTERM (spec 8.2)."""
        self.restart_policy = restart_policy or RestartPolicy()
        """The restart policy of workers spawned without one of their own."""
        self.socket_dir = checked_socket_dir(socket_dir)
        """Where data sockets are made (None: the platform default, ``/tmp``), made absolute:
        a worker may run in another directory (``cwd=``) than the parent."""
        self._workers = WorkerRegistry()
        self._handles = self._workers.handles  # the same dict: read here, changed there
        self._listeners = Listeners()
        self._task_group: TaskGroup | None = None
        self._closed = False
        self._handler_exit: BaseException | None = None  # a handler's sys.exit()
        self._start_slots: anyio.Semaphore | None = None
        self._pools: list[WorkerPool] = []
        self._generation = _fork.generation  # a forked child must leave it alone

    def __enter__(self) -> NoReturn:
        raise TypeError(
            "aspect_ipc.ProcessManager is asynchronous: use 'async with ProcessManager(...)' "
            "in async code, or the blocking API 'with aspect_ipc.sync.ProcessManager(...)' "
            "in code without an event loop"
        )

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - __enter__ raises
        pass

    async def __aenter__(self) -> ProcessManager:
        if self._task_group is not None:
            raise RuntimeError("this ProcessManager is already open ('async with' it once)")
        self._closed = False
        self._handler_exit = None
        with contextlib.suppress(RuntimeError):  # trio: no asyncio loop
            _fork.watch_loop(asyncio.get_running_loop())
        self._start_slots = anyio.Semaphore(self.max_concurrent_starts)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._listeners.runner = CallbackRunner(self._task_group)  # async event callbacks
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        if in_event_callback():
            # It would wait for the callback's task, which waits for it.
            raise RuntimeError(
                "a ProcessManager cannot be closed from one of its own event callbacks: cancel "
                "the scope around its 'async with' block (or stop the workers) instead"
            )
        if self._generation != _fork.generation:
            # A forked child leaving the block (sys.exit() in it): the workers, their sockets
            # and the event loop's epoll set are the parent's, and stay as they are.
            return None
        self._closed = True  # spawn() refuses from now on, and stop_all() sees every worker
        with anyio.CancelScope(shield=True):
            for pool in self._pools:
                await pool.stop()
            await self.stop_all()
            await self._listeners.close(_CALLBACK_GRACE)  # events() iterations end
        self._task_group.cancel_scope.cancel()
        try:
            # The body's own exception propagates as itself, not wrapped in an ExceptionGroup.
            await self._task_group.__aexit__(None, None, None)
        finally:
            self._task_group = None
            for handle in self._handles.values():  # stopped: no line of theirs is to come
                self._workers.release_logger(handle.logger_name)
        if self._handler_exit is not None:  # instead of the cancellation it caused
            raise self._handler_exit.with_traceback(None)
        return None

    def _exit_from_handler(self, exc: BaseException) -> bool:
        """A handler of the workers' requests called ``sys.exit()`` (or raised
        KeyboardInterrupt): the ``async with`` block is cancelled, the workers are stopped as
        its end stops them, and the exception is raised from it, as itself."""
        if self._handler_exit is None:
            self._handler_exit = exc
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        return True

    @property
    def handles(self) -> dict[str, ProcessHandle]:
        """The workers by id: a worker stopped for good (stop(), or it exited with code 0)
        leaves once stopped, as a pool's recycled and removed workers do, its counters staying
        in the totals of :meth:`stats`; a failed one stays until its id is reused. (At the
        manager's exit, the workers it stops stay.)"""
        return dict(self._handles)

    def get(self, worker_id: str) -> ProcessHandle:
        """The handle of ``worker_id``; KeyError if there is none."""
        try:
            return self._handles[worker_id]
        except KeyError:
            raise KeyError(
                f"no worker {worker_id!r} in this manager (a worker stopped for good leaves it; "
                f"its workers: {', '.join(map(repr, sorted(self._handles))) or 'none'})"
            ) from None

    def on(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` for every worker's events of ``kind`` (an :class:`EventKind`
        or ``"*"`` for all). An async callback is awaited in a task of the manager (a failure is
        logged); callbacks still running when the manager closes get 5 s more.

        Raises:
            ValueError: ``kind`` is not an event kind.
        """
        self._listeners.add(kind, callback)

    def off(self, kind: str, callback: Listener) -> None:
        """Stop calling ``callback`` for ``kind`` (what :meth:`on` registered; a callback
        registered twice is removed once; one never registered: nothing happens)."""
        self._listeners.remove(kind, callback)

    def events(self, *kinds: str, buffer: int = 1024) -> EventStream:
        """``async for event in manager.events():`` every worker's events from now on (of
        ``kinds`` only, if given), until the manager closes.

        The iterator buffers ``buffer`` events; a consumer that falls further behind loses the
        oldest ones (supervision never waits for it), and the next event it gets says how many
        in ``event.dropped``.

        Raises:
            ValueError: a kind is not an event kind, or ``buffer`` is not positive.
            RuntimeError: the manager has closed (no event would ever come).
        """
        if self._closed:
            raise RuntimeError(
                f"the ProcessManager {self.namespace!r} is closed: its events() ended with it "
                "(subscribe inside its 'async with' block)"
            )
        return self._listeners.subscribe(kinds, buffer)

    async def spawn(
        self,
        worker_id: str,
        *,
        executable: str | os.PathLike[str],
        args: Sequence[str | os.PathLike[str]] = (),
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        control_channel: ControlChannelOptions | None = None,
        data_channel: DataChannelOptions | None = None,
        startup_timeout: float | None = None,
        restart_policy: RestartPolicy | None = None,
        stderr_tail_lines: int = 20,
        remote_tracebacks: bool = True,
        health: HealthCheck | None = None,
        metrics: bool | None = None,
        trace: bool | str | None = None,
        setup: Callable[[ProcessHandle], object] | None = None,
    ) -> ProcessHandle:
        """Start a worker and return once both channels are ready (spec section 7).

        ``env`` is merged onto this process's environment (minus inherited ``ASPECT_IPC_*``).
        ``remote_tracebacks=False`` tells the worker not to send its stack with handler errors
        (``ASPECT_IPC_TRACEBACKS=0``, spec 5.3), for workers that handle untrusted input; nor
        does the parent send its own when one of its handlers fails on the worker's request.
        ``health`` pings the running worker and kills and restarts one that hangs
        (:class:`HealthCheck`).

        ``metrics=False`` turns this worker's counters off (default: the manager's
        ``metrics``). ``trace=True`` logs every message of its channels at DEBUG on the
        ``aspect_ipc.trace`` logger, ``trace="payloads"`` with their params or results
        (truncated); default: ``ASPECT_IPC_TRACE`` (``1`` or ``payloads``).

        ``setup(handle)`` is called before the process starts, on the event loop (in the
        blocking API too, with this async handle): register there the handlers of what the
        worker may send as soon as it runs (``handle.on_request``, ``on_notification``,
        ``on``). A pool calls it for each worker it starts, replacements included.

        Cancelling the caller stops the worker being started and leaves nothing behind (no
        process, socket file or descriptor). A start-up error is raised once the worker is
        gone: it gets SIGTERM at once, SIGKILL after the manager's ``shutdown_grace``.

        Raises:
            WorkerIdInUse: a live worker already has ``worker_id``.
            ExecutableNotFound: the executable does not exist or cannot be run.
            WorkerExitedDuringStartup: the worker exited before the handshake completed.
            DataChannelTimeout: no ``$/ready``, or no data connection, within the start-up
                timeout (data channel enabled).
            StartupTimeout: no ``$/ready`` within the start-up timeout (control only).
            StartupError: any other start-up failure; every start-up error carries the
                worker's stderr tail, and an OS error (EMFILE, EACCES...) is chained as the cause.
            AddressInUse: a live worker of another parent holds the data path, or a file
                that is not a socket, or another user's file this process may not remove.
            Unauthorized: the worker refused the ``$/hello`` (or the peer check failed).
            ProtocolVersionMismatch: the worker speaks another protocol version.
            RuntimeError: the manager is closed (or was made by the parent of this forked
                process).
        """
        if self._generation != _fork.generation:
            raise _fork.forked_error(f"the ProcessManager {self.namespace!r}")
        if self._closed:
            raise RuntimeError(
                f"the ProcessManager {self.namespace!r} is closed (its 'async with' block has "
                "ended): spawn workers inside the block, or make a new manager"
            )
        if self._task_group is None:
            raise RuntimeError(
                "the ProcessManager is not open: use it as 'async with ProcessManager(...) as "
                "manager:' and spawn inside the block"
            )
        check_name("worker_id", worker_id)
        check_timeout("startup_timeout", startup_timeout)
        executable, args, cwd, env = checked_command(executable, args, cwd, env)
        check_spawn_options(
            control_channel=control_channel,
            data_channel=data_channel,
            restart_policy=restart_policy,
            health=health,
            stderr_tail_lines=stderr_tail_lines,
            remote_tracebacks=remote_tracebacks,
            metrics=metrics,
            setup=setup,
        )
        tracing = trace_mode(trace)
        data = data_channel or DataChannelOptions()
        data_path = None
        if data.enabled:
            data_path = data.path or PipePath.for_module(
                self.namespace, worker_id, directory=self.socket_dir
            )
        self._workers.claim(worker_id, data_path)
        spec = SpawnSpec(
            executable=executable,
            args=args,
            cwd=cwd,
            env=env,
            control=control_channel or ControlChannelOptions(),
            data=data,
            data_path=data_path,
            startup_timeout=self.startup_timeout if startup_timeout is None else startup_timeout,
            restart_policy=restart_policy or self.restart_policy,
            stderr_tail_lines=stderr_tail_lines,
            remote_tracebacks=remote_tracebacks,
            health=health,
        )
        handle = ProcessHandle(
            self,
            worker_id,
            spec,
            start_slots=self._start_slots,
            listeners=self._listeners,
            on_stopped=self._stopped,
        )
        handle._observe(
            metrics=self.metrics if metrics is None else metrics,
            trace=tracing,
            on_handler_exit=self._exit_from_handler,
        )
        if setup is not None:
            if inspect.iscoroutinefunction(setup):
                raise TypeError(f"setup {setup!r} is async: give a plain function")
            setup(handle)  # what it raises, spawn raises: nothing has started
        self._workers.add(handle)
        try:
            await self._task_group.start(handle._supervise, name=f"supervisor of {worker_id}")
        except BaseException:
            # The supervisor has ended (or never ran, if cancelled before it started): either
            # way nothing of this worker is left, and a concurrent stop() must not wait on it.
            handle._done.set()
            self._workers.discard(handle)
            raise
        return handle

    def stats(self) -> ManagerStats:
        """Every worker's :meth:`ProcessHandle.stats` by id (``.workers``), and their totals."""
        return self._workers.stats()

    def _stopped(self, handle: ProcessHandle) -> None:
        """``handle`` is stopped for good: while the manager is open it leaves ``handles`` (a
        parent that gives each job a worker of its own must not keep them all), its counters
        staying in the totals. A failed worker stays, for its verdict, until its id is reused."""
        if not self._closed:
            self._workers.forget(handle)

    async def stop(self, worker_id: str, *, grace: float | None = None) -> None:
        """Stop one worker (see :meth:`ProcessHandle.stop`)."""
        await self.get(worker_id).stop(grace=grace)

    async def stop_all(self, *, grace: float | None = None) -> None:
        """Stop every worker, concurrently (ValueError: a bad ``grace``, before any stops)."""
        check_grace("grace", grace)
        async with anyio.create_task_group() as task_group:
            for handle in list(self._handles.values()):
                task_group.start_soon(functools.partial(handle.stop, grace=grace))

    async def request(
        self, worker_id: str, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Shortcut for ``manager.get(worker_id).request(...)``."""
        return await self.get(worker_id).request(method, params, timeout=timeout)

    async def spawn_pool(
        self,
        name: str,
        size: int,
        *,
        max_requests_per_worker: int | None = None,
        **spawn_options: Unpack[SpawnOptions],
    ) -> WorkerPool:
        """Start ``size`` workers of one kind (ids ``<name>-0`` ... ``<name>-<size-1>``) as a
        :class:`WorkerPool`, returning once all run; ``spawn_options`` are those of
        :meth:`spawn`. Leaving the manager stops the pool.

        Args:
            max_requests_per_worker: recycle a worker after that many requests: it takes no
                new one, its replacement starts at once, and it stops once its requests in
                flight have answered (None: never).

        Raises:
            as :meth:`spawn`; workers already started are stopped again.
        """
        from .pool import WorkerPool

        check_name("name", name)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, not {size!r}")
        self._pools = [pool for pool in self._pools if not pool._closed]  # stopped: gone
        if any(pool.name == name for pool in self._pools):
            raise WorkerIdInUse(f"a pool named {name!r} already exists in this manager")
        pool = WorkerPool(
            self, name, spawn_options, max_requests_per_worker=max_requests_per_worker
        )
        self._pools.append(pool)
        try:
            await pool.resize(size)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await pool.stop()
            self._pools.remove(pool)
            raise
        return pool
