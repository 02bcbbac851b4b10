"""The read loop on asyncio: the descriptor stays registered, answers complete in the callback.

The portable loop (:mod:`._inbound`) waits with ``anyio.wait_readable``, which on asyncio
registers the descriptor with the selector and unregisters it on every wait, and needs a trip
through the event loop from the readiness to the reader task and another to the caller. Here
the descriptor stays registered (``loop.add_reader``) while nothing is left to do, and the
readiness callback reads, cuts frames and completes the requests they answer on the spot: a
response costs one loop iteration between the bytes and the caller that awaits them.

Everything else (the peer's requests and notifications, stream messages, bad input, errors, the
end of input) needs to wait for something, so it goes to the read task, the "slow lane": the
callback hands over the message, unregisters the descriptor and wakes the task, which acts on the
message, then on every frame still in the decoder, and registers the descriptor again. While the
task works, nothing is read: the order of messages is kept, and a busy task (a full handler
pool) holds the peer back through the socket, exactly as the portable loop does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .._compiled import DECLINED, take_answers
from .._stream_messages import ITEM
from .._transport_impl import receive_failed, socket_of
from ..codecs import MessagePackCodec, decodes_split_frames
from ..errors import ChannelClosed, CodecError, FramingError, IpcError, TransportError
from ..framing import SMALL_FRAME, InPlaceDecoder, LengthPrefixedDecoder
from ..jsonrpc import InvalidMessage, JsonRpcProtocol, Notification, Request
from ._answer_poll import AnswerPoll
from ._outbox import Buffer

if TYPE_CHECKING:
    from ..transports import NowIO
    from ._inbound import Inbound

__all__ = ["FastReader"]

try:
    from sniffio import current_async_library_cvar as _LIBRARY
except ImportError:  # anyio then finds asyncio by its running loop, in callbacks too
    _LIBRARY = None  # type: ignore[assignment]

_RECEIVE_SIZE = 256 * 1024


class FastReader:
    """One channel's reader on asyncio (see the module docstring); :meth:`run` is the task."""

    def __init__(self, channel: Inbound, transport: NowIO) -> None:
        self._channel = channel
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._decoder = channel._decoder
        # Large frames go straight into their own buffer where both sides allow it (no copy).
        self._receive_into = getattr(transport, "receive_into_nowait", None)
        self._in_place: InPlaceDecoder | None = None
        self._chunk = memoryview(bytearray(_RECEIVE_SIZE))
        if isinstance(self._decoder, InPlaceDecoder) and self._receive_into is not None:
            self._in_place = self._decoder
            split_binaries = getattr(self._decoder, "split_binaries", None)
            if split_binaries is not None and decodes_split_frames(channel.codec):
                split_binaries()  # a large binary goes straight into the bytes decoded
        self._fd = -1
        self.watching = False
        """Whether the descriptor is registered with the loop: the callback reads, not the
        task."""
        # For the task: (frame, message) to act on first, then whatever the decoder holds.
        self._handed: deque[tuple[Buffer, Any]] = deque()
        self._failure: FramingError | None = None  # a framing error met by the callback
        self._end: IpcError | None = None  # the end of input (EOF or a transport error)
        self._wake: asyncio.Future[None] | None = None
        # The compiled core takes the answers among small frames straight from the decoder's
        # buffer (cut, decoded and classified in one call), where the codec would decode them
        # exactly so: MessagePack, no decode hook.
        self._answers: list[Any] = []
        self._take_answers: Callable[[Buffer, int, int], tuple[int, Any]] | None = None
        self._small: LengthPrefixedDecoder | None = None  # the decoder, when it does
        codec, decoder = channel.codec, self._decoder
        if (
            take_answers is not None
            and type(decoder) is LengthPrefixedDecoder
            and type(codec) is MessagePackCodec
            and codec.decode_hook is None
        ):
            self._take_answers = partial(take_answers, self._answers, DECLINED)
            self._small = decoder
        # With them, over a socket, a read of answers only is one call to the socket and one to
        # the core (see on_readable): the socket's own recv_into, no transport between.
        sock = socket_of(transport) if self._small is not None else None
        self._recv_into: Callable[[memoryview], int] | None = sock.recv_into if sock else None
        self._answer_poll = AnswerPoll(self, channel, sock)
        self._transport_name: str = getattr(transport, "name", channel.name)
        # Whether the decoder holds nothing (LengthPrefixedDecoder.idle), as last seen: then
        # the next read's bytes start a frame, and the core may take them where they lie.
        self._idle = self._recv_into is not None and self._small is not None and self._small.idle()

    async def run(self) -> IpcError:
        """Read until the input ends; return why it ended (the channel closes with it)."""
        channel = self._channel
        self._fd = self._transport.readable_fd()
        self._transport.add_close_callback(self._on_close)
        channel._outbox.waves = True  # this reader clears burst at each read: see Outbox
        # Set before the channel runs (the handshake does): a lone request without either
        # option then costs no call at all.
        polls = channel.busy_poll or channel.receive_wait
        channel._poll = self._answer_poll.poll if polls else None
        try:
            while True:
                # The slow lane: what the callback handed over, then every frame left.
                while self._handed:
                    frame, message = self._handed.popleft()
                    if message is _UNDECODED:  # decoded again, and answered as bad input
                        await channel._dispatch(frame)
                    else:
                        await channel._dispatch_message(frame, message)
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    await channel._bad_input(None, failure)
                    if failure.fatal:
                        return ChannelClosed(f"{channel.name}: {failure}")
                fatal = await self._drain()
                if fatal is not None:
                    return fatal
                if self._end is not None:
                    return self._end
                self._wake = self._loop.create_future()
                self._watch()
                await self._wake
        finally:
            channel._poll = None
            self._unwatch()

    async def _drain(self) -> IpcError | None:
        """Dispatch every whole frame in the decoder; a fatal framing error ends the read."""
        channel = self._channel
        decoder = self._decoder
        while True:
            try:
                frame = decoder.next_frame()
            except FramingError as exc:
                await channel._bad_input(None, exc)
                if exc.fatal:
                    return ChannelClosed(f"{channel.name}: {exc}")
                continue
            if frame is None:
                return None
            await channel._dispatch(frame)

    def _watch(self) -> None:
        if not self.watching and self._fd >= 0:
            self._loop.add_reader(self._fd, self.on_readable)
            self.watching = True

    def _unwatch(self) -> None:
        if self.watching:
            self.watching = False
            self._loop.remove_reader(self._fd)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _on_close(self) -> None:
        # The transport is closing: the descriptor is about to be closed, never watched again.
        if self._end is None:
            self._end = ChannelClosed(f"{self._channel.name}: the channel was closed")
        self._unwatch()
        self._fd = -1

    def _hand_over(self) -> None:
        """Give the rest to the task: stop reading until it has done its part."""
        self._unwatch()

    def on_readable(self) -> None:
        # Most reads of a parent's data channel bring answers only, and find the decoder idle
        # (nothing buffered): the core takes the answers from the bytes received, where they
        # lie, and their callers are woken, in a handful of calls. What is left (anything else,
        # a frame cut short) goes to the decoder, and on as any read does.
        try:
            known: Any = DECLINED
            received = False  # read already, and the core took what it could
            recv_into, small, take = self._recv_into, self._small, self._take_answers
            if self._idle and recv_into is not None and self._channel.tracer is None:
                assert small is not None and take is not None  # _idle is never set without them
                channel = self._channel
                channel._outbox.burst = False  # a new read: see Outbox.waves
                try:
                    count = recv_into(self._chunk)
                except BlockingIOError:  # a spurious wake-up
                    return
                except OSError as exc:
                    self._stop_reading(receive_failed(self._transport_name, exc))
                    return
                if not count:
                    self._at_end()
                    self._stop_reading(None)
                    return
                if channel.metrics is not None:
                    channel.metrics.bytes_in += count
                chunk = self._chunk[:count]
                end, known = take(chunk, 0, min(SMALL_FRAME, small.max_frame_size))
                if self._answers:
                    channel._complete_answers(self._answers)
                if end == count:
                    return
                small.feed(chunk[end:])  # the rest: from the frame the core stopped at
                received = True
            self._idle = False  # until the decoder says so again, below
            # A loop callback runs in no task, where sniffio cannot tell the library; anyio
            # asks it when a task or a cancel scope is made (a request started here). Say it.
            token = _LIBRARY.set("asyncio") if _LIBRARY is not None else None
            try:
                if not received and not self._read():
                    return
                self._answer_buffered(known, received)
                self._idle = small is not None and take is not None and small.idle()
            finally:
                if token is not None and _LIBRARY is not None:
                    _LIBRARY.reset(token)
        except Exception as exc:  # a bug must not leave a callback spinning on the selector
            self._channel._log.exception("%s: the reader failed", self._channel.name)
            self._end = ChannelClosed(f"{self._channel.name}: the reader failed: {exc!r}")
            self._hand_over()

    def _read(self) -> bool:
        """Read what is there into the decoder; False: nothing to do (nothing was there, or
        the input ended: the task takes over)."""
        channel = self._channel
        channel._outbox.burst = False  # a new read: see Outbox.waves
        try:
            if not self._receive():
                return False
        except TransportError as exc:
            self._stop_reading(exc)
            return False
        if self._end is not None:  # end of input: the task drains what is left
            self._stop_reading(None)
            return False
        return True

    def _stop_reading(self, failure: TransportError | None) -> None:
        """The input failed (``failure``) or ended (None, ``_end`` set): the task takes over,
        drains what is left and returns why it ended."""
        if failure is not None:
            self._end = ChannelClosed(f"{self._channel.name}: {failure}")
        self._hand_over()

    def _answer_buffered(self, known: Any, taken: bool) -> None:
        """Act on the frames in the decoder, answers first. ``taken``: the core has taken the
        answers in front already, and ``known`` is the value of the frame it stopped at, if
        it decoded it (else DECLINED)."""
        channel = self._channel
        decoder = self._decoder
        codec = channel.codec
        tracer = channel.tracer
        recycle = channel._recycle
        small = self._small if tracer is None else None  # a tracer sees every message
        take = self._take_answers
        streams = channel._streams  # None until a stream is made: its items go the general way
        while True:
            if small is not None and take is not None and not taken:
                known = small.take_small(take, DECLINED)
                if self._answers:
                    channel._complete_answers(self._answers)
            taken = False
            try:
                frame = decoder.next_frame()
            except FramingError as exc:
                self._failure = exc
                self._hand_over()
                return
            if frame is None:
                return
            try:
                # The core decoded the frame it stopped at, unless it declined it.
                value = codec.decode(frame) if known is DECLINED else known
            except CodecError:  # rare: the task decodes it again, and answers the error
                self._handed.append((frame, _UNDECODED))
                self._hand_over()
                return
            known = DECLINED
            if tracer is not None:
                tracer.received(value, len(frame) + channel._frame_overhead)
            if (
                type(value) is dict
                and len(value) == 3  # so exactly jsonrpc, method and params: a notification
                and value.get("method") == ITEM
                and value.get("jsonrpc") == "2.0"
                and streams is not None
                and streams.feed_item(value.get("params"))
            ):
                # An output stream's next item, the commonest message after answers: taken
                # without a message object (anything else about it goes the general way).
                if recycle is not None:
                    recycle(frame)
                if channel.metrics is not None:
                    channel.metrics.notifications_received += 1
                continue
            message = JsonRpcProtocol.parse(value)
            if recycle is not None and type(message) is not InvalidMessage:
                recycle(frame)  # decoded: nothing refers to the frame's bytes any more
            if channel._answer(message):
                continue
            if isinstance(message, Request) and channel._start_request_now(message):
                continue
            if isinstance(message, Notification) and channel._notification_now(message, len(frame)):
                if channel.metrics is not None:
                    channel.metrics.notifications_received += 1
                continue
            self._handed.append((frame, message))
            self._hand_over()
            return

    def _receive(self) -> bool:
        """Read what is there into the decoder; False if nothing was (a spurious wake-up)."""
        metrics = self._channel.metrics
        in_place = self._in_place
        space = in_place.writable() if in_place is not None else None
        if space is not None:
            assert in_place is not None and self._receive_into is not None
            with space:
                count = self._receive_into(space)
            if count is None:
                return False
            if count:
                if metrics is not None:
                    metrics.bytes_in += count
                in_place.wrote(count)
                return True
        elif self._receive_into is not None:
            # Into one buffer kept for the channel's life: recv(256 KiB) would allocate 256 KiB
            # per read, above glibc's mmap threshold, and give it back after each message.
            count = self._receive_into(self._chunk)
            if count is None:
                return False
            if count:
                if metrics is not None:
                    metrics.bytes_in += count
                self._decoder.feed(self._chunk[:count])  # the decoder copies what it keeps
                return True
        else:
            data = self._transport.receive_nowait(_RECEIVE_SIZE)
            if data is None:
                return False
            if data:
                if metrics is not None:
                    metrics.bytes_in += len(data)
                self._decoder.feed(data)
                return True
        self._at_end()
        return True

    def _at_end(self) -> None:
        """The peer closed its end: the decoder says whether a frame was cut short."""
        self._decoder.feed_eof()
        self._end = ChannelClosed(f"{self._channel.name}: the peer closed the channel")


class _Undecoded:
    """Marks a handed-over frame whose decoding failed: the task dispatches it from the start."""


_UNDECODED = _Undecoded()
