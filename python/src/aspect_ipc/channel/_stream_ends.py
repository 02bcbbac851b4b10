"""The application's ends of a stream (spec 13): :class:`StreamReader` takes items (an async
iterator), :class:`StreamWriter` sends them; both wait on the stream's state in
:mod:`.._streams` and wake when the reader task changes it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import anyio
import anyio.lowlevel

from .._stream_messages import STREAM_KEY
from .._streams import WAIT, Consumer, EndOfStream, Producer, StreamTable
from ..errors import RemoteError
from ._slots import current_slot

__all__ = ["RequestStreams", "StreamReader", "StreamWriter", "current_streams", "send_yields"]


async def _wait(stream: Consumer | Producer) -> None:
    event = anyio.Event()
    stream.on_change = event.set
    # In a handler of the peer's request: waiting for the peer's items or credit, it gives its
    # place among the running handlers up, as it does waiting for an answer (spec 4.5).
    slot = current_slot.get()
    if slot is not None:
        slot.waiting()
    try:
        await event.wait()  # cancellable: a cancelled reader or writer stops at once (13.6)
    finally:
        stream.on_change = None
        if slot is not None:
            slot.answered()


async def _cancelled_first() -> None:
    """A handler whose request was cancelled sees the cancellation, not the stream's -32002
    (13.6): its scope was cancelled at the same time the stream failed."""
    await anyio.lowlevel.checkpoint_if_cancelled()


class StreamReader:
    """The consuming end of a stream: ``async for item in reader``.

    Taking an item grants credit back to the producer as spec 13.3 says. At a normal end the loop
    stops (``final`` then holds an output stream's final value); an error end raises it.
    """

    def __init__(
        self, table: StreamTable, stream: Consumer, flush: Callable[[], Awaitable[None]]
    ) -> None:
        self._table, self._stream, self._flush = table, stream, flush
        self.final: Any = None
        """An output stream's final value (the request's result), once the loop has ended."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                value = self._table.take(self._stream)
            except EndOfStream as end:
                self.final = end.value
                raise StopAsyncIteration from None
            except Exception:
                await _cancelled_first()
                raise
            if value is not WAIT:
                if self._table.outbox:
                    await self._flush()  # the credit grant this take made
                return value
            await _wait(self._stream)


class StreamWriter:
    """The producing end of a stream: ``await writer.send(item)`` waits for credit (13.3)."""

    def __init__(
        self,
        table: StreamTable,
        stream: Producer,
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self._table, self._stream, self._send = table, stream, send

    async def send(self, item: Any) -> None:
        """Send one item, waiting while the consumer has granted no credit.

        Raises the stream's error once it has failed or ended (``-32011`` when the request was
        answered, ``-32002`` when it was cancelled), the channel's close reason when it closed,
        and CodecError/SizeLimitError for an item that cannot be sent (the stream stays open).
        """
        table, stream = self._table, self._stream
        try:
            while table.send(stream, item) is WAIT:
                await _wait(stream)
        except Exception:
            await _cancelled_first()
            raise
        message = table.outbox.pop()  # the item just made; sent by itself to catch its errors
        try:
            await self._send(message)
        except Exception:
            table.unsend(stream)
            raise


class RequestStreams:
    """The streams of the request whose handler runs in this task (:func:`current_streams`)."""

    def __init__(
        self, method: str, reader: StreamReader | None, writer: StreamWriter | None
    ) -> None:
        self._method, self._reader, self._writer = method, reader, writer

    @property
    def input(self) -> StreamReader:
        """The input stream: ``async for item in current_streams().input``.

        Raises RemoteError -32602 (the caller's answer) when the request opened none."""
        if self._reader is None:
            raise _missing(self._method, "an input", "in")
        return self._reader

    @property
    def output(self) -> StreamWriter:
        """The output stream: ``await current_streams().output.send(item)``.

        Raises RemoteError -32602 (the caller's answer) when the request opened none."""
        if self._writer is None:
            raise _missing(self._method, "an output", "out")
        return self._writer

    @property
    def has_input(self) -> bool:
        """Whether the request opened an input stream."""
        return self._reader is not None

    @property
    def has_output(self) -> bool:
        """Whether the request opened an output stream."""
        return self._writer is not None


def _missing(method: str, what: str, member: str) -> RemoteError:
    return RemoteError(
        -32602, f"Invalid params: {method} needs {what} stream ({STREAM_KEY}.{member})"
    )


_NO_STREAMS = RequestStreams("", None, None)
_current: ContextVar[RequestStreams] = ContextVar("current_streams", default=_NO_STREAMS)


def current_streams() -> RequestStreams:
    """The streams of the request being handled in this task (spec 13).

    ``current_streams().input`` is the input stream (an async iterator of items);
    ``current_streams().output.send(item)`` sends on the output stream. Outside a handler, or
    for a request that opened no stream, both raise RemoteError -32602, which answers the
    request with "Invalid params: <method> needs an input stream ($/stream.in)".
    """
    streams = _current.get()
    if streams is _NO_STREAMS:
        from ._dispatch import current_request  # a cycle at import time: _dispatch uses us

        request = current_request.get()
        return RequestStreams(request.method if request else "this method", None, None)
    return streams


def set_current_streams(streams: RequestStreams) -> None:
    _current.set(streams)


async def send_yields(items: Any) -> None:
    """An async generator handler: each yield is an item of the output stream; result null."""
    async with aclosing(items):
        writer = current_streams().output  # a request without one: -32602 before any item
        async for item in items:
            await writer.send(item)
