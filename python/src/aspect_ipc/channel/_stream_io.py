"""Streams on a channel (spec 13): the I/O around the sans-IO :class:`StreamTable`.

The reader hands every ``$/stream/*`` message here at once, in arrival order (never queued behind
notification handlers), and sends what the table emits (credit, ``$/cancelRequest``, ``-32010``
answers) before it reads on. Requests of ours that open streams are made here
(:meth:`StreamIO.stream`, :meth:`StreamIO.request_streaming`); the peer's are accepted by
:mod:`._dispatch`, which calls :meth:`StreamIO._accept_streams`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

import anyio

from .. import _fork
from .._stream_messages import (
    DEFAULT_WINDOW,
    STREAM_KEY,
    DescriptorError,
    check_input_window,
    check_output_window,
    descriptor,
    parse_opening,
)
from .._streams import Consumer, Producer, StreamError, StreamTable, _Call
from ..errors import ChannelClosed, CodecError, FramingError, RemoteError, fresh
from ..framing import LineDelimitedFraming
from ..jsonrpc import ErrorCode, MessageId, Request, error_for_exception
from ._outgoing import Outgoing
from ._pending import Pending
from ._stream_ends import RequestStreams, StreamReader, StreamWriter

__all__ = ["StreamCall", "StreamIO"]

Items = AsyncIterable[Any] | Iterable[Any]


class StreamIO(Outgoing):
    """Streams: the table, the reader's part, and the requester's calls."""

    def _stream_table(self) -> StreamTable:
        table = self._streams
        if table is None:
            # Errors name the channel as spec 13.8 does ("on data"): control is the channel of
            # lines, data the channel of frames.
            kind = "control" if isinstance(self.framing, LineDelimitedFraming) else "data"
            table = self._streams = StreamTable(kind)
            table.on_protocol_error = self._stream_protocol_error
        return table

    async def _flush_streams(self) -> None:
        table = self._streams
        if table is None:
            return
        outbox = table.outbox
        while outbox:
            await self._send_quietly(outbox.pop(0))

    def _flush_soon(self) -> None:
        """Flush from a place that cannot wait (a cancelled caller's cleanup)."""
        if self._task_group is not None and not self._closed:
            self._spawn(self._flush_streams)

    async def _on_stream_message(self, method: str, params: Any) -> None:
        self._stream_table().feed(method, params)
        await self._flush_streams()

    def _stream_protocol_error(self, msg_id: MessageId, mine: bool, error: StreamError) -> None:
        if mine:  # our request fails now; its late response is dropped (13.5)
            waiter = self._pending.pop(msg_id, None)
            if waiter is not None:
                waiter.error = error
                waiter.event.set()
        else:  # the table answered -32010: cancel the handler, whose own answer is dropped
            scope = self._running.get(msg_id)
            if scope is not None:
                scope.cancel()

    # -- the peer's requests --------------------------------------------------------------------

    def set_input_window(self, method: str, window: int | None) -> None:
        """The input window (1..1024 items) of ``method``'s handler: the credit it grants at once
        when a request opens an input stream (13.3); None restores the default (16). Raises
        ValueError naming the handler for a value out of range."""
        windows = self._stream_table().in_windows
        if window is None:
            windows.pop(method, None)
        else:
            windows[method] = check_input_window(method, window)

    async def _accept_streams(self, request: Request) -> tuple[Request, RequestStreams] | None:
        """Open the streams of a peer's request; None when it was answered (-32602, -32009)."""
        try:
            opening = parse_opening(request.params)
            assert opening is not None
            table = self._stream_table()
            call = table.accept(request.id, opening, table.in_windows.get(request.method))
        except DescriptorError as exc:
            await self._send_quietly(
                self.protocol.error_response(
                    request.id, ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}"
                )
            )
            return None
        except RemoteError as exc:
            await self._send_quietly(
                self.protocol.error_response(request.id, *error_for_exception(exc))
            )
            return None
        await self._flush_streams()  # the input window's grant, before the handler runs (13.3)
        return Request(request.id, request.method, opening.params), self._ends(request.method, call)

    def _ends(self, method: str, call: _Call) -> RequestStreams:
        table = self._stream_table()
        inp, out = call.streams.get("in"), call.streams.get("out")
        reader = (
            StreamReader(table, inp, self._flush_streams) if isinstance(inp, Consumer) else None
        )
        writer = StreamWriter(table, out, self._send_item) if isinstance(out, Producer) else None
        return RequestStreams(method, reader, writer)

    def _stream_answered(self, msg_id: MessageId) -> bool:
        """The handler finished; False when the stream layer has already answered (-32010)."""
        table = self._streams
        return table is None or table.answer(msg_id)

    # -- our requests ----------------------------------------------------------------------------

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Items | None = None,
    ) -> StreamCall:
        """Call ``method`` with an output stream: ``async for item in channel.stream(...)``.

        ``window`` (1..1024) is how many items may be on their way or buffered here. ``input``
        (an iterable or async iterable) opens an input stream too, sent as the peer grants
        credit. Breaking out of the loop cancels the request (``$/cancelRequest``); after a
        complete loop, :attr:`StreamCall.result` is the final value. There is no deadline: wrap
        the loop in ``anyio.fail_after`` for one.
        """
        check_output_window(window)
        return StreamCall(self, method, params, window, input)

    async def request_streaming(
        self, method: str, params: dict[str, Any] | None = None, *, input: Items
    ) -> Any:
        """Call ``method`` sending ``input`` (an iterable or async iterable) as its input
        stream; return the result once the peer has answered.

        An exception raised by ``input`` ends the stream with ``$/stream/error`` (-32000, its
        text); the peer's handler then decides the answer. The peer may answer before it has
        read everything: the rest of ``input`` is not read.
        """
        request_id, waiter, call = await self._open_streams(method, params, None, True)
        pump = self._start_pump(call, input)
        answered = False
        try:
            await waiter.event.wait()
            answered = True
        finally:
            pump.cancel()
            if not answered:
                self._abandon(request_id)
            self._stream_table().forget(request_id)
        if call.send_failure is not None:  # the caller's item, not the peer's doing
            raise fresh(call.send_failure) from waiter.error
        if waiter.error is not None:
            raise fresh(waiter.error)
        return waiter.result

    async def _open_streams(
        self, method: str, params: dict[str, Any] | None, window: int | None, has_input: bool
    ) -> tuple[MessageId, Pending, _Call]:
        if self._closed:
            raise fresh(self._close_reason)
        if params is not None and not isinstance(params, dict):
            raise ValueError(
                f"the params of a stream call ({method!r}) must be a dict or None, not "
                f"{type(params).__name__}: the stream's descriptor travels in them as "
                f"{STREAM_KEY!r} (spec 13.1); name positional values, e.g. {{'values': [...]}}"
            )
        if params is not None and STREAM_KEY in params:
            raise ValueError(
                f"the params of a stream call ({method!r}) hold {STREAM_KEY!r} already: that "
                "member is the stream's descriptor, which the call adds itself (spec 13.1)"
            )
        stream_params = {**(params or {}), STREAM_KEY: descriptor(window, has_input)}
        message = self.protocol.request(method, stream_params)
        request_id = message["id"]
        waiter = Pending()
        waiter.stream = True
        self._pending[request_id] = waiter
        call = self._stream_table().open(request_id, window, has_input)
        try:
            await self._outbox.put(self._prepare(message), waiter.event)
        except BaseException:
            self._pending.pop(request_id, None)
            self._stream_table().forget(request_id)
            raise
        return request_id, waiter, call

    def _abandon(self, request_id: MessageId) -> None:
        """Our caller gave up (a break, a cancel, an error): cancel the request (13.6)."""
        if self._pending.pop(request_id, None) is not None:
            self._stream_table().cancel(request_id)
            self._flush_soon()

    async def _send_item(self, message: dict[str, Any]) -> None:
        """Send a stream item: a notification (spec 12.1: "notification of N bytes")."""
        await self._send(message, "notification")

    def _start_pump(self, call: _Call, items: Items) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        self._spawn(self._pump, scope, call, items)
        return scope

    async def _pump(self, scope: anyio.CancelScope, call: _Call, items: Items) -> None:
        producer = call.streams["in"]
        assert isinstance(producer, Producer)
        table = self._stream_table()
        writer = StreamWriter(table, producer, self._send_item)
        # An input that reads ahead on a thread of its own (the blocking API's) is told before
        # each item how many the stream may send now, so that it reads no further than that.
        want: Callable[[int], None] | None = getattr(items, "want", None)
        with scope:
            try:
                if isinstance(items, AsyncIterable):
                    iterator = aiter(items)
                    while True:
                        if want is not None:
                            want(producer.credit)
                        try:
                            item = await anext(iterator)
                        except StopAsyncIteration:
                            break
                        await writer.send(item)
                else:
                    for item in items:
                        await writer.send(item)
            except (StreamError, ChannelClosed):
                return  # answered, cancelled or closed: nothing more goes out (13.6)
            except (CodecError, FramingError) as exc:  # an item this side cannot send
                call.send_failure = exc
                error = RemoteError(
                    ErrorCode.HANDLER_ERROR, f"input stream failed: an item cannot be sent: {exc}"
                )
                table.end_input(producer, error)
            except Exception as exc:
                error = RemoteError(ErrorCode.HANDLER_ERROR, f"input stream failed: {exc!r}")
                table.end_input(producer, error)
            else:
                table.end_input(producer)
            await self._flush_streams()


