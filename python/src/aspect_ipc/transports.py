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
import io
import os
import socket
import stat
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import anyio

from ._socket_path import (
    PeerCredentials,
    check_unix_path,
    connect_unix,
    in_use_message,
    probe_socket,
    remove_stale_socket,
)
from ._transport_impl import _RECEIVE_SIZE, Buffer, FdTransport, SocketTransport, _ready, _reason
from .errors import AddressInUse, TransportError

__all__ = [
    "FdTransport",
    "NowIO",
    "PeerCredentials",
    "PipeServer",
    "ReceivesInto",
    "SocketTransport",
    "Transport",
    "TransportFactory",
    "probe_socket",
    "remove_stale_socket",
]


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


@runtime_checkable
class NowIO(Transport, Protocol):
    """A transport that can also read and write without waiting (optional capability).

    A channel then writes a message from the sender's own task when nothing is queued before it,
    and, on asyncio, keeps the descriptor registered with the loop and reads in its readiness
    callback: no task switch and no system call spent on registering per message.
    """

    def readable_fd(self) -> int: ...
    def receive_nowait(self, max_bytes: int = _RECEIVE_SIZE) -> bytes | None: ...
    def send_nowait(self, parts: Sequence[Buffer]) -> int: ...
    def add_close_callback(self, callback: Callable[[], None]) -> None: ...


class PipeServer:
    """Listens on a data path and accepts connections (the worker side of spec 7.3)."""

    def __init__(self, *, unlink_on_listen: bool = True) -> None:
        self.unlink_on_listen = unlink_on_listen
        self.path: str | None = None
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        # Tests only: called with the path right after bind, to swap the file for something else.
        self._after_bind: Callable[[str], object] | None = None

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
        if self._after_bind is not None:
            self._after_bind(path)
        try:
            info = os.lstat(path)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot inspect the socket {path} after bind: {exc}") from exc
        if (
            not stat.S_ISSOCK(info.st_mode)
            or info.st_uid != os.geteuid()
            or stat.S_IMODE(info.st_mode) != 0o600
        ):
            # Swapped for something else since bind (spec 7.3): whatever it is stays, untouched.
            sock.close()
            raise TransportError(
                f"the socket file {path} was replaced after bind (now mode "
                f"{stat.filemode(info.st_mode)}, uid {info.st_uid}): refusing to listen"
            )
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


def _stderr_in_utf8() -> None:
    # The parent reads a worker's stderr as UTF-8 (spec, "Channels"): under a locale that is
    # not UTF-8, Python's own encoding lost the text of every log line and traceback that was
    # not ASCII (U+FFFD, or backslash escapes for what the locale cannot hold).
    stderr = sys.stderr
    if isinstance(stderr, io.TextIOWrapper) and stderr.encoding.lower() not in ("utf-8", "utf8"):
        stderr.reconfigure(encoding="utf-8", errors="backslashreplace")


class TransportFactory:
    """Constructors for every transport (the design's ``TransportFactory``)."""

    @staticmethod
    def create_stdio(*, protect_stdout: bool = True, protect_stdin: bool = True) -> FdTransport:
        """The worker's control transport: its stdin, and its real stdout (PROTOCOL.md 1.5).

        With ``protect_stdout`` the protocol keeps a private duplicate of file descriptor 1, and
        fd 1 itself (and ``sys.stdout``) is pointed at stderr, so a stray ``print`` anywhere in the
        process (also from C code or child processes) cannot corrupt the control channel. With
        ``protect_stdin`` it keeps a private duplicate of file descriptor 0, and fd 0 is pointed at
        ``/dev/null``: a child process started with subprocess's defaults inherits fd 0, and one
        that reads it (a tool that polls its stdin for keyboard commands) would take the parent's
        messages. The duplicates are not inherited by child processes (PEP 446).
        """
        out_fd = os.dup(1)
        _stderr_in_utf8()
        if protect_stdout:
            sys.stdout.flush()
            os.dup2(2, 1)
            sys.stdout = sys.stderr
        read_fd = os.dup(0)
        if protect_stdin:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)  # sys.stdin reads fd 0: from now on it reads end of file
            os.close(null)
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
