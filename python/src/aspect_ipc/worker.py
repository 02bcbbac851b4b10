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
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from .channel import Channel, Handler, HandlerTable, current_request
from .codecs import JsonCodec, MessagePackCodec
from .constants import (
    DEFAULT_HELLO_TIMEOUT,
    DEFAULT_MAX_FRAME_SIZE,
    ENV_DATA_PATH,
    ENV_MAX_FRAME_SIZE,
    ENV_NAMESPACE,
    ENV_TOKEN,
    ENV_WORKER_ID,
    METHOD_HELLO,
    METHOD_READY,
    METHOD_SHUTDOWN,
    PROTOCOL_VERSION,
    SDK_NAME,
    SDK_VERSION,
)
from .errors import (
    AddressInUse,
    ChannelClosed,
    CodecError,
    FramingError,
    IpcError,
    TransportError,
    WorkerUnavailable,
)
from .framing import LengthPrefixedDecoder, LengthPrefixedFraming, LineDelimitedFraming
from .jsonrpc import ErrorCode, JsonRpcProtocol, Request
from .transports import PipeServer, SocketTransport, TransportFactory

__all__ = ["Worker", "WorkerEvent"]

F = TypeVar("F", bound=Handler)

WorkerEvent = str
"""Lifecycle events, in order: ``control_ready``, ``data_setup``, ``data_listening``,
``data_connected``, ``data_ready``, ``ready``, then ``shutting_down`` and ``stopped``."""

_EXIT_USAGE = 2


