"""The write queue of a channel: one writer task, backpressure for the senders.

Outgoing frames queue here and one writer task sends what has queued up with one system call:
the responses that arrive together produce requests that leave together. The writer takes at most
:data:`OUTBOX_LIMIT` bytes at a time (or one larger frame), and senders wait while more than that
is queued and not yet taken, so a peer that stops reading holds up senders, never an ever longer
queue. Requests and notifications wait for room before they are even encoded (:meth:`Outbox.room`):
a hundred senders of 5 MB each to a peer that reads nothing hold one frame in the queue, not a
hundred.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._transport_impl import frame_sender, socket_of
from ..errors import IpcError, TransportError, fresh
from ..metrics import ChannelMetrics
from ..transports import NowIO, Transport

THREAD_WRITE_LIMIT = 4096
"""The largest message a thread writes itself (:meth:`Outbox.send_from_thread`). A write of at
most PIPE_BUF (4096) bytes to a pipe, or of one socket buffer's worth to a Unix stream socket,
is whole or nothing: never cut short. That matters because a thread may be interrupted
(Ctrl-C: KeyboardInterrupt) between a write and the count it returns; after a part of a larger
message, the count, and with it the rest of the message, would be lost, and the next message
written into the middle of this one. Larger messages go through the loop's writer."""

if TYPE_CHECKING:
    from ._pending import Waiter

__all__ = ["OUTBOX_LIMIT", "THREAD_WRITE_LIMIT", "Buffer", "Outbox"]

Buffer = bytes | bytearray | memoryview

OUTBOX_LIMIT = 256 * 1024
"""Senders wait while more than this many bytes are queued and not yet taken by the writer."""


JOIN_LIMIT = 8192
"""Small whole frames queued one after another (:meth:`Outbox.write_frame`) are copied into one
buffer, up to this many bytes: the writer then sends one buffer, not one per frame."""


class _Queued:
    """One message's buffers in the write queue (compared by identity: ``list.remove``), or,
    if ``joins``, small whole frames in one buffer, that nobody takes back."""

    __slots__ = ("joins", "parts", "queued", "size", "written")

    def __init__(
        self, parts: list[Buffer], written: anyio.Event | None = None, size: int = -1
    ) -> None:
        self.parts = parts
        self.size = sum(map(len, parts)) if size < 0 else size
        self.queued = True  # until the writer takes it
        self.written = written  # set once the writer has written it (or given up): see put()
        self.joins = False

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


