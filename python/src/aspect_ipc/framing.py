"""Framing: how messages are cut out of a byte stream (spec sections 1 and 2). Sans-IO.

Theory of operation: a *framing* encodes one payload into bytes and makes *decoders*. A decoder is
fed chunks as they arrive (``feed``), told about the end of the stream (``feed_eof``), and asked for
complete frames one at a time (``next_frame``), which returns ``None`` when it needs more bytes.
Errors are raised from ``next_frame``: a fatal one leaves the decoder in an error state that raises
again on every call (the stream cannot be resynchronized); a recoverable one (an over-long line) is
raised once, and the next call goes on with the next line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from ._framing_lines import LineDelimitedDecoder, LineDelimitedFraming
from ._framing_split import Splitter, find_binary, new_bytes
from .constants import DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT
from .errors import FramingError, SizeLimitError

_Said = TypeVar("_Said")

__all__ = [
    "FrameDecoder",
    "Framing",
    "HeaderFraming",
    "InPlaceDecoder",
    "LengthPrefixedDecoder",
    "LengthPrefixedFraming",
    "LineDelimitedDecoder",
    "LineDelimitedFraming",
    "SMALL_FRAME",
]

Buffer = bytes | bytearray | memoryview

# Payloads above this size are written after their header rather than copied behind it.
_COPY_LIMIT = 64 * 1024
# A frame payload larger than this is assembled in a buffer of its own, which the transport can
# receive into directly (see LengthPrefixedDecoder.writable) and which becomes the frame: no copy.
_DIRECT_FILL_AT = 64 * 1024
SMALL_FRAME = _DIRECT_FILL_AT
"""The longest frame a reader takes where it lies (LengthPrefixedDecoder.take_small, idle):
longer ones are assembled by the decoder, in place."""
# ...once this fraction of it has arrived: a peer cannot make us allocate more than four times
# what it has actually sent.
_DIRECT_FILL_FRACTION = 4
# A large payload's buffer, once given back (LengthPrefixedDecoder.recycle), is kept for the next
# large payload up to this size: a fresh buffer is zero-filled and page-faulted in, byte by byte,
# at a cost that exceeds the copy it avoids (a 16 MiB echo loop: twice the speed).
_SPARE_LIMIT = 64 * 1024 * 1024
# A split frame's binary (see LengthPrefixedDecoder.split_binaries) gets its bytes object as soon
# as its header arrives in frames up to this size (above, once a fourth of the frame has): memory
# nothing has written to costs address space, not RSS (the bytes are not zero-filled), and waiting
# would copy a fourth of the frame through a growing buffer (a 16 MiB echo loop: one payload more
# of RSS, the heap left with one more hole).
_EAGER_LIMIT = 64 * 1024 * 1024
# Consumed bytes are dropped from the front of the buffer once they are this many, so that a long
# stream of small frames neither grows the buffer nor memmoves it on every frame.
_COMPACT_AT = 64 * 1024


@runtime_checkable
class FrameDecoder(Protocol):
    """Turns a chunked byte stream into frames.

    ``feed`` must copy what it keeps of ``data``: a channel reads into one buffer again and again.
    """

    def feed(self, data: Buffer) -> None: ...
    def feed_eof(self) -> None: ...
    def next_frame(self) -> bytes | bytearray | memoryview | None: ...


@runtime_checkable
class InPlaceDecoder(FrameDecoder, Protocol):
    """A decoder that can be received into (optional capability).

    A channel whose transport offers ``receive_into`` receives a large frame straight into the
    buffer :meth:`writable` returns, instead of copying it out of chunks: a 1 MiB frame then
    costs no copy at all.
    """

    def writable(self) -> memoryview | None: ...
    def wrote(self, count: int) -> None: ...


@runtime_checkable
class Framing(Protocol):
    """A way of cutting a byte stream into frames: encodes payloads and makes decoders."""

    def encode(self, payload: Buffer) -> bytes: ...
    def encode_parts(self, payload: Buffer) -> list[Buffer]: ...
    def decoder(self) -> FrameDecoder: ...


@runtime_checkable
class HeaderFraming(Framing, Protocol):
    """A framing whose frame is a header, then the payload as it is (optional capability).

    With a codec that offers ``encode_parts``, a channel frames a message as ``header(total)``
    followed by the codec's parts, so large binaries are written without being copied.
    """

    def header(self, length: int) -> bytes: ...


class LengthPrefixedFraming:
    """Data channel framing: a 4-byte big-endian length N, then N bytes (spec section 2)."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not 1 <= max_frame_size <= MAX_FRAME_SIZE_LIMIT:
            raise ValueError(f"max_frame_size must be within 1..{MAX_FRAME_SIZE_LIMIT}")
        self.max_frame_size = max_frame_size

    def header(self, length: int) -> bytes:
        """Return the 4-byte header for a payload of ``length`` bytes, checking the limits."""
        if length == 0:
            raise FramingError("empty_frame", "cannot send an empty frame", fatal=True)
        if length > self.max_frame_size:
            raise SizeLimitError(
                "frame_too_large",
                f"frame of {length} bytes exceeds max_frame_size of {self.max_frame_size} bytes; "
                "raise max_frame_size or split the payload",
                fatal=False,
                size=length,
                limit=self.max_frame_size,
            )
        return length.to_bytes(4, "big")

    def encode(self, payload: Buffer) -> bytes:
        """Return the header followed by ``payload``."""
        return self.header(len(payload)) + payload

    def encode_parts(self, payload: Buffer) -> list[Buffer]:
        """Like :meth:`encode`, as buffers to write in order, without copying a large payload."""
        header = self.header(len(payload))
        if len(payload) <= _COPY_LIMIT:
            return [header + payload]
        return [header, payload]

    def decoder(self) -> LengthPrefixedDecoder:
        """Return a fresh decoder with this framing's limit."""
        return LengthPrefixedDecoder(self.max_frame_size)


