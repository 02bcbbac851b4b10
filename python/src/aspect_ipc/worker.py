"""The Python worker SDK: the whole worker side of spec/PROTOCOL.md behind one object.

```python
from aspect_ipc.worker import Worker

worker = Worker()

@worker.control("getStatus")
def get_status(params):
    return {"status": "running"}

@worker.data("processItems")
async def process_items(params):
    return {"processed": len(params["items"])}

if __name__ == "__main__":
    worker.run()
```

The worker exits with code 0, socket file removed, within 0.2 s of stdin EOF, of writing the
``$/shutdown`` result, or of SIGTERM/SIGINT, even if a handler ignores cancellation or blocks
the event loop (see :mod:`aspect_ipc.worker_exit`); if its parent died, its process group too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, Literal, NoReturn, TypeVar, get_args

import anyio
from anyio.abc import TaskGroup

from ._calls import check_grace, check_timeout
from ._handler_errors import read_tracebacks, write_failure
from ._stream_messages import check_input_window
from ._worker_handshake import authenticate, hello_again, ready_params, shutdown_on_data
from ._worker_hooks import Hooks
from ._worker_shutdown import Stopping
from ._worker_stop import EofFirst
from .channel import Channel, Handler, HandlerTable, RequestStreams, current_streams
from .codecs import Codec, JsonCodec, MessagePackCodec
from .constants import (
    DEFAULT_HELLO_TIMEOUT,
    ENV_DATA_PATH,
    ENV_NAMESPACE,
    ENV_TOKEN,
    ENV_WORKER_ID,
    METHOD_HELLO,
    METHOD_READY,
    METHOD_SHUTDOWN,
)
from .errors import (
    AddressInUse,
    ChannelClosed,
    TransportError,
    WorkerUnavailable,
)
from .framing import LengthPrefixedFraming, LineDelimitedFraming
from .shutdown import ShutdownReason
from .transports import PipeServer, SocketTransport, TransportFactory
from .worker_env import environ_bytes, read_limits, read_text
from .worker_exit import ExitGuard

__all__ = ["RequestStreams", "ShutdownReason", "Worker", "WorkerEvent", "current_streams"]

F = TypeVar("F", bound=Handler)

WorkerEvent = Literal[
    "control_ready",
    "data_setup",
    "data_listening",
    "data_connected",
    "data_ready",
    "ready",
    "shutting_down",
    "stopped",
]
"""Lifecycle events, in order: ``control_ready``, ``data_setup``, ``data_listening``,
``data_connected``, ``data_ready``, ``ready``, then ``shutting_down`` and ``stopped``.

