"""Transports: byte streams under channels (spec sections 1, 2, 7.3).

This module (with :mod:`._socket_path`, the socket file of a data path) is the one place where
OS and anyio stream errors become aspect-ipc errors: every method raises :class:`TransportError`
(or a subclass), never ``OSError`` or ``BrokenResourceError``. The process side (spawning,
descriptors) has its own one boundary: :func:`aspect_ipc._process.startup_os_error`.
``receive`` returns ``b""`` at end of stream, as in h11.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import anyio

from ._socket_path import (
    PeerCredentials,
    check_unix_path,
    connect_unix,
    in_use_message,
    probe_socket,
    remove_stale_socket,
)
from .errors import AddressInUse, TransportError

__all__ = [
    "FdTransport",
    "PeerCredentials",
    "PipeServer",
    "ReceivesInto",
    "SocketTransport",
    "Transport",
    "TransportFactory",
    "probe_socket",
    "remove_stale_socket",
]

_RECEIVE_SIZE = 256 * 1024
_T = TypeVar("_T")
_Waitable = TypeVar("_Waitable", int, socket.socket)
# sendmsg takes at most IOV_MAX (1024 on Linux) buffers at once.
_MAX_GATHER = 1024


@runtime_checkable
class Transport(Protocol):
    """A bidirectional byte stream.

    Optional: ``receive_into`` (see :class:`ReceivesInto`), and a ``prefers_lines`` attribute
    (true for pipes): :class:`~aspect_ipc.channel.ChannelBuilder` then defaults to line-delimited
    JSON, the control channel's framing, instead of length-prefixed MessagePack.
    """

    async def receive(self, max_bytes: int = _RECEIVE_SIZE) -> bytes: ...
    async def send(self, data: bytes | bytearray | memoryview) -> None: ...
    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None: ...
    async def aclose(self) -> None: ...


@runtime_checkable
class ReceivesInto(Transport, Protocol):
    """A transport that can receive straight into a buffer (optional capability).

    With a decoder that offers ``writable`` (:class:`~aspect_ipc.framing.InPlaceDecoder`), a
    channel receives large frames without copying them.
    """

    async def receive_into(self, buffer: memoryview) -> int: ...


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
        await _write_gathered(functools.partial(os.writev, fd), writable, parts, self.name)

    async def aclose(self) -> None:
        """Close both descriptors, waking any task waiting on them."""
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
        self._socket: socket.socket | None = sock

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
                raise TransportError(f"{self.name}: receive failed: {_reason(exc)}") from exc

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting while the socket buffer is full (backpressure)."""
        await self.send_all((data,))

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """Send several buffers back to back, gathered into as few system calls as they allow."""
        sock = self._open()
        await _write_gathered(
            sock.sendmsg,
            functools.partial(self._wait, anyio.wait_writable, sock, "writing"),
            parts,
            self.name,
        )

    async def aclose(self) -> None:
        """Close the connection, waking any task waiting on it."""
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


