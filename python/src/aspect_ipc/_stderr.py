"""A worker's stderr, forwarded line by line: bounded lines, linear work, a fair share of the loop.

A worker may write anything to stderr, including hundreds of megabytes without a newline. The
parent must neither hold all of it (memory), nor rescan it for a newline with every chunk (time
quadratic in the line's length), nor read it in one go without letting its other tasks run (a
pipe that always has data never makes a read wait). So: a line longer than
:data:`MAX_LINE_BYTES` is forwarded in pieces of that size, each piece but the last marked with
:data:`CONTINUED`; every byte is looked at a bounded number of times; and the pump yields to the
event loop after every chunk it reads.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import anyio
import anyio.lowlevel

from .errors import TransportError
from .transports import FdTransport

__all__ = ["CONTINUED", "MAX_LINE_BYTES", "LineSplitter", "StderrPump", "stray_pieces"]

MAX_LINE_BYTES = 16 * 1024
"""Longest stderr line forwarded as one; longer lines are split into pieces of this size."""

CONTINUED = " [line continues]"
"""Appended to every piece of a split line except its last."""

_TAIL_LINE_CHARS = 2000  # a line of the tail quoted in an error message is cut to this


class LineSplitter:
    """Turns chunks of bytes into lines (``(text, continues)``), none longer than ``limit``.

    Sans-IO: :meth:`feed` returns the complete lines (and pieces) the chunk finished.
    """

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no newline

    def feed(self, data: bytes) -> list[tuple[str, bool]]:
        """Add ``data``; return the lines and pieces it completes, in order."""
        buffer = self._buffer
        buffer += data
        lines: list[tuple[str, bool]] = []
        start = 0
        search_from = self._scanned  # each byte is searched for a newline once
        while True:
            newline = buffer.find(b"\n", search_from)
            end = newline if newline >= 0 else len(buffer)
            while end - start > self.limit:
                cut = _utf8_boundary(buffer, start + self.limit, start)
                lines.append((_text(buffer[start:cut]), True))
                start = cut
            if newline < 0:
                break
            lines.append((_text(buffer[start:newline]), False))
            start = search_from = newline + 1
        del buffer[:start]
        self._scanned = len(buffer)
        return lines

    def pending(self) -> str:
        """The text of the unfinished line (for an error message's tail)."""
        return _text(self._buffer)

    def finish(self) -> list[tuple[str, bool]]:
        """At end of stream: the unfinished line, if any."""
        if not self._buffer:
            return []
        line = _text(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return [(line, False)]


def stray_pieces(line: bytes) -> list[tuple[str, bool]]:
    """A line of the worker's stdout that is not a protocol message, as stderr lines are cut:
    pieces of at most :data:`MAX_LINE_BYTES`, each but the last with ``continues``."""
    splitter = LineSplitter()
    return splitter.feed(line) + splitter.finish()


def _text(raw: bytes | bytearray) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return bytes(raw).decode("utf-8", "replace")


def _utf8_boundary(buffer: bytearray, cut: int, start: int) -> int:
    """``cut``, moved back (at most 3 bytes) so as not to split a UTF-8 sequence."""
    for position in range(cut, max(cut - 3, start + 1) - 1, -1):
        if buffer[position] & 0xC0 != 0x80:  # not a continuation byte: a character starts here
            return position
    return cut


class StderrPump:
    """Forwards a worker's stderr line by line and keeps its last lines for error messages."""

    def __init__(
        self, transport: FdTransport, on_line: Callable[[str, bool], None], keep: int
    ) -> None:
        self._transport = transport
        self._on_line = on_line
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._splitter = LineSplitter()
        # The first line that names why a runtime died (a Go panic or fatal error, Node's
        # fatal error): a crash dump that follows it (goroutines, registers) may push it out of
        # the tail, and a tail of register values says nothing.
        self._cause: str | None = None
        self._lines = 0  # lines seen: whether the cause has left the tail
        self._cause_at = 0
        self.closed = False
        self._closed_event = anyio.Event()

    def tail(self) -> str:
        """The last lines the worker wrote to stderr (each cut to a readable length)."""
        lines = list(self._tail)
        pending = self._splitter.pending()
        if pending:
            lines.append(pending)
        lines = lines[-(self._tail.maxlen or 1) :]
        skipped = self._lines - len(self._tail) - self._cause_at  # between it and the tail
        if self._cause is not None and skipped >= 0:  # it has left the tail: first, then
            lines = [self._cause, *([f"[... {skipped:,} lines ...]"] if skipped else []), *lines]
        return "\n".join(_short(line) for line in lines)

    async def run(self) -> None:
        """Forward until end of stream, yielding to the event loop after every chunk."""
        while not self.closed:
            try:
                data = await self._transport.receive()
            except TransportError:
                data = b""
            self._feed(data)
            await anyio.lowlevel.checkpoint()

    async def wait_closed(self) -> None:
        """Wait until the worker's stderr has reached its end."""
        await self._closed_event.wait()

    def drain_now(self, limit: int = 1024 * 1024) -> None:
        """Forward what the worker has already written (up to ``limit`` bytes), without waiting."""
        drained = 0
        while not self.closed and drained < limit:
            try:
                data = self._transport.receive_nowait()
            except TransportError:
                data = b""
            if data is None:
                return
            drained += len(data)
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        if not data:
            self.closed = True
            self._closed_event.set()
            lines = self._splitter.finish()
        else:
            lines = self._splitter.feed(data)
        for line, continues in lines:
            self._lines += 1
            if self._cause is None and line.startswith(CAUSES):
                self._cause, self._cause_at = line, self._lines
            self._tail.append(line + CONTINUED if continues else line)
            self._on_line(line, continues)

    async def aclose(self) -> None:
        """Stop forwarding and close the pipe."""
        self.closed = True
        self._closed_event.set()
        await self._transport.aclose()


CAUSES = ("panic: ", "fatal error: ", "runtime: ", "runtime/cgo: ", "FATAL ERROR: ")
"""How the Go runtime (a panic, a fatal error, a failed thread or allocation) and Node.js (out of
memory...) start the line that says why they died, before a dump of stacks or registers."""


def _short(line: str) -> str:
    if len(line) <= _TAIL_LINE_CHARS:
        return line
    return f"{line[:_TAIL_LINE_CHARS]}... [{len(line) - _TAIL_LINE_CHARS} more characters]"