class Worker:
    """A worker process: control handlers on stdio, data handlers on the data socket.

    Args:
        max_concurrent_handlers: requests run at once per channel before reading pauses.
        hello_timeout: seconds a data connection has to send ``$/hello``.
        shutdown_timeout: seconds in-flight requests get to finish on :meth:`shutdown`.
    """

    def __init__(
        self,
        *,
        max_concurrent_handlers: int = 256,
        hello_timeout: float = DEFAULT_HELLO_TIMEOUT,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.max_concurrent_handlers = max_concurrent_handlers
        self.hello_timeout = hello_timeout
        self.shutdown_timeout = shutdown_timeout
        self.worker_id = os.environ.get(ENV_WORKER_ID, "")
        self.namespace = os.environ.get(ENV_NAMESPACE, "")
        self._handlers = HandlerTable()
        self._listeners: dict[str, list[Callable[[dict[str, Any]], Any]]] = {}
        self._control: Channel | None = None
        self._data: Channel | None = None
        self._task_group: TaskGroup | None = None
        self._stopping = False
        self._ready_sent = False
        self._token = ""

    # -- declaring handlers -------------------------------------------------------------------

    def control(self, method: str) -> Callable[[F], F]:
        """Decorator: answer ``method`` requests on the control channel."""
        return self._decorator("control", method, notification=False)

    def data(self, method: str) -> Callable[[F], F]:
        """Decorator: answer ``method`` requests on the data channel."""
        return self._decorator("data", method, notification=False)

    def control_notification(self, method: str) -> Callable[[F], F]:
        """Decorator: handle ``method`` notifications on the control channel."""
        return self._decorator("control", method, notification=True)

    def data_notification(self, method: str) -> Callable[[F], F]:
        """Decorator: handle ``method`` notifications on the data channel."""
        return self._decorator("data", method, notification=True)

    def on(self, event: WorkerEvent) -> Callable[[F], F]:
        """Decorator: call ``callback(info)`` on a lifecycle event (see :data:`WorkerEvent`)."""

        def register(callback: F) -> F:
            self._listeners.setdefault(event, []).append(callback)
            return callback

        return register

    def _decorator(self, channel: str, method: str, *, notification: bool) -> Callable[[F], F]:
        self._handlers.check(channel, method)

        def register(handler: F) -> F:
            live = self._control if channel == "control" else self._data
            self._handlers.add(channel, method, handler, notification=notification, live=live)
            return handler

        return register

    # -- talking to the parent ----------------------------------------------------------------

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call the parent on the control channel."""
        return await self._channel("control").request(method, params, timeout=timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Notify the parent on the control channel."""
        await self._channel("control").notify(method, params)

    async def request_via_data(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call the parent on the data channel."""
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
            self._task_group.start_soon(self._graceful_stop, None)

    # -- running ------------------------------------------------------------------------------

    def run(self, *, backend: str = "asyncio") -> None:
        """Serve until shut down or the parent goes away, then exit the process with code 0."""
        anyio.run(self.serve, backend=backend)
        sys.exit(0)

    async def serve(self) -> None:
        """Serve until shut down or until stdin reaches EOF (the parent is gone)."""
        data_path = os.environ.get(ENV_DATA_PATH, "")
        self._token = os.environ.pop(ENV_TOKEN, "")  # children must not inherit it
        max_frame_size = _max_frame_size()
        if data_path and not self._token:
            _die(
                f"{ENV_DATA_PATH} is set but {ENV_TOKEN} is missing: refusing to open a data "
                "channel that anyone could connect to"
            )
        control = Channel(
            TransportFactory.create_stdio(),
            LineDelimitedFraming(),
            JsonCodec(),
            name="control channel",
            max_concurrent_handlers=self.max_concurrent_handlers,
        )
        self._install(control, "control")
        control._on_reserved_request(METHOD_SHUTDOWN, self._on_shutdown)
        self._emit("control_ready")
        server: PipeServer | None = None
        if data_path:
            # Listen before any task starts: a refusal exits with code 2 and a plain message.
            self._emit("data_setup", path=data_path)
            server = TransportFactory.create_pipe_server(unlink_on_listen=True)
            try:
                await server.listen(data_path)
            except (AddressInUse, TransportError) as exc:
                _die(f"cannot open the data channel: {exc}")
            self._emit("data_listening", path=data_path)
        try:
            async with anyio.create_task_group() as task_group, control:
                self._task_group, self._control = task_group, control
                if server is not None:
                    task_group.start_soon(self._accept_loop, server, max_frame_size)
                task_group.start_soon(self._watch_signals)
                with contextlib.suppress(ChannelClosed):  # stdin already at EOF: parent gone
                    await control.notify(METHOD_READY, _ready_params(data_path or None))
                if not data_path:
                    self._emit("ready")
                await control.wait_closed()  # stdin EOF, or a graceful stop closing it
                self._stopping = True
                self._emit("shutting_down")
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
            decoder = await self._authenticate(transport, framing)
            if decoder is None:
                return
            channel = Channel(
                transport,
                framing,
                MessagePackCodec(),
                name="data channel",
                max_concurrent_handlers=self.max_concurrent_handlers,
                decoder=decoder,
            )
            self._install(channel, "data")
            async with channel:
                await channel.wait_closed()
        finally:
            if self._data is not None and self._data.transport is transport:
                self._data = None
            await transport.aclose()

    async def _authenticate(
        self, transport: SocketTransport, framing: LengthPrefixedFraming
    ) -> LengthPrefixedDecoder | None:
        """Read the first frame and check it is a valid ``$/hello`` (spec 7.4)."""
        codec, decoder = MessagePackCodec(), framing.decoder()
        frame: bytes | bytearray | None = None
        with anyio.move_on_after(self.hello_timeout):
            try:
                while (frame := decoder.next_frame()) is None:
                    data = await transport.receive()
                    if not data:
                        return None
                    decoder.feed(data)
            except (FramingError, TransportError):
                return None
        if frame is None:
            return None  # no $/hello within the hello timeout
        try:
            message = JsonRpcProtocol.parse(codec.decode(frame))
        except CodecError:
            message = None
        reply_id = message.id if isinstance(message, Request) else None
        params = message.params if isinstance(message, Request) else None
        if not (isinstance(message, Request) and message.method == METHOD_HELLO):
            await self._refuse(transport, framing, reply_id, "unauthorized: $/hello expected first")
            return None
        token = params.get("token") if isinstance(params, dict) else None
        expected = self._token.encode()
        given = token.encode() if isinstance(token, str) else b""
        if not hmac.compare_digest(given, expected):
            await self._refuse(transport, framing, reply_id, "unauthorized")
            return None
        assert isinstance(params, dict)
        if params.get("protocol") != PROTOCOL_VERSION:
            await self._refuse(
                transport,
                framing,
                reply_id,
                f"protocol version mismatch: worker speaks {PROTOCOL_VERSION}, "
                f"parent speaks {params.get('protocol')!r}",
                ErrorCode.PROTOCOL_VERSION_MISMATCH,
                {"supported": [PROTOCOL_VERSION]},
            )
            return None
        if self._data is not None and not self._data.closed:
            await self._refuse(transport, framing, reply_id, "data channel already connected")
            return None
        first_time = not self._ready_sent
        self._ready_sent = True
        self._emit("data_ready")
        if first_time:
            self._emit("ready")
        result = {"protocol": PROTOCOL_VERSION, "workerId": self.worker_id, "pid": os.getpid()}
        await transport.send_all(
            framing.encode_parts(codec.encode(JsonRpcProtocol.response(message.id, result)))
        )
        return decoder

    @staticmethod
    async def _refuse(
        transport: SocketTransport,
        framing: LengthPrefixedFraming,
        reply_id: Any,
        text: str,
        code: int = ErrorCode.UNAUTHORIZED,
        data: Any = None,
    ) -> None:
        reply = (
            JsonRpcProtocol.error_response(reply_id, code, text, data)
            if data
            else (JsonRpcProtocol.error_response(reply_id, code, text))
        )
        with contextlib.suppress(IpcError):
            await transport.send_all(framing.encode_parts(MessagePackCodec().encode(reply)))

    # -- shutdown -----------------------------------------------------------------------------

    async def _on_shutdown(self, params: Any) -> None:
        timeout = (
            params.get("timeout", self.shutdown_timeout)
            if isinstance(params, dict)
            else (self.shutdown_timeout)
        )
        request = current_request.get()
        await self._drain(float(timeout), keep=request.id if request else None)
        assert self._task_group is not None
        self._task_group.start_soon(self._close_after, request.id if request else None)

    async def _graceful_stop(self, keep: Any) -> None:
        await self._drain(self.shutdown_timeout, keep=keep)
        await self._close_after(None)

    async def _drain(self, timeout: float, *, keep: Any) -> None:
        self._stopping = True
        self._emit("shutting_down")
        async with anyio.create_task_group() as task_group:
            for channel, keep_id in ((self._control, keep), (self._data, None)):
                if channel is not None:
                    task_group.start_soon(functools.partial(channel.drain, timeout, keep=keep_id))

    async def _close_after(self, request_id: Any) -> None:
        """Close the control channel once ``request_id`` (if any) has been answered."""
        control = self._control
        if control is None:
            return
        with anyio.move_on_after(5.0):
            await control.wait_requests(lambda: request_id not in control._running)
        control.close(ChannelClosed("the worker shut down"))

    async def _watch_signals(self) -> None:
        wanted = [
            sig
            for sig, default in (
                (signal.SIGTERM, signal.SIG_DFL),
                (signal.SIGINT, signal.default_int_handler),
            )
            if signal.getsignal(sig) is default  # a program's own handler or SIG_IGN wins
        ]
        if not wanted:
            return
        with anyio.open_signal_receiver(*wanted) as signals:
            async for _ in signals:
                if self._control is not None:
                    self._control.close(ChannelClosed("the worker received a signal"))
                return

    # -- helpers ------------------------------------------------------------------------------

    def _install(self, channel: Channel, which: str) -> None:
        self._handlers.install(channel, which)
        if which == "data":
            self._data = channel

    def _emit(self, event: str, **info: Any) -> None:
        for callback in self._listeners.get(event, ()):
            callback(info)


def _ready_params(data_path: str | None) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "sdk": SDK_NAME,
        "sdkVersion": SDK_VERSION,
        "language": "python",
        "pid": os.getpid(),
        "dataPath": data_path,
    }


def _max_frame_size() -> int:
    raw = os.environ.get(ENV_MAX_FRAME_SIZE, "")
    if not raw:
        return DEFAULT_MAX_FRAME_SIZE
    try:
        value = int(raw)
        LengthPrefixedFraming(value)
    except ValueError:
        _die(f"{ENV_MAX_FRAME_SIZE}={raw!r} is not a frame size between 1 and 2**32 - 1")
    return value


def _die(message: str) -> None:
    print(f"aspect-ipc worker: {message}", file=sys.stderr, flush=True)
    raise SystemExit(_EXIT_USAGE)
