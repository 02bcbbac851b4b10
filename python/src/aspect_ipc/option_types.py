"""The keyword arguments of ``spawn``, ``ProcessManager`` and ``WorkerPool.map`` as TypedDicts.

The calls that pass options on (``spawn_pool``, the blocking API's ``ProcessManager``, ``spawn``,
``spawn_pool`` and ``map``) take them as ``**options: Unpack[...]``, so that a type checker
checks each name and type there as it does on the async call itself. A program that keeps a
worker's options in a dict annotates it with :class:`SpawnOptions` to pass it as ``**options``::

    WORKER: SpawnOptions = {"executable": sys.executable, "args": ["worker.py"]}
    pool = await manager.spawn_pool("squares", 2, **WORKER)

They are plain dicts at run time; a test holds each to the signature it describes.
"""

# No ``from __future__ import annotations``: the TypedDicts' annotations are evaluated, so that
# ``Required`` is seen at run time too (``SpawnOptions.__required_keys__``).
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Required, TypedDict

from .options import ControlChannelOptions, DataChannelOptions, HealthCheck, RestartPolicy

if TYPE_CHECKING:
    from .handle import ProcessHandle

__all__ = ["ManagerOptions", "MapOptions", "SpawnOptions"]


class SpawnOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`aspect_ipc.ProcessManager.spawn` (``executable``
    required); the meaning of each is given there."""

    executable: Required[str | os.PathLike[str]]
    args: Sequence[str | os.PathLike[str]]
    cwd: str | os.PathLike[str] | None
    env: Mapping[str, str] | None
    control_channel: ControlChannelOptions | None
    data_channel: DataChannelOptions | None
    startup_timeout: float | None
    restart_policy: RestartPolicy | None
    stderr_tail_lines: int
    remote_tracebacks: bool
    health: HealthCheck | None
    metrics: bool | None
    trace: bool | str | None
    setup: Callable[["ProcessHandle"], object] | None


class ManagerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`aspect_ipc.ProcessManager` after ``namespace``."""

    request_timeout: float
    startup_timeout: float
    shutdown_grace: float
    restart_policy: RestartPolicy | None
    socket_dir: str | None
    max_concurrent_starts: int | None
    metrics: bool


class MapOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`aspect_ipc.WorkerPool.map` after the iterable."""

    via: str
    ordered: bool
    max_in_flight: int | None
    retries: int
    return_exceptions: bool
    timeout: float | None
