"""OS-level helpers of the process manager: environment, executables, signals, peers, stderr."""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import secrets
import shutil
import signal
import stat
from collections.abc import Callable, Mapping

import anyio

from .constants import (
    ENV_DATA_PATH,
    ENV_MAX_FRAME_SIZE,
    ENV_NAMESPACE,
    ENV_PREFIX,
    ENV_PROTOCOL,
    ENV_TOKEN,
    ENV_WORKER_ID,
    PROTOCOL_VERSION,
)
from .errors import AddressInUse, ExecutableNotFound, TransportError
from .frozen import child_environment
from .transports import FdTransport

__all__ = [
    "StderrPump",
    "build_env",
    "check_data_path_free",
    "is_descendant",
    "new_token",
    "resolve_executable",
    "signal_group",
]


def new_token() -> str:
    """A fresh per-spawn secret: 32 bytes from the OS CSPRNG, as 64 hex digits."""
    return secrets.token_hex(32)


def build_env(
    *,
    namespace: str,
    worker_id: str,
    user_env: Mapping[str, str] | None,
    data_path: str | None,
    token: str | None,
    max_frame_size: int,
) -> dict[str, str]:
    """The worker's environment (spec 5): ours minus inherited ``ASPECT_IPC_*``, plus the user's.

    "Ours" is the environment as it was before a frozen binary's bootloader changed it.
    """
    inherited = child_environment(os.environ)
    env = {k: v for k, v in inherited.items() if not k.startswith(ENV_PREFIX)}
    env.update(user_env or {})
    env[ENV_PROTOCOL] = str(PROTOCOL_VERSION)
    env[ENV_WORKER_ID] = worker_id
    env[ENV_NAMESPACE] = namespace
    if data_path is not None and token is not None:
        env[ENV_DATA_PATH] = data_path
        env[ENV_TOKEN] = token
        env[ENV_MAX_FRAME_SIZE] = str(max_frame_size)
    return env


def resolve_executable(executable: str, env: Mapping[str, str], cwd: str | None) -> str:
    """Find ``executable`` the way the child's ``PATH`` would, or raise ExecutableNotFound."""
    if os.sep in executable:
        candidate = (
            executable if os.path.isabs(executable) else os.path.join(cwd or ".", executable)
        )
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return executable
        reason = "not executable" if os.path.exists(candidate) else "no such file"
        raise ExecutableNotFound(f"executable not found: {executable} ({reason})")
    found = shutil.which(executable, path=env.get("PATH", os.defpath))
    if found is None:
        raise ExecutableNotFound(
            f"executable not found: {executable!r} is not on the worker's PATH "
            f"({env.get('PATH', os.defpath)})"
        )
    return found


async def check_data_path_free(path: str) -> None:
    """Fail early if a live worker, or a non-socket file, holds ``path`` (spec 6.4).

    A stale socket is left for the worker to remove (spec 7.3).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TransportError(f"cannot inspect {path}: {exc.strerror}") from exc
    if not stat.S_ISSOCK(info.st_mode):
        raise AddressInUse(f"path exists and is not a socket: {path}", path)
    try:
        stream = await anyio.connect_unix(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return
        raise TransportError(f"cannot probe {path}: {exc.strerror}") from exc
    await stream.aclose()
    raise AddressInUse(
        f"address in use by a live worker: {path} (is another parent running a worker with this "
        "namespace and id? use another namespace or id, or stop it)",
        path,
    )


def is_descendant(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants (Linux ``/proc``; else ==)."""
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            return False
        pid = int(fields[1])
        seen += 1
    return pid == ancestor


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a worker's process group; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class StderrPump:
    """Forwards a worker's stderr line by line and keeps its last lines for error messages."""

    def __init__(self, transport: FdTransport, on_line: Callable[[str], None], keep: int) -> None:
        self._transport = transport
        self._on_line = on_line
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._partial = b""
        self.closed = False
        self._closed_event = anyio.Event()

    def tail(self) -> str:
        """The last lines the worker wrote to stderr."""
        lines = list(self._tail)
        if self._partial:
            lines.append(self._partial.decode("utf-8", "replace"))
        return "\n".join(lines)

    async def run(self) -> None:
        """Forward until end of stream."""
        while not self.closed:
            try:
                data = await self._transport.receive()
            except TransportError:
                data = b""
            self._feed(data)

    async def wait_closed(self) -> None:
        """Wait until the worker's stderr has reached its end."""
        await self._closed_event.wait()

    def drain_now(self) -> None:
        """Forward what the worker has already written, without waiting."""
        while not self.closed:
            try:
                data = self._transport.receive_nowait()
            except TransportError:
                data = b""
            if data is None:
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        if not data:
            self.closed = True
            self._closed_event.set()
            if self._partial:
                self._emit(self._partial)
                self._partial = b""
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._emit(line)

    def _emit(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        self._tail.append(line)
        self._on_line(line)

    async def aclose(self) -> None:
        self.closed = True
        await self._transport.aclose()