class Outbox:
    """The queue of frames to write, and its writer (:meth:`run`)."""

    __slots__ = (
        "_entries",
        "_held",
        "_lock",
        "_ready",
        "_send_frame",
        "_send_nowait",
        "_taken",
        "_writing",
        "burst",
        "close_reason",
        "done",
        "failed",
        "metrics",
        "size",
        "thread_write_limit",
        "waves",
    )

    def __init__(self) -> None:
        self._entries: list[_Queued] = []
        self.size = 0  # bytes queued, not yet taken by the writer
        self._ready = anyio.Event()
        self._taken = anyio.Event()
        self.done = anyio.Event()  # the writer has ended
        self.failed = False  # a write failed: the peer stopped reading (EPIPE...)
        self.close_reason: IpcError | None = None
        self.metrics: ChannelMetrics | None = None  # bytes_out, counted per batch written
        # Set by run() for a transport that can write without waiting: see put().
        self._send_nowait: Callable[[list[Buffer]], int] | None = None
        # And, over a socket, its own send, for one whole frame: see write_frame().
        self._send_frame: Callable[[bytes], int] | None = None
        self._writing = False  # the writer holds a batch it has not finished sending
        # With a reader that reports each read (``waves``: it clears ``burst`` as it reads), a
        # sender writes at once only the first message after each read; the messages sent
        # after it until the next read (the callers that one read's answers woke) queue, and
        # leave together in one system call.
        self.waves = False
        self.burst = False
        # A thread other than the loop's may write a message itself (send_from_thread); the
        # lock keeps its write from meeting one of the loop's, and _held is set while the rest
        # of a message it could not write whole is on its way to the head of the queue.
        self._lock = threading.Lock()
        self._held = False
        self.thread_write_limit = THREAD_WRITE_LIMIT

    async def put(
        self, parts: list[Buffer], answered: Waiter | None = None, *, borrowed: bool = False
    ) -> bool:
        """Queue one message's ``parts``; wait only while the queue is over its limit.

        A message whose ``answered`` event is set meanwhile (its request timed out), or whose
        sender is cancelled, is taken back out of the queue if the writer has not taken it yet.
        With ``borrowed`` (parts that are the caller's own buffers, written uncopied), wait until
        the parts are written, so that the caller may change its buffers once this returns.

        Returns False for a message taken back (``answered``): the peer never gets it.

        Raises:
            ChannelClosed (the channel's close reason): the channel closed.
        """
        if self.close_reason is not None:
            raise fresh(self.close_reason)
        outcome = self._write_first(parts, borrowed)
        if outcome is not False:
            if isinstance(outcome, _Queued) and outcome.written is not None:
                await outcome.written.wait()
            return True
        entry = _Queued(parts, anyio.Event() if borrowed else None)
        self._enqueue(entry)
        queued = True
        try:
            while self.size > OUTBOX_LIMIT and entry.queued:  # backpressure
                await self._taken.wait()
                if self.close_reason is not None:
                    raise fresh(self.close_reason)
                if answered is not None and answered.is_set():
                    return False  # timed out while queued: never sent
            queued = False
            if entry.written is not None:
                await entry.written.wait()
            return True
        finally:
            if queued and entry.queued:
                entry.queued = False
                try:
                    self._entries.remove(entry)
                except ValueError:  # the queue was dropped: the channel failed
                    pass
                else:
                    self.size -= entry.size
                    # Its room is free: a sender waiting for room must look again, or it waits
                    # for a writer with nothing left to take (a $/cancelRequest did, forever).
                    self.wake_senders()

    def put_nowait(self, parts: list[Buffer]) -> bool:
        """Do what :meth:`put` does for ``parts`` (not borrowed) when it need not wait: the queue
        is open and stays within its limit. False: nothing was done, call :meth:`put`. A
        request's sender saves a coroutine per request."""
        if self.size + sum(map(len, parts)) > OUTBOX_LIMIT:
            return False
        return self.offer(parts)

    def write_frame(self, frame: bytes) -> bool:
        """:meth:`put_nowait` for one whole frame over a socket, in one call: on the loop
        thread, written now if nothing is queued or being written before it (the rest of it
        queued if the socket takes only part), or else queued. False: nothing was done (not a
        socket, the outbox is closed, or the queue is over its limit): call :meth:`put_nowait`
        or :meth:`put`.

        Most requests go out this way: :meth:`put_nowait` takes four more calls (offer, the
        write, its count, the transport), and a round trip waits for each of them.
        """
        send = self._send_frame
        if send is None or self.close_reason is not None or self.size + len(frame) > OUTBOX_LIMIT:
            return False
        if not (self._entries or self._writing or self.burst):
            with self._lock:
                written = 0
                if not self._held:
                    try:
                        written = send(frame)
                    except OSError:  # full (EAGAIN), or failed: the writer meets it, says it
                        written = 0
                if written:
                    if self.metrics is not None:
                        self.metrics.bytes_out += written
                    self.burst = self.waves
                    if written == len(frame):
                        return True
                    self._queue_rest([frame], written, None)
            if written:
                self._ready.set()
                return True
        size = len(frame)
        entries = self._entries
        if size <= JOIN_LIMIT:
            # The writer takes whole entries out of the queue: the last one is still queued.
            last = entries[-1] if entries else None
            if last is not None and last.joins and last.size + size <= JOIN_LIMIT:
                parts = last.parts
                if type(parts[0]) is bytes:  # its first frame alone until now
                    parts[0] = bytearray(parts[0])
                parts[0] += frame  # type: ignore[operator]  # a bytearray, made above
                last.size += size
                self.size += size
                return True
            entry = _Queued([frame], None, size)
            entry.joins = True
        else:
            entry = _Queued([frame], None, size)
        self._enqueue(entry)
        return True

    def offer(self, parts: list[Buffer]) -> bool:
        """Write one message's ``parts`` now, or queue them, without waiting: for a sender
        that cannot wait (a handler that ran in the reader's callback), which looks at
        :attr:`size` first so that a peer that stops reading still stops it. False: the outbox
        is closed, nothing was sent."""
        if self.close_reason is not None:
            return False
        if self._write_first(parts, False) is False:
            self._enqueue(_Queued(parts))
        return True

    def _write_first(self, parts: list[Buffer], borrowed: bool) -> _Queued | bool:
        """Write ``parts`` now if nothing is queued before them (as :meth:`_write_now` says),
        from the sender's own task or callback: that saves the writer's wake-up, a trip through
        the event loop, per message. False: queue them."""
        if self._send_nowait is None or self._entries or self._writing or self.burst:
            return False
        outcome = self._write_now(self._send_nowait, parts, borrowed)
        if outcome is not False:
            self.burst = self.waves
        return outcome

    def _enqueue(self, entry: _Queued) -> None:
        entries = self._entries
        entries.append(entry)
        self.size += entry.size
        if len(entries) == 1:  # the writer waits only for an empty queue (or a held one)
            self._ready.set()

    def _write_now(
        self, send: Callable[[list[Buffer]], int], parts: list[Buffer], borrowed: bool
    ) -> _Queued | bool:
        """On the loop thread: write what the transport takes now. True: all of it. The queued
        rest of it, if only part went (first in the queue, never taken back: half is out). False:
        nothing went, or a thread's message is being finished first: queue it as usual.

        Under the lock, so that no thread writes between a test and a write, nor between a
        partial write and the queueing of its rest.
        """
        with self._lock:
            if self._held:
                return False
            written = self._send_counted(send, parts)
            if not written:
                return False
            if written == sum(map(len, parts)):
                return True
            rest = self._queue_rest(parts, written, anyio.Event() if borrowed else None)
        self._ready.set()
        return rest

    def _queue_rest(self, parts: list[Buffer], written: int, event: anyio.Event | None) -> _Queued:
        """Queue what is left of ``parts`` after a write of ``written`` bytes (under the lock,
        first in the queue); the caller sets ``_ready`` once it has let go of the lock."""
        rest = _Queued(_after(parts, written), event)
        self._entries.append(rest)
        self.size += rest.size
        return rest

    def _send_counted(self, send: Callable[[list[Buffer]], int], parts: list[Buffer]) -> int:
        """Write what the transport takes now (under the lock), counted in ``bytes_out``; 0
        for a failed transport: the writer meets the error again, and reports it."""
        try:
            written = send(parts)
        except TransportError:
            return 0
        if self.metrics is not None:
            self.metrics.bytes_out += written
        return written

    def send_from_thread(
        self, parts: list[Buffer], on_loop: Callable[[Callable[[], None]], object]
    ) -> bool:
        """Write one message from a thread other than the loop's, now, if nothing is queued.

        True: it is written, or its first bytes are and ``on_loop`` (which runs a function on
        the loop thread) puts the rest at the head of the queue, where nothing overtakes it.
        False: nothing was written (a message over ``THREAD_WRITE_LIMIT``, a queue, a write in
        progress, a full or failed transport, a closed outbox); the caller sends it the usual
        way, from the loop.
        """
        send = self._send_nowait
        if send is None or sum(map(len, parts)) > self.thread_write_limit:
            return False
        with self._lock:
            if self._entries or self._writing or self._held or self.close_reason is not None:
                return False
            written = self._send_counted(send, parts)
            if not written:
                return False
            whole = written == sum(map(len, parts))
            self._held = not whole
        if not whole:  # outside the lock: on_loop may take its time, the loop may want the lock
            on_loop(functools.partial(self._put_held, _Queued(_after(parts, written))))
        return True

    def _put_held(self, rest: _Queued) -> None:
        """On the loop thread: the rest of a message a thread began to write goes first."""
        self._entries.insert(0, rest)
        self.size += rest.size
        self._held = False
        self._ready.set()

    async def room(self) -> None:
        """Wait until the queue is within its limit (or the outbox closes): a sender about to
        encode a message waits here first, so that what waits for a peer that does not read is
        its arguments, not their encoded copies."""
        while self.size > OUTBOX_LIMIT and self.close_reason is None:
            await self._taken.wait()

    def wake_senders(self) -> None:
        """Let waiting senders look again (a request of theirs may have timed out)."""
        taken, self._taken = self._taken, anyio.Event()
        taken.set()

    def close(self, reason: IpcError) -> None:
        """No more messages: the writer sends what is queued, then ends; senders see ``reason``."""
        self.close_reason = reason
        self._ready.set()
        self._taken.set()

    def _take(self) -> tuple[list[_Queued], int]:
        """The next batch to write (under the lock), and its size: what is left stays queued
        and counted, so that senders keep waiting while the peer does not read."""
        entries = self._entries
        count = _batch_size(entries)
        if count == len(entries):
            taken, self._entries, self.size = self.size, [], 0
            return entries, taken
        batch, self._entries = entries[:count], entries[count:]
        taken = sum(entry.size for entry in batch)
        self.size -= taken
        return batch, taken

    async def run(self, transport: Transport, on_failure: Callable[[TransportError], None]) -> None:
        """The writer: send what has queued up, in one call, until closed and empty."""
        if isinstance(transport, NowIO):
            self._send_nowait = transport.send_nowait
            sock = socket_of(transport)
            self._send_frame = frame_sender(sock) if sock is not None else None
        try:
            with anyio.CancelScope(shield=True):
                while True:
                    if not self._entries or self._held:
                        if self.close_reason is not None and not self._held:
                            return
                        await self._ready.wait()
                        self._ready = anyio.Event()
                        continue
                    with self._lock:  # no thread is writing (send_from_thread) once it is ours
                        if self._held:  # a thread began a message while we waited for the lock
                            continue
                        entries, taken = self._take()
                        if self.metrics is not None:
                            self.metrics.bytes_out += taken
                        self._writing = True
                    parts = _gather(entries)
                    self.wake_senders()
                    try:
                        await transport.send_all(parts)
                    except TransportError as exc:
                        self.failed = True
                        on_failure(exc)
                        return
                    finally:
                        self._writing = False
                        self.burst = False
                        _written(entries)
                        # Not kept until the next batch: it may be a large frame's only copy.
                        entries, parts = [], []
        finally:
            self._send_nowait = self._send_frame = None
            _written(self._entries)  # nobody waits for what will never be written
            self._entries.clear()
            self.done.set()


def _batch_size(entries: list[_Queued]) -> int:
    """How many of ``entries`` one write takes: up to OUTBOX_LIMIT bytes, and at least one."""
    total = 0
    for count, entry in enumerate(entries):
        total += entry.size
        if total >= OUTBOX_LIMIT:
            return count + 1
    return len(entries)


def _gather(entries: list[_Queued]) -> list[Buffer]:
    """The buffers of ``entries``, taken by the writer (a function: its loop variable would
    keep the last entry, and so a frame's only copy, alive in the writer)."""
    parts: list[Buffer] = []
    for entry in entries:
        entry.queued = False
        parts += entry.parts
    return parts


def _written(entries: list[_Queued]) -> None:
    for entry in entries:
        if entry.written is not None:
            entry.written.set()


def _after(parts: list[Buffer], count: int) -> list[Buffer]:
    """What is left of ``parts`` once their first ``count`` bytes are written."""
    for index, part in enumerate(parts):
        if count < len(part):
            return [memoryview(part)[count:], *parts[index + 1 :]] if count else parts[index:]
        count -= len(part)
    return []