class PipeServer:
    """Listens on a data path and accepts connections (the worker side of spec 7.3)."""

    def __init__(self, *, unlink_on_listen: bool = True) -> None:
        self.unlink_on_listen = unlink_on_listen
        self.path: str | None = None
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None

    async def listen(self, path: str) -> None:
        """Bind ``path`` with mode 0600 and listen.

        Raises:
            AddressInUse: a live socket, or a file that is not a socket, is at ``path``.
            TransportError: the path is unusable (too long, a Windows pipe name, an OS error).
        """
        check_unix_path(path)
        if self.unlink_on_listen:
            await remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is born 0600: no window for other users
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(in_use_message(path), path) from exc
            raise TransportError(f"cannot listen on {path}: {exc.strerror}") from exc
        finally:
            os.umask(old_umask)
        info = os.lstat(path)
        self._inode = (info.st_dev, info.st_ino)
        self.path = path
        sock.setblocking(False)
        self._listener = sock

    async def accept(self) -> SocketTransport:
        """Wait for the next connection."""
        while True:
            listener = self._listener
            if listener is None:
                raise TransportError("the pipe server is not listening")
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                await _ready(anyio.wait_readable, listener, f"accept failed on {self.path}: closed")
                continue
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EINTR):
                    continue  # the client gave up before we got to it
                raise TransportError(f"accept failed on {self.path}: {_reason(exc)}") from exc
            return SocketTransport(connection, name=f"data connection on {self.path}")

    async def aclose(self) -> None:
        """Stop listening and remove the socket file, if it is still the one we created."""
        listener, self._listener = self._listener, None
        if listener is not None:
            anyio.notify_closing(listener)
            listener.close()
        self.remove_socket_file()

    def remove_socket_file(self) -> None:
        """Remove our socket file (safe to call from signal handlers and at exit)."""
        path, inode = self.path, self._inode
        if path is None or inode is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if (info.st_dev, info.st_ino) == inode:
                os.unlink(path)
        self._inode = None


class TransportFactory:
    """Constructors for every transport (the design's ``TransportFactory``)."""

    @staticmethod
    def create_stdio(*, protect_stdout: bool = True) -> FdTransport:
        """The worker's control transport: its stdin, and its real stdout.

        With ``protect_stdout`` the protocol keeps a private duplicate of file descriptor 1, and
        fd 1 itself (and ``sys.stdout``) is pointed at stderr, so a stray ``print`` anywhere in the
        process (also from C code or child processes) cannot corrupt the control channel.
        """
        out_fd = os.dup(1)
        if protect_stdout:
            sys.stdout.flush()
            os.dup2(2, 1)
            sys.stdout = sys.stderr
        read_fd = os.dup(0)
        return FdTransport(read_fd, out_fd, name="control channel (stdio)")

    @staticmethod
    def create_pipes(
        read_fd: int | None, write_fd: int | None, *, name: str = "pipe"
    ) -> FdTransport:
        """A transport over descriptors the caller owns from now on (e.g. a child's pipes)."""
        return FdTransport(read_fd, write_fd, name=name)

    @staticmethod
    def create_pipe_server(*, unlink_on_listen: bool = True) -> PipeServer:
        """A server for a worker's data channel; call ``listen(path)`` on it."""
        return PipeServer(unlink_on_listen=unlink_on_listen)

    @staticmethod
    async def create_pipe_client(path: str, *, timeout: float = 10.0) -> SocketTransport:
        """Connect to ``path``, retrying while the server is not there yet, for up to ``timeout``.

        Raises:
            TransportError: "data channel connection timeout" with the last OS reason.
        """
        check_unix_path(path)
        reason = "no attempt made"
        with anyio.move_on_after(timeout):
            delay = 0.001
            while True:
                try:
                    sock = connect_unix(path)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
                        raise TransportError(f"cannot connect to {path}: {exc.strerror}") from exc
                    reason = exc.strerror or str(exc)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                return SocketTransport(sock, name=f"data channel {path}")
        raise TransportError(
            f"data channel connection timeout: cannot connect to {path} within {timeout:g} s: "
            f"{reason}"
        )


async def _ready(
    wait: Callable[[_Waitable], Awaitable[None]], target: _Waitable, closed: str
) -> None:
    """Wait until ``target`` is ready; TransportError(``closed``) if it is closed meanwhile."""
    try:
        await wait(target)
    except (anyio.ClosedResourceError, anyio.BusyResourceError, OSError) as exc:
        raise TransportError(closed) from exc


async def _write_gathered(
    write: Callable[[list[memoryview]], int],
    wait: Callable[[], Awaitable[None]],
    parts: Sequence[bytes | bytearray | memoryview],
    name: str,
) -> None:
    # writev/sendmsg may take only part of what they are given: go on from where they stopped.
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
                views[first] = views[first][written:]
                written = 0


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
