"""The two transports: file descriptors (pipes) and Unix sockets (see :mod:`.transports`).

Every method raises :class:`TransportError` (or a subclass), never ``OSError``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

from ._socket_path import PeerCredentials
from .errors import TransportError

__all__ = [
    "Buffer",
    "FdTransport",
    "SocketTransport",
    "frame_sender",
    "receive_failed",
    "socket_of",
]


_RECEIVE_SIZE = 256 * 1024
Buffer = bytes | bytearray | memoryview
_T = TypeVar("_T")
_Waitable = TypeVar("_Waitable", int, socket.socket)
# sendmsg takes at most IOV_MAX (1024 on Linux) buffers at once.
_MAX_GATHER = 1024
# A Unix stream socket's send buffer bounds the bytes on their way to the peer. Linux's default
# (about 208 KiB) cuts a 1 MiB message into five or more writes, each a wait for room and a trip
# through the event loop; with 1 MiB most of it leaves at once (1 MiB echo: 1.3-1.6x faster on the
# development machine). The kernel caps it at net.core.wmem_max.
SEND_BUFFER = 1024 * 1024
# A write to a peer that has gone raises SIGPIPE, whose default action ends the process without a
# word. Python ignores it, but programs often restore the default (a CLI piped into `head`), and
# a worker's crash must then be an error, not the parent's death: sockets send with
# MSG_NOSIGNAL, and pipes, which have no such flag, block the signal around the write.
_NOSIGNAL: int = getattr(socket, "MSG_NOSIGNAL", 0)
# And never block: the data channel's reader puts its socket in blocking mode for a moment, to
# wait for an answer in the receive call (AnswerPoll.wait), while a thread may be writing.
_SEND_FLAGS: int = _NOSIGNAL | getattr(socket, "MSG_DONTWAIT", 0)
_SIGPIPE: int | None = getattr(signal, "SIGPIPE", None)


class FdTransport:
    """A transport over raw file descriptors (pipes): a worker's stdio, a parent's child pipes.

    Non-blocking reads and writes waited on with ``anyio.wait_readable``/``wait_writable``, so it
    works on every anyio backend, and so a parent can drain what a child already wrote without
    waiting (:meth:`receive_nowait`).
    """

    prefers_lines = True  # pipes carry the control channel: line-delimited JSON by default

    def __init__(self, read_fd: int | None, write_fd: int | None, *, name: str = "pipe") -> None:
        self.name = name
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._close_callbacks: list[Callable[[], None]] = []
        for fd in (read_fd, write_fd):
            if fd is not None:
                os.set_blocking(fd, False)

    async def receive(self, max_bytes: int = _RECEIVE_SIZE) -> bytes:
        """Return the next bytes available (at least one), or ``b""`` at end of stream."""
        while True:
            data = self.receive_nowait(max_bytes)
            if data is not None:
                return data
            closed = f"{self.name}: closed while reading"
            await _ready(anyio.wait_readable, self._fd(self._read_fd), closed)

    def receive_nowait(self, max_bytes: int = _RECEIVE_SIZE) -> bytes | None:
        """Return bytes already available, ``b""`` at end of stream, ``None`` if none yet."""
        try:
            return os.read(self._fd(self._read_fd), max_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise TransportError(f"{self.name}: read failed: {exc.strerror or exc}") from exc

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting while the pipe is full (backpressure)."""
        await self.send_all((data,))

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """Write several buffers back to back, gathered into as few system calls as they allow."""
        fd = self._fd(self._write_fd)
        closed = f"{self.name}: closed while writing"
        writable = functools.partial(_ready, anyio.wait_writable, fd, closed)
        await _write_gathered(functools.partial(_writev, fd), writable, parts, self.name)

    def readable_fd(self) -> int:
        """The descriptor a reader waits on (for a channel's fast path, see ``NowIO``)."""
        return self._fd(self._read_fd)

    def send_nowait(self, parts: Sequence[Buffer]) -> int:
        """Write what the pipe takes now, without waiting; return the byte count (0: full)."""
        return _write_now(functools.partial(_writev, self._fd(self._write_fd)), parts, self.name)

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when :meth:`aclose` starts, before the descriptors close."""
        self._close_callbacks.append(callback)

    async def aclose(self) -> None:
        """Close both descriptors, waking any task waiting on them."""
        _run_close_callbacks(self._close_callbacks)
        for attr in ("_read_fd", "_write_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                setattr(self, attr, None)
                anyio.notify_closing(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _fd(self, fd: int | None) -> int:
        if fd is None:
            raise TransportError(f"{self.name}: transport is closed")
        return fd


class SocketTransport:
    """A transport over a connected Unix domain socket.

    Like :class:`FdTransport`, it tries the non-blocking call first and waits for readiness only
    when the socket has nothing (or no room): a message that fits costs one system call and no
    trip through the event loop.
    """

    def __init__(self, sock: socket.socket, *, name: str = "socket") -> None:
        self.name = name
        sock.setblocking(False)
        _widen_send_buffer(sock)
        self._socket: socket.socket | None = sock
        self._close_callbacks: list[Callable[[], None]] = []
        sendmsg = sock.sendmsg
        self._sendmsg: Callable[[list[Buffer]], int] = (
            (lambda parts: sendmsg(parts, (), _SEND_FLAGS)) if _SEND_FLAGS else sendmsg
        )

    @property
    def raw_socket(self) -> socket.socket:
        """The underlying socket object (for options and credentials)."""
        return self._open()

    def peer_credentials(self) -> PeerCredentials | None:
        """The peer's ``(pid, uid, gid)`` where the OS tells (Linux ``SO_PEERCRED``), else None."""
        so_peercred = getattr(socket, "SO_PEERCRED", None)
        if so_peercred is None:
            return None
        raw = self._open().getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
        return PeerCredentials(struct.unpack("3i", raw))

    async def receive(self, max_bytes: int = _RECEIVE_SIZE) -> bytes:
        """Return the next bytes available, or ``b""`` at end of stream."""
        return await self._read(lambda sock: sock.recv(max_bytes))

    async def receive_into(self, buffer: memoryview) -> int:
        """Receive straight into ``buffer``; return the byte count, 0 at end of stream."""
        return await self._read(lambda sock: sock.recv_into(buffer))

    async def _read(self, read: Callable[[socket.socket], _T]) -> _T:
        sock = self._open()
        while True:
            try:
                return read(sock)
            except BlockingIOError:
                await self._wait(anyio.wait_readable, sock, "reading")
            except OSError as exc:
                raise receive_failed(self.name, exc) from exc

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting while the socket buffer is full (backpressure)."""
        await self.send_all((data,))

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """Send several buffers back to back, gathered into as few system calls as they allow."""
        sock = self._open()
        await _write_gathered(
            self._sendmsg,
            functools.partial(self._wait, anyio.wait_writable, sock, "writing"),
            parts,
            self.name,
        )

    def readable_fd(self) -> int:
        """The descriptor a reader waits on (for a channel's fast path, see ``NowIO``)."""
        return self._open().fileno()

    def receive_nowait(self, max_bytes: int = _RECEIVE_SIZE) -> bytes | None:
        """Return bytes already available, ``b""`` at end of stream, ``None`` if none yet."""
        try:
            return self._open().recv(max_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise receive_failed(self.name, exc) from exc

    def receive_into_nowait(self, buffer: memoryview) -> int | None:
        """Like :meth:`receive_into` without waiting: ``None`` if nothing is there yet."""
        try:
            return self._open().recv_into(buffer)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise receive_failed(self.name, exc) from exc

    def send_nowait(self, parts: Sequence[Buffer]) -> int:
        """Send what the socket takes now, without waiting; return the byte count (0: full)."""
        self._open()
        return _write_now(self._sendmsg, parts, self.name)

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when :meth:`aclose` starts, before the socket closes."""
        self._close_callbacks.append(callback)

    async def aclose(self) -> None:
        """Close the connection, waking any task waiting on it."""
        _run_close_callbacks(self._close_callbacks)
        sock, self._socket = self._socket, None
        if sock is not None:
            anyio.notify_closing(sock)
            sock.close()

    async def _wait(
        self, wait: Callable[[socket.socket], Awaitable[None]], sock: socket.socket, doing: str
    ) -> None:
        await _ready(wait, sock, f"{self.name}: closed while {doing}")
        if self._socket is None:
            raise TransportError(f"{self.name}: closed while {doing}")

    def _open(self) -> socket.socket:
        if self._socket is None:
            raise TransportError(f"{self.name}: transport is closed")
        return self._socket


async def _ready(
    wait: Callable[[_Waitable], Awaitable[None]], target: _Waitable, closed: str
) -> None:
    """Wait until ``target`` is ready; TransportError(``closed``) if it is closed meanwhile."""
    try:
        await wait(target)
    except (anyio.ClosedResourceError, anyio.BusyResourceError, OSError) as exc:
        raise TransportError(closed) from exc


async def _write_gathered(
    write: Callable[[list[Buffer]], int],
    wait: Callable[[], Awaitable[None]],
    parts: Sequence[bytes | bytearray | memoryview],
    name: str,
) -> None:
    # writev/sendmsg may take only part of what they are given: go on from where they stopped.
    # Whole bytes objects are given as they are (a view of each cost as much as the rest of a
    # small message's write); one is viewed only when a write stops inside it.
    views: list[Buffer]
    if all(type(part) is bytes for part in parts):
        views = [part for part in parts if part]
    else:
        views = [memoryview(part).cast("B") for part in parts if len(part)]
    first = 0
    while first < len(views):
        try:
            written = write(views[first : first + _MAX_GATHER])
        except BlockingIOError:
            await wait()
            continue
        except OSError as exc:
            raise TransportError(f"{name}: write failed: {_reason(exc)}") from exc
        while written:
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = memoryview(views[first]).cast("B")[written:]
                written = 0


def _write_now(write: Callable[[list[Buffer]], int], parts: Sequence[Buffer], name: str) -> int:
    if len(parts) > _MAX_GATHER or not all(type(part) is bytes for part in parts):
        parts = [memoryview(part).cast("B") for part in parts[:_MAX_GATHER] if len(part)]
    try:
        return write(parts)  # type: ignore[arg-type]
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise TransportError(f"{name}: write failed: {_reason(exc)}") from exc


def socket_of(transport: object) -> socket.socket | None:
    """The open socket under ``transport``, if it is one, for its own ``send``/``recv_into``
    on a hot path. Once the socket is closed those raise (its descriptor is -1): they never
    reach a descriptor number reused since."""
    try:
        sock = getattr(transport, "raw_socket", None)
    except TransportError:  # closed already
        return None
    return sock if isinstance(sock, socket.socket) else None


def frame_sender(sock: socket.socket) -> Callable[[bytes], int]:
    """``sock.send`` for one whole frame on a hot path, that raises EPIPE instead of SIGPIPE,
    and never blocks."""
    send = sock.send
    if not _SEND_FLAGS:
        return send

    def send_frame(frame: bytes) -> int:
        return send(frame, _SEND_FLAGS)

    return send_frame


def _writev(fd: int, parts: Sequence[Buffer]) -> int:
    """``os.writev`` on a pipe, with SIGPIPE blocked in this thread unless it is ignored: EPIPE
    is raised instead, and the signal it left pending is taken back before it is unblocked."""
    if _SIGPIPE is None or signal.getsignal(_SIGPIPE) == signal.SIG_IGN:
        return os.writev(fd, parts)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, (_SIGPIPE,))
    if _SIGPIPE in before:  # blocked already, by the program: its business
        return os.writev(fd, parts)
    try:
        return os.writev(fd, parts)
    except BrokenPipeError:
        signal.sigtimedwait((_SIGPIPE,), 0)  # the write's SIGPIPE, pending: never delivered
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def receive_failed(name: str, exc: OSError) -> TransportError:
    """The error of a receive that failed (the connection was reset...), naming the transport."""
    return TransportError(f"{name}: receive failed: {_reason(exc)}")


def _run_close_callbacks(callbacks: list[Callable[[], None]]) -> None:
    # Whoever watches the descriptor (an event loop's reader) lets go of it before it closes:
    # a closed descriptor still registered with a selector breaks the next one given its number.
    while callbacks:
        callbacks.pop()()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _widen_send_buffer(sock: socket.socket) -> None:
    """Raise ``sock``'s send buffer to :data:`SEND_BUFFER` unless it is larger already."""
    with contextlib.suppress(OSError):  # an option refused leaves the default: slower, not wrong
        # getsockopt reports twice what was set (the kernel's bookkeeping share).
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < 2 * SEND_BUFFER:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