class LengthPrefixedDecoder:
    """Incremental decoder for :class:`LengthPrefixedFraming`.

    Besides ``feed``, a large frame's payload can be received in place: while :meth:`writable`
    returns a buffer, bytes may be written into it (``socket.recv_into``) and reported with
    :meth:`wrote`; the filled buffer is then returned by :meth:`next_frame` as it is. A consumer
    that is done with such a frame may give it back (:meth:`recycle`) for the next one.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._start = 0
        self._length: int | None = None
        self._target: bytearray | memoryview | None = None  # a large payload, assembled in place
        self._filled = 0
        self._spare: bytearray | None = None  # a recycled large payload's buffer
        self._lent: bytearray | None = None  # the buffer behind the last large frame returned
        self._eof = False
        self._error: FramingError | None = None
        # With split_binaries(): the frame's large binary, received into a bytes of its own.
        self._splitter: Splitter | None = None
        self._binary: tuple[int, int] | bool | None = False  # find_binary's answer; False: not yet
        self._tail = False  # the binary is in: the rest of its frame is read as usual

    def split_binaries(self) -> bool:
        """From the next frame on, receive a large MessagePack ``bin`` near the start of a frame
        into a ``bytes`` of its own, and return such frames as :class:`~._framing_split.
        SplitFrame` (for a codec that decodes them: see :mod:`._framing_split`). False where
        this cannot be done (the frames stay as they are)."""
        if new_bytes is not None and self._splitter is None:
            self._splitter = Splitter()
        return self._splitter is not None

    def feed(self, data: Buffer) -> None:
        """Append received bytes."""
        target = self._target
        if target is None:
            self._buffer += data
            return
        room = len(target) - self._filled
        if len(data) <= room:
            target[self._filled : self._filled + len(data)] = data
            self._filled += len(data)
        else:
            with memoryview(data) as view:
                target[self._filled :] = view[:room]
                self._filled = len(target)
                self._buffer += view[room:]

    def writable(self) -> memoryview | None:
        """The unfilled part of a large payload, to receive into; None when bytes must be fed."""
        target = self._target
        if target is None or self._filled == len(target) or self._error is not None:
            return None
        return memoryview(target)[self._filled :]

    def wrote(self, count: int) -> None:
        """Record that ``count`` bytes were written at the start of :meth:`writable`'s buffer."""
        assert self._target is not None and 0 <= count <= len(self._target) - self._filled
        self._filled += count

    def feed_eof(self) -> None:
        """Mark the end of the stream."""
        self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buffer) - self._start + self._filled

    def recycle(self, frame: Buffer) -> None:
        """Give back a frame :meth:`next_frame` returned, once nothing refers to its bytes any
        more: its buffer may receive the next large payload. Other frames are ignored."""
        lent = self._lent
        viewed = type(frame) is memoryview and frame.obj is lent
        if lent is not None and (frame is lent or viewed):
            self._lent = None
            if type(frame) is memoryview:
                frame.release()
            if len(lent) <= _SPARE_LIMIT and (self._spare is None or len(lent) > len(self._spare)):
                self._spare = lent

    def take_small(
        self, read: Callable[[bytearray, int, int], tuple[int, _Said]], otherwise: _Said
    ) -> _Said:
        """Let ``read`` take complete frames where they lie in the buffer, without copying
        them out: ``read(buffer, start, limit)`` reads frames (header included) from ``start``,
        none longer than ``limit`` bytes, and returns the offset it took them up to and what it
        reports. Between frames only: ``otherwise`` while a large frame is being assembled or
        after a failure, where :meth:`next_frame` says what comes next."""
        if self._length is not None or self._target is not None or self._error is not None:
            return otherwise
        start = self._start
        end, said = read(self._buffer, start, min(SMALL_FRAME, self.max_frame_size))
        if end != start:
            self._consumed(end)
        return said

    def idle(self) -> bool:
        """Whether the decoder holds nothing, so that the next bytes received start a frame: a
        reader may take whole frames from them first, and :meth:`feed` only what it leaves."""
        quiet = self._length is None and self._target is None and self._error is None
        return quiet and self._start == len(self._buffer)

    def next_frame(self) -> bytes | bytearray | memoryview | None:
        """Return the next complete payload, or ``None`` if more bytes are needed."""
        buffer, start = self._buffer, self._start
        if self._length is None and self._target is None and self._error is None:
            # The common case first: a small frame, all of it in the buffer.
            length = int.from_bytes(buffer[start : start + 4], "big")
            end = start + 4 + length
            if (
                0 < length <= _DIRECT_FILL_AT
                and end <= len(buffer)
                and length <= self.max_frame_size
            ):
                # A slice, then a copy: for a small frame, faster than one copy through a view.
                small = bytes(buffer[start + 4 : end])
                self._consumed(end)
                return small
        if self._error is not None:
            raise self._error
        target = self._target
        if target is not None:
            if self._filled < len(target):
                if self._eof:
                    self._fail("truncated", "the stream ended inside a frame payload")
                return None
            if self._splitter is not None and self._binary:
                self._target, self._filled, self._binary = None, 0, False
                self._length, self._tail = self._splitter.rest, True  # then the frame's end
            else:
                self._target, self._filled, self._length = None, 0, None
                self._lent = target.obj if type(target) is memoryview else target  # type: ignore[assignment]
                return target
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if self._length is None:
            if available < 4:
                if self._eof and available:
                    self._fail("truncated", "the stream ended inside a frame header")
                return None
            length = int.from_bytes(buffer[start : start + 4], "big")
            if length == 0:
                self._fail("empty_frame", "received a frame of length 0, which is invalid")
            if length > self.max_frame_size:
                # Rejected from the header alone: nothing is allocated for the payload.
                self._fail(
                    "frame_too_large",
                    f"frame of {length} bytes exceeds max_frame_size of {self.max_frame_size} "
                    "bytes; closing the connection",
                    size=length,
                )
            self._length, self._binary = length, False
            start += 4
            available -= 4
            self._start = start
        length = self._length
        if available < length:
            if self._eof:
                self._fail("truncated", "the stream ended inside a frame payload")
            if self._tail or (length > _DIRECT_FILL_AT and self._split(available, length)):
                return None
            spare = self._spare
            if length > _DIRECT_FILL_AT and spare is not None and len(spare) >= length:
                # A recycled buffer: nothing to allocate, so no need to wait for bytes first.
                self._spare = None
                target = spare if len(spare) == length else memoryview(spare)[:length]
                self._target = target
                with memoryview(buffer) as view:
                    target[:available] = view[start:]
                self._filled = available
                buffer.clear()
                self._start = 0
            elif length > _DIRECT_FILL_AT and available * _DIRECT_FILL_FRACTION >= length:
                self._target = target = bytearray(length)
                with memoryview(buffer) as view:
                    target[:available] = view[start:]
                self._filled = available
                buffer.clear()
                self._start = 0
            return None
        with memoryview(buffer) as view:
            frame: bytes | bytearray = bytes(view[start : start + length])
        if self._tail:
            assert self._splitter is not None
            self._tail = False
            frame = self._splitter.finish(frame)
        self._length = None
        self._consumed(start + length)
        return frame

    def _consumed(self, end: int) -> None:
        """The buffer's bytes before ``end`` are taken: drop them once all are, or once they
        are many (not after every frame: a deletion at the front moves what follows)."""
        buffer = self._buffer
        if end == len(buffer):
            buffer.clear()
            end = 0
        elif end >= _COMPACT_AT:
            del buffer[:end]
            end = 0
        self._start = end

    def _split(self, available: int, length: int) -> bool:
        """Whether the frame (``available`` of its ``length`` bytes in) goes to a split frame
        (see :meth:`split_binaries`): its binary's storage becomes the target as soon as the
        binary's header is in (above _EAGER_LIMIT: once a fourth of the frame is)."""
        splitter = self._splitter
        if splitter is None:
            return False
        buffer, start = self._buffer, self._start
        binary = self._binary
        if binary is False:
            with memoryview(buffer) as view, view[start:] as part:
                binary = self._binary = find_binary(part, length)
            if binary is False:
                return True  # the binary's header has not arrived yet
        if binary is None or binary is True:
            return False
        at, size = binary
        if available * _DIRECT_FILL_FRACTION < length and length > _EAGER_LIMIT:
            return True
        begin = start + at + 5  # the binary's first byte
        with memoryview(buffer) as view:
            target = splitter.start(view[start : start + at], size, length)
            arrived = min(available - at - 5, size)
            target[:arrived] = view[begin : begin + arrived]
        self._target, self._filled = target, arrived
        if begin + arrived == len(buffer):
            buffer.clear()
        else:  # some of the frame's end has arrived too
            del buffer[: begin + arrived]
        self._start = 0
        return True

    def _fail(self, kind: str, message: str, *, size: int | None = None) -> None:
        if size is None:
            self._error = FramingError(kind, message, fatal=True)
        else:
            self._error = SizeLimitError(
                kind, message, fatal=True, size=size, limit=self.max_frame_size
            )
        self._buffer = bytearray()
        self._start = 0
        self._target, self._filled = None, 0
        self._binary, self._tail = False, False
        if self._splitter is not None:
            self._splitter.drop()
        raise self._error