Each callback is called with a dict of details, except ``shutting_down``'s, which is called once
with the :class:`ShutdownReason`. A callback that raises is logged; the worker goes on."""

WORKER_EVENTS: tuple[WorkerEvent, ...] = get_args(WorkerEvent)

_EXIT_USAGE = 2


class Worker(Stopping):
    """A worker process: control handlers on stdio, data handlers on the data socket.

    Args:
        max_concurrent_handlers: requests run at once per channel before reading pauses.
        hello_timeout: seconds a data connection has to send ``$/hello``.
        shutdown_timeout: seconds in-flight requests get to finish on :meth:`shutdown`.
        log_handler_errors: write a failed request handler's traceback to stderr (spec 4.10).
        data_codec: the data channel's codec (default ``MessagePackCodec()``): one with codec
            hooks, e.g. ``MessagePackCodec(decode_hook=...)`` (docs/codec-hooks.md).
        control_codec: the control channel's codec (default ``JsonCodec()``): one with codec
            hooks, ``JsonCodec(encode_hook=..., decode_hook=...)``.
    """

    def __init__(
        self,
        *,
        max_concurrent_handlers: int = 256,
        hello_timeout: float = DEFAULT_HELLO_TIMEOUT,
        shutdown_timeout: float = 5.0,
        log_handler_errors: bool = True,
        data_codec: Codec | None = None,
        control_codec: JsonCodec | None = None,
    ) -> None:
        # Checked here: a bad value would end the worker later with a traceback (exit code 1).
        check_timeout("hello_timeout", hello_timeout, optional=False)
        check_grace("shutdown_timeout", shutdown_timeout, optional=False)
        self.max_concurrent_handlers = max_concurrent_handlers
        self.hello_timeout = hello_timeout
        self.shutdown_timeout = shutdown_timeout
        self.log_handler_errors = log_handler_errors
        self.data_codec = data_codec
        self.control_codec = control_codec
        self._send_tracebacks = True
        # Read again, strictly, by serve(): a worker started wrongly exits there with code 2.
        self.worker_id = read_text(environ_bytes(), ENV_WORKER_ID, lenient=True)
        self.namespace = read_text(environ_bytes(), ENV_NAMESPACE, lenient=True)
        self._handlers = HandlerTable()
        self._input_windows: dict[tuple[str, str], int] = {}  # (channel, method): input_window
        self._hooks = Hooks()
        self._control: Channel | None = None
        self._data: Channel | None = None
        self._task_group: TaskGroup | None = None
        self._stopping = False
        self._ready_sent = False
        self._token = ""
        self._handler_exit: SystemExit | None = None  # a handler's sys.exit()
        self._guard: ExitGuard | None = None

    # -- declaring handlers -------------------------------------------------------------------

    def control(self, method: str, *, input_window: int | None = None) -> Callable[[F], F]:
        """Decorator: answer ``method`` requests on the control channel.

        ``input_window`` (1..1024, default 16) is how many items of an input stream the handler's
        request may have buffered or on their way (the credit granted at once, spec 13.3).
        """
        return self._decorator("control", method, notification=False, input_window=input_window)

    def data(self, method: str, *, input_window: int | None = None) -> Callable[[F], F]:
        """Decorator: answer ``method`` requests on the data channel (``input_window`` as in
        :meth:`control`)."""
        return self._decorator("data", method, notification=False, input_window=input_window)

    def control_notification(self, method: str) -> Callable[[F], F]:
        """Decorator: handle ``method`` notifications on the control channel."""
        return self._decorator("control", method, notification=True)

    def data_notification(self, method: str) -> Callable[[F], F]:
        """Decorator: handle ``method`` notifications on the data channel."""
        return self._decorator("data", method, notification=True)

    def on(self, event: WorkerEvent) -> Callable[[F], F]:
        """Decorator: call ``callback(info)`` on a lifecycle event (see :data:`WorkerEvent`);
        ``shutting_down`` callbacks are called as ``callback(reason)`` with a ShutdownReason."""
        if event not in WORKER_EVENTS:  # a typo would be a hook that never runs
            raise ValueError(
                f"unknown worker event {event!r}: expected one of {', '.join(WORKER_EVENTS)}"
            )
        return self._hooks.register(event)

    def _decorator(
        self, channel: str, method: str, *, notification: bool, input_window: int | None = None
    ) -> Callable[[F], F]:
        self._handlers.check(channel, method)
        if input_window is not None:
            check_input_window(method, input_window)

        def register(handler: F) -> F:
            live = self._control if channel == "control" else self._data
            self._handlers.add(channel, method, handler, notification=notification, live=live)
            if not notification:
                if input_window is None:
                    self._input_windows.pop((channel, method), None)
                else:
                    self._input_windows[channel, method] = input_window
                if live is not None:
                    live.set_input_window(method, input_window)
            return handler

        return register

    # -- talking to the parent ----------------------------------------------------------------

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call the parent on the control channel."""
        check_timeout("timeout", timeout)
        return await self._channel("control").request(method, params, timeout=timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Notify the parent on the control channel."""
        await self._channel("control").notify(method, params)

    async def request_via_data(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call the parent on the data channel."""
        check_timeout("timeout", timeout)
        return await self._channel("data").request(method, params, timeout=timeout)

    async def notify_via_data(self, method: str, params: Any = None) -> None:
        """Notify the parent on the data channel."""
        await self._channel("data").notify(method, params)

    def _channel(self, which: str) -> Channel:
        channel = self._control if which == "control" else self._data
        if channel is None or channel.closed:
            raise WorkerUnavailable(f"the {which} channel is not connected")
        return channel

    def shutdown(self) -> None:
        """Shut down gracefully, as on ``$/shutdown``, once running requests have answered."""
        if self._task_group is not None and not self._stopping:
            self._task_group.start_soon(
                self._drain_and_close, self.shutdown_timeout, ShutdownReason.SHUTDOWN_CALL
            )

    # -- running ------------------------------------------------------------------------------

    def run(self, *, backend: str = "asyncio") -> None:
        """Serve until shut down or the parent goes away, then exit the process with code 0."""
        self._guard = ExitGuard()
        self._guard.install_signals()  # before the loop: SIGINT is ours, not KeyboardInterrupt
        anyio.run(self.serve, backend=backend)
        self._guard.finish()
        self._guard.ignore_signals_at_exit()
        sys.exit(0 if self._handler_exit is None else self._handler_exit.code)

    async def serve(self) -> None:
        """Serve until shut down or until stdin reaches EOF (the parent is gone)."""
        self._token = os.environ.pop(ENV_TOKEN, "")  # children must not inherit it
        try:
            environb = environ_bytes()
            self.worker_id = read_text(environb, ENV_WORKER_ID)
            self.namespace = read_text(environb, ENV_NAMESPACE)
            data_path = read_text(environb, ENV_DATA_PATH)
            limits = read_limits(os.environ)
            self._send_tracebacks = read_tracebacks(os.environ)
        except ValueError as exc:  # TextSettingError, SizeSettingError, TracebackSettingError
            _die(str(exc))
        if data_path and not self._token:
            _die(
                f"{ENV_DATA_PATH} is set but {ENV_TOKEN} is missing: refusing to open a data "
                "channel that anyone could connect to"
            )
        guard = self._guard = self._guard or ExitGuard()
        stdio = TransportFactory.create_stdio()
        guard.watch_stdin(stdio.readable_fd())
        control = Channel(
            EofFirst(stdio, self._stdin_closed),
            LineDelimitedFraming(limits.max_line_length),
            self.control_codec or JsonCodec(),
            name="control channel",
            max_concurrent_handlers=self.max_concurrent_handlers,
        )
        self._install(control, "control")
        control._on_reserved_request(
            METHOD_SHUTDOWN, self._on_shutdown, on_receive=self._shutdown_received
        )
        control._on_reserved_notification(
            METHOD_SHUTDOWN, self._on_shutdown_notification, on_receive=self._refuse_requests
        )
        self._emit("control_ready")
        server: PipeServer | None = None
        if data_path:
            # Listen before any task starts: a refusal exits with code 2 and a plain message.
            self._emit("data_setup", path=data_path)
            server = TransportFactory.create_pipe_server(unlink_on_listen=True)
            try:
                # The file is named by the path's UTF-8 bytes, whatever this locale's encoding.
                await server.listen(os.fsdecode(data_path.encode("utf-8")))
            except (AddressInUse, TransportError) as exc:
                _die(f"cannot open the data channel: {exc}")
            guard.on_hard_exit(server.remove_socket_file)
            self._emit("data_listening", path=data_path)
        guard.start()
        try:
            async with anyio.create_task_group() as task_group, control:
                self._task_group, self._control = task_group, control
                if self._handler_exit is not None:  # a handler's sys.exit(), already
                    task_group.cancel_scope.cancel()
                if server is not None:
                    task_group.start_soon(self._accept_loop, server, limits.max_frame_size)
                task_group.start_soon(self._watch_exit, guard)
                with contextlib.suppress(ChannelClosed):  # stdin already at EOF: parent gone
                    await control.notify(METHOD_READY, ready_params(data_path or None))
                if not data_path:
                    self._emit("ready")
                await control.wait_closed()  # stdin EOF, a signal, or a graceful stop
                if guard.reason is None:  # not a signal nor a shutdown: the parent is gone
                    if control.write_failed:
                        guard.exit_due(
                            "stdout closed", ShutdownReason.STDOUT_CLOSED, parent_gone=True
                        )
                    else:
                        guard.exit_due("stdin closed", ShutdownReason.STDIN_EOF, parent_gone=True)
                assert guard.cause is not None
                self._shutting_down(guard.cause)
                task_group.cancel_scope.cancel()
        finally:
            if server is not None:
                with anyio.CancelScope(shield=True):
                    await server.aclose()
            self._emit("stopped")

    # -- data channel -------------------------------------------------------------------------

    async def _accept_loop(self, server: PipeServer, max_frame_size: int) -> None:
        assert self._task_group is not None
        while True:
            transport = await server.accept()
            self._emit("data_connected")
            self._task_group.start_soon(self._serve_connection, transport, max_frame_size)

    async def _serve_connection(self, transport: SocketTransport, max_frame_size: int) -> None:
        framing = LengthPrefixedFraming(max_frame_size)
        try:
            decoder = await authenticate(
                transport,
                framing,
                token=self._token,
                worker_id=self.worker_id,
                timeout=self.hello_timeout,
                already_authenticated=self._has_data_channel,
                on_accept=self._accepted,
            )
            if decoder is None:
                return
            channel = Channel(
                transport,
                framing,
                self.data_codec or MessagePackCodec(),
                name="data channel",
                max_concurrent_handlers=self.max_concurrent_handlers,
                decoder=decoder,
            )
            self._install(channel, "data")
            channel._on_reserved_request(METHOD_HELLO, hello_again)
            channel._on_reserved_request(METHOD_SHUTDOWN, shutdown_on_data)
            async with channel:
                await channel.wait_closed()
        finally:
            if self._data is not None and self._data.transport is transport:
                self._data = None
            await transport.aclose()

    def _has_data_channel(self) -> bool:
        return self._data is not None and not self._data.closed

    def _accepted(self) -> None:
        first_time = not self._ready_sent
        self._ready_sent = True
        self._emit("data_ready")
        if first_time:
            self._emit("ready")

    # -- helpers ------------------------------------------------------------------------------

    def _install(self, channel: Channel, which: str) -> None:
        self._handlers.install(channel, which)
        for (via, method), window in self._input_windows.items():
            if via == which:
                channel.set_input_window(method, window)
        channel.send_tracebacks = self._send_tracebacks
        channel.on_handler_exit = self._exit_from_handler
        if self.log_handler_errors:
            channel.on_handler_error = functools.partial(write_failure, which)
        if which == "data":
            self._data = channel

    def _exit_from_handler(self, exc: BaseException) -> bool:
        """A handler called sys.exit(): the worker stops at once and exits with its code, as a
        script does (not with the task groups' traceback, nor, on trio, with code 1)."""
        if not isinstance(exc, SystemExit):
            return False
        if self._handler_exit is None:
            self._handler_exit = exc
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        return True

    def _emit(self, event: str, **info: Any) -> None:
        self._hooks.emit(event, **info)


def _die(message: str) -> NoReturn:
    print(f"aspect-ipc worker: {message}", file=sys.stderr, flush=True)
    raise SystemExit(_EXIT_USAGE)