class StreamCall:
    """An output-stream call (:meth:`StreamIO.stream`): iterate it once for the items; then
    :attr:`result` is the final value.

    Leaving the loop early cancels the request (``$/cancelRequest``): at once with
    ``async with channel.stream(...) as call:`` or :meth:`aclose`, else when the call is dropped
    (``async for item in channel.stream(...): break`` drops it right away).
    """

    def __init__(
        self,
        channel: StreamIO,
        method: str,
        params: dict[str, Any] | None,
        window: int,
        input: Items | None,
    ) -> None:
        self._channel, self._method, self._params = channel, method, params
        self._window, self._input = window, input
        self._request_id: MessageId | None = None
        self._reader: StreamReader | None = None
        self._call: _Call | None = None
        self._pump: anyio.CancelScope | None = None
        self._finished = False
        self._reading = False  # a task is in __anext__
        self._generation = _fork.generation
        self.result: Any = None
        """The request's result, the stream's final value (13.2), once the loop has ended."""

    def __aiter__(self) -> StreamCall:
        return self

    async def __anext__(self) -> Any:
        if self._reading:  # a second task would wait for a wake-up that goes to the first
            raise RuntimeError(
                f"the stream of {self._method!r} is already being read by another task: read "
                "a stream from one task (hand its items on through a memory object stream)"
            )
        if self._finished:
            raise StopAsyncIteration
        self._reading = True
        try:
            if self._reader is None:
                await self._open()
            assert self._reader is not None
            return await self._reader.__anext__()
        except StopAsyncIteration:
            assert self._reader is not None
            self.result = self._reader.final
            self._finish(cancel=False)
            self._raise_send_failure(None)
            raise
        except BaseException as exc:
            self._finish(cancel=True)  # an error end (nothing to cancel), or our caller's cancel
            if isinstance(exc, Exception):
                self._raise_send_failure(exc)
            raise
        finally:
            self._reading = False

    async def _open(self) -> None:
        channel = self._channel
        request_id, _, call = await channel._open_streams(
            self._method, self._params, self._window, self._input is not None
        )
        self._request_id, self._call = request_id, call
        if self._input is not None:
            self._pump = channel._start_pump(call, self._input)
        out = call.streams["out"]
        assert isinstance(out, Consumer)
        self._reader = StreamReader(channel._stream_table(), out, channel._flush_streams)

    def _raise_send_failure(self, answer: Exception | None) -> None:
        """An input item that could not be sent is the caller's error, whatever the peer then
        answered (``answer``, chained)."""
        failure = self._call.send_failure if self._call is not None else None
        if failure is not None:
            raise fresh(failure) from answer

    def _finish(self, *, cancel: bool) -> None:
        if self._finished:
            return
        self._finished = True
        if self._pump is not None:
            self._pump.cancel()
        if self._request_id is not None:
            if cancel:
                self._channel._abandon(self._request_id)
            self._channel._stream_table().forget(self._request_id)

    async def aclose(self) -> None:
        """Stop reading: cancel the request if its stream has not ended."""
        self._finish(cancel=True)

    async def __aenter__(self) -> StreamCall:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._finish(cancel=True)

    def __del__(self) -> None:
        if self._generation == _fork.generation:  # a forked child's copy: the parent's to end
            self._finish(cancel=True)
