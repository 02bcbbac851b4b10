"""OS-level helpers of the process manager: environment, executables, data paths, peers."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import stat
import sys
from collections.abc import Mapping

from ._loggers import library_logger
from ._socket_path import probe_socket
from .constants import (
    ENV_DATA_PATH,
    ENV_MAX_FRAME_SIZE,
    ENV_MAX_LINE_LENGTH,
    ENV_NAMESPACE,
    ENV_PREFIX,
    ENV_PROTOCOL,
    ENV_TOKEN,
    ENV_WORKER_ID,
    PROTOCOL_VERSION,
)
from .errors import AddressInUse, ExecutableNotFound, StartupError, TransportError
from .frozen import child_environment
from .paths import _wire_path

__all__ = [
    "build_env",
    "check_data_path_free",
    "encode_env",
    "is_descendant",
    "new_token",
    "resolve_executable",
    "start_failure",
    "startup_os_error",
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
    max_line_length: int,
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
    env[ENV_MAX_LINE_LENGTH] = str(max_line_length)  # control always exists (decision D15)
    if data_path is not None and token is not None:
        env[ENV_DATA_PATH] = _wire_path(data_path)
        env[ENV_TOKEN] = token
        env[ENV_MAX_FRAME_SIZE] = str(max_frame_size)
    return env


def encode_env(env: Mapping[str, str]) -> dict[bytes, bytes]:
    """``env`` as the bytes the worker gets (spec 5.1): ``ASPECT_IPC_*`` values in UTF-8 whatever
    the locale (a Go or Node worker reads them so), the others as Python would pass them.

    Raises:
        ValueError: a variable has a character this locale cannot encode; it is named.
    """
    encoded: dict[bytes, bytes] = {}
    for name, value in env.items():
        try:
            ours = name.startswith(ENV_PREFIX)
            encoded[os.fsencode(name)] = value.encode("utf-8") if ours else os.fsencode(value)
        except UnicodeError:
            raise ValueError(
                f"the worker's environment variable {name!r:.80} cannot be passed: it has a "
                f"character this process's locale ({sys.getfilesystemencoding()}) cannot "
                "encode; run Python in UTF-8 mode (PYTHONUTF8=1 or -X utf8), or leave it out"
            ) from None
    return encoded


def resolve_executable(executable: str, env: Mapping[str, str], cwd: str | None) -> str:
    """Find ``executable`` the way the child's ``PATH`` would, or raise ExecutableNotFound;
    StartupError for a ``cwd`` that is not a directory (the OS would say "No such file or
    directory" for it, which reads as if the executable were missing)."""
    if cwd is not None and not os.path.isdir(cwd):
        what = "does not exist" if not os.path.lexists(cwd) else "is not a directory"
        raise StartupError(
            f"cannot start {executable}: its working directory {cwd} {what}; give spawn() a cwd "
            "that is an existing directory"
        )
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


def check_data_path_free(path: str) -> None:
    """Fail early if a live worker, or a non-socket file, holds ``path`` (spec 6.4).

    A stale socket is left for the worker to remove (spec 7.3).

    Raises:
        AddressInUse: see :func:`~aspect_ipc.transports.probe_socket`.
        StartupError: the OS refused the probe; the OSError is chained as the cause.
    """
    _check_socket_directory(path)
    try:
        os.lstat(path)  # only to say "inspect" (not "probe") when the path itself is unusable
    except FileNotFoundError:
        return
    except OSError as exc:
        raise startup_os_error(f"cannot inspect the data path {path}", exc) from exc
    try:
        probe_socket(path)
    except AddressInUse:
        raise
    except TransportError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError):
            raise startup_os_error(f"cannot probe the data path {path}", cause) from cause
        raise


def _check_socket_directory(path: str) -> None:
    """The worker must be able to create its socket in the path's directory: say so up front,
    with what to do, rather than let the worker fail to listen."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.lexists(directory) else "is not a directory"
    elif not os.access(directory, os.W_OK | os.X_OK):
        what = "is not writable"
    else:
        _warn_if_open_to_all(directory)
        return
    raise StartupError(
        f"the socket directory {directory} {what}: the worker cannot create its data socket "
        f"{path} there; create the directory, or choose a writable one: "
        "ProcessManager(socket_dir=...), DataChannelOptions(path=...), or the CLI's --socket-dir"
    )


_warned_directories: set[str] = set()


def _warn_if_open_to_all(directory: str) -> None:
    """A directory every user may write to without the sticky bit (``/tmp`` has it) lets any of
    them remove or replace a worker's socket: the peer check refuses a replaced one, so it is a
    denial of service, not a leak. Said once per directory, at the first spawn there."""
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return
    if not mode & stat.S_IWOTH or mode & stat.S_ISVTX or directory in _warned_directories:
        return
    _warned_directories.add(directory)
    library_logger("aspect_ipc.manager").warning(
        "the socket directory %s is writable by every user and not sticky: any local user can "
        "remove or replace the workers' data sockets there (the parent then refuses to talk to "
        "the impostor, and the spawn fails); make it sticky (chmod +t) or not world-writable "
        "(chmod o-w), or choose another socket_dir",
        directory,
    )


def start_failure(executable: str, exc: OSError | ValueError) -> Exception:
    """What to raise when the worker process cannot be started (the one translation).

    The caller raises it ``from exc`` (a ValueError: ``from None``).
    """
    if isinstance(exc, ValueError):  # a NUL byte in an argument or the environment
        return ValueError(f"cannot start {executable}: {exc}")
    if isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError):
        return ExecutableNotFound(f"cannot start {executable}: {exc.strerror}")
    return startup_os_error(f"cannot start {executable}", exc)


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


_ADVICE = {
    errno.EMFILE: "this process has too many open files: raise its limit (ulimit -n) or close some",
    errno.ENFILE: "the system has too many open files",
    errno.EACCES: "permission denied: check the directory's permissions, or choose another "
    "socket_dir / data path",
    errno.EPERM: "operation not permitted",
    errno.ENOMEM: "out of memory",
    errno.EAGAIN: "too many processes (ulimit -u) or not enough memory",
}


def startup_os_error(doing: str, exc: OSError) -> StartupError:
    """A StartupError for an OS failure while starting a worker: what, why, what to do.

    The caller raises it ``from exc``, so the OS error stays attached as its cause.
    """
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno or 0)
    return StartupError(f"{doing}: {reason}" + (f" ({advice})" if advice else ""))


_warned_sigchld = False


def warn_if_exits_unknowable() -> None:
    """With SIGCHLD ignored the kernel reaps every child at once, and nobody can learn how a
    worker ended: each end reads as a crash of unknown status. Said once, at the first spawn."""
    global _warned_sigchld
    sigchld = getattr(signal, "SIGCHLD", None)
    if _warned_sigchld or sigchld is None or signal.getsignal(sigchld) != signal.SIG_IGN:
        return
    _warned_sigchld = True
    library_logger("aspect_ipc.manager").warning(
        "SIGCHLD is ignored in this process (signal.SIG_IGN): the kernel reaps workers as they "
        "end, so their exit codes and signals cannot be known, and every end, a clean one "
        "included, reads as a crash of unknown status; give SIGCHLD its default action back "
        "(signal.signal(signal.SIGCHLD, signal.SIG_DFL)) before spawning workers"
    )
