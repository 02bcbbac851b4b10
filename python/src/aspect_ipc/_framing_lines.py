"""Control channel framing: one message per line (spec section 1). Sans-IO; see :mod:`.framing`."""

from __future__ import annotations

from .constants import DEFAULT_MAX_LINE_LENGTH
from .errors import FramingError, SizeLimitError

__all__ = ["HEAD_SIZE", "LineDelimitedDecoder", "LineDelimitedFraming"]

Buffer = bytes | bytearray | memoryview

# Consumed bytes are dropped from the front of the buffer once they are this many, so that a long
# stream of small lines neither grows the buffer nor memmoves it on every line.
_COMPACT_AT = 64 * 1024
HEAD_SIZE = 4096
"""How much of an over-long line is kept with its error (:attr:`SizeLimitError.head`)."""


class LineDelimitedFraming:
    """Control channel framing: one message per line ending in ``\\n`` (spec section 1)."""

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        if max_line_length < 1:
            raise ValueError("max_line_length must be at least 1")
        self.max_line_length = max_line_length

    def encode(self, payload: Buffer) -> bytes:
        """Return ``payload`` followed by ``\\n``; the payload must not contain a newline."""
        payload = bytes(payload)
        if b"\n" in payload:
            raise FramingError(
                "invalid_line", "a control message must not contain a raw newline", fatal=False
            )
        if len(payload) > self.max_line_length:
            raise SizeLimitError(
                "line_too_long",
                f"line of {len(payload)} bytes exceeds max_line_length of "
                f"{self.max_line_length} bytes; send large payloads on the data channel",
                fatal=False,
                size=len(payload),
                limit=self.max_line_length,
            )
        return payload + b"\n"

    def encode_parts(self, payload: Buffer) -> list[Buffer]:
        """Like :meth:`encode`, as a list of buffers."""
        return [self.encode(payload)]

    def decoder(self) -> LineDelimitedDecoder:
        """Return a fresh decoder with this framing's limit."""
        return LineDelimitedDecoder(self.max_line_length)


class LineDelimitedDecoder:
    """Incremental decoder for :class:`LineDelimitedFraming`."""

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self.max_line_length = max_line_length
        self._buffer = bytearray()
        self._start = 0
        self._scanned = 0  # bytes after _start known to hold no newline
        self._discarding = False  # inside an over-long line already reported
        self._eof = False

    def feed(self, data: Buffer) -> None:
        """Append received bytes."""
        self._buffer += data

    def feed_eof(self) -> None:
        """Mark the end of the stream."""
        self._eof = True

    def next_frame(self) -> bytes | None:
        """Return the next non-blank line without its terminator, or ``None`` if incomplete."""
        limit = self.max_line_length
        while True:
            buffer, start = self._buffer, self._start
            newline = buffer.find(b"\n", start + self._scanned)
            if newline < 0:
                pending = len(buffer) - start
                if self._discarding:
                    self._reset()
                    if self._eof:
                        self._discarding = False
                    return None
                if pending > limit + 1:
                    head = bytes(buffer[start : start + HEAD_SIZE])
                    self._reset()
                    self._discarding = not self._eof
                    raise self._too_long(None if self._discarding else pending, head)
                if self._eof and pending:
                    tail = bytes(buffer[start:])
                    self._reset()
                    if not tail.strip(b" \t\r"):
                        return None
                    if len(tail) > limit:
                        raise self._too_long(len(tail), tail[:HEAD_SIZE])
                    raise FramingError(
                        "truncated",
                        f"the stream ended inside a line ({len(tail)} bytes without a newline)",
                        fatal=True,
                    )
                self._scanned = pending
                return None
            end = newline
            if end > start and buffer[end - 1] == 0x0D:
                end -= 1
            line = None if self._discarding or end - start > limit else bytes(buffer[start:end])
            head = (
                b""
                if line is not None or self._discarding
                else bytes(buffer[start : start + HEAD_SIZE])
            )
            self._start = newline + 1
            self._scanned = 0
            if self._start >= _COMPACT_AT:
                del buffer[: self._start]
                self._start = 0
            if self._discarding:
                self._discarding = False
                continue
            if line is None:
                raise self._too_long(end - start, head)
            if not line.strip(b" \t\r"):
                continue
            return line

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._start = 0
        self._scanned = 0

    def _too_long(self, length: int | None, head: bytes) -> SizeLimitError:
        """``length`` is the line's exact size, or None while its end has not been seen;
        ``head`` its first bytes (see :attr:`SizeLimitError.head`)."""
        limit = self.max_line_length
        size = f"more than {limit}" if length is None else str(length)
        error = SizeLimitError(
            "line_too_long",
            f"line of {size} bytes exceeds max_line_length of {limit} bytes; skipped up to "
            "the next newline",
            fatal=False,
            size=length,
            limit=limit,
        )
        error.head = head
        return error
