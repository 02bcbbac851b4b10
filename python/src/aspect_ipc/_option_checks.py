"""Type checks of the options of ``ProcessManager``, ``spawn`` and ``spawn_pool``: a value of
the wrong type is a TypeError naming the option, before anything starts. Caught later it failed
far from its cause (``health=5`` passed ``spawn()``, then ended the manager's supervision with
``AttributeError: 'int' object has no attribute 'interval'``, stopping every other worker)."""

from __future__ import annotations

import os

from .errors import IpcError
from .options import ControlChannelOptions, DataChannelOptions, HealthCheck, RestartPolicy
from .paths import PipePath, _wire_path

__all__ = [
    "check_callable",
    "check_flag",
    "check_instance",
    "check_lines",
    "check_spawn_options",
    "checked_socket_dir",
]


def check_instance(name: str, value: object, kind: type, *, optional: bool = True) -> None:
    """``value`` is a ``kind`` (or None, if ``optional``)."""
    if (value is None and optional) or isinstance(value, kind):
        return
    raise TypeError(
        f"{name} must be a {kind.__name__}{' or None' if optional else ''}, not "
        f"{type(value).__name__} {value!r:.80}"
    )


def check_flag(name: str, value: object, *, optional: bool = False) -> None:
    """``value`` is True or False (or None, if ``optional``): not a truthy string such as
    ``"no"``."""
    if (value is None and optional) or isinstance(value, bool):
        return
    raise TypeError(
        f"{name} must be True or False{' or None' if optional else ''}, not "
        f"{type(value).__name__} {value!r:.80}"
    )


def check_lines(name: str, value: object) -> None:
    """``value`` is a whole number of lines >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of lines, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")


def check_callable(name: str, value: object) -> None:
    """``value`` is a function (or None)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function or None, not {type(value).__name__}")


def check_spawn_options(
    *,
    control_channel: object,
    data_channel: object,
    restart_policy: object,
    health: object,
    stderr_tail_lines: object,
    remote_tracebacks: object,
    metrics: object,
    setup: object,
) -> None:
    """The types of :meth:`ProcessManager.spawn`'s options (its command: ``_command``)."""
    check_instance("control_channel", control_channel, ControlChannelOptions)
    check_instance("data_channel", data_channel, DataChannelOptions)
    check_instance("restart_policy", restart_policy, RestartPolicy)
    check_instance("health", health, HealthCheck)
    check_lines("stderr_tail_lines", stderr_tail_lines)
    check_flag("remote_tracebacks", remote_tracebacks)
    check_flag("metrics", metrics, optional=True)
    check_callable("setup", setup)


def checked_socket_dir(directory: str | None) -> str | None:
    """``socket_dir`` made absolute; ValueError if even the shortest socket name would not fit
    in it (the OS's limit on a socket path), said at once rather than at the first spawn."""
    if directory is None:
        return None
    if not isinstance(directory, str) or not directory or "\0" in directory:
        raise ValueError(f"socket_dir must be a directory's path, not {directory!r}")
    absolute = os.path.abspath(directory)
    _wire_path(absolute, "socket_dir")
    try:
        # A name that needs its digest (any id not already a short, plain name): a directory
        # that leaves no room for one failed only at the spawn of such an id.
        PipePath.for_module("n", "w/", directory=absolute)
    except IpcError as exc:
        raise ValueError(f"socket_dir: {exc}") from None  # it names the directory and why
    return absolute
