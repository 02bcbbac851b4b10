"""The socket file of a data path (spec 6.4, 7.3): is it usable, is it stale, who is there.

The one probe of a data path: the worker's listener and the parent's check before a spawn both
use :func:`probe_socket`, so they agree on what is stale and what is alive.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import sys

from .constants import WINDOWS_PIPE_PREFIX
from .errors import AddressInUse, TransportError
from .paths import _path_limit

__all__ = [
    "PeerCredentials",
    "check_unix_path",
    "connect_unix",
    "in_use_message",
    "probe_socket",
    "remove_stale_socket",
]


class PeerCredentials(tuple[int, int, int]):
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket."""

    __slots__ = ()

    @property
    def pid(self) -> int:
        return self[0]

    @property
    def uid(self) -> int:
        return self[1]

    @property
    def gid(self) -> int:
        return self[2]


def check_unix_path(path: str) -> None:
    if path.startswith(WINDOWS_PIPE_PREFIX):
        raise TransportError(
            f"{path} is a Windows named pipe; named pipes are not available on {sys.platform} "
            "with this SDK: use a Unix socket path"
        )
    if not hasattr(socket, "AF_UNIX"):
        raise TransportError(f"Unix domain sockets are not available on {sys.platform}")
    if len(os.fsencode(path)) > _path_limit()[1]:
        raise TransportError(
            f"socket path is too long for {sys.platform} ({len(os.fsencode(path))} bytes): {path}"
        )


def in_use_message(path: str, owner: str = "") -> str:
    return (
        f"address in use by a live worker: {path} (another process is listening there; "
        f"stop it, or use another namespace or worker id){owner}"
    )


def _owner_note(path: str, info: os.stat_result) -> str:
    """A sentence on the file's owner when it is another user: in a directory others may write
    to (``/tmp``), anyone can take a predictable path first, and only another directory helps."""
    if info.st_uid == os.geteuid():
        return ""
    try:
        import pwd

        name = f"{pwd.getpwuid(info.st_uid).pw_name} (uid {info.st_uid})"
    except (ImportError, KeyError):
        name = f"uid {info.st_uid}"
    return (
        f". It belongs to another user, {name}: in a directory others can write to, such as "
        f"{os.path.dirname(path) or '.'}, anyone can take a predictable path first; give "
        "ProcessManager(socket_dir=...) a directory only you can write to"
    )


def _removable(path: str, info: os.stat_result) -> bool:
    """Whether this process may unlink ``path``: not another user's file in a sticky directory
    (``/tmp``), unless it is root or owns the directory."""
    euid = os.geteuid()
    if euid == 0 or info.st_uid == euid:
        return True
    try:
        directory = os.stat(os.path.dirname(path) or ".")
    except OSError:
        return True  # the unlink itself will say
    return not (directory.st_mode & stat.S_ISVTX) or directory.st_uid == euid


def probe_socket(path: str) -> bool:
    """Whether a stale socket is at ``path`` (spec 6.4, 7.3): the one probe of a data path.

    Returns False when nothing is there, True for a socket nobody listens on (safe to remove).

    Raises:
        AddressInUse: a live listener is there (one that accepts, or whose backlog is full:
            EAGAIN), or a file that is not a socket.
        TransportError: the OS refused to tell (EACCES...); the OSError is its ``__cause__``.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise TransportError(f"cannot inspect {path}: {exc.strerror}") from exc
    owner = _owner_note(path, info)
    if not stat.S_ISSOCK(info.st_mode):
        raise AddressInUse(
            f"path exists and is not a socket: {path} (refusing to remove it; "
            f"choose another path or remove the file yourself){owner}",
            path,
        )
    try:
        probe = connect_unix(path)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:  # a listener whose backlog is full: alive
            raise AddressInUse(in_use_message(path, owner), path) from exc
        if exc.errno == errno.ENOENT:  # removed since lstat: nothing there
            return False
        if exc.errno in (errno.EACCES, errno.EPERM) and owner:
            raise AddressInUse(
                f"another user's socket is at {path}, and this process may not connect to it "
                f"to tell whether anyone listens{owner}",
                path,
            ) from exc
        if exc.errno != errno.ECONNREFUSED:
            raise TransportError(f"cannot probe {path}: {exc.strerror}") from exc
        if not _removable(path, info):
            raise AddressInUse(
                f"a stale socket is at {path}: nobody listens on it, but this process may not "
                f"remove it{owner}",
                path,
            ) from exc
        return True
    probe.close()
    raise AddressInUse(in_use_message(path, owner), path)


async def remove_stale_socket(path: str) -> None:
    """Remove ``path`` only if it is a socket nobody listens on (spec 7.3).

    Raises:
        AddressInUse, TransportError: see :func:`probe_socket`.
    """
    if probe_socket(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def connect_unix(path: str) -> socket.socket:
    # A Unix socket connects at once or fails at once (EAGAIN: the listener's backlog is full):
    # there is nothing to wait for, so a non-blocking connect never needs the event loop.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock
