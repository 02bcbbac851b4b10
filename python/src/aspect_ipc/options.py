"""Configuration values and events of the process manager."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .codecs import Codec, JsonCodec, MessagePackCodec
from .constants import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    MAX_FRAME_SIZE_LIMIT,
    MIN_SIZE_SETTING,
)

__all__ = [
    "ControlChannelOptions",
    "DataChannelOptions",
    "EventKind",
    "HealthCheck",
    "ProcessEvent",
    "RestartPolicy",
    "WorkerState",
]


@dataclass(frozen=True)
class RestartPolicy:
    """When and how fast a crashed worker is restarted.

    Args:
        enabled: restart after a crash at all.
        max_restarts: restarts in a row before giving up (state ``failed``).
        backoff: seconds before the first restart; doubled for each further one...
        max_backoff: ...up to this cap.
        reset_after: seconds of uptime after which a worker counts as stable again, so that the
            restart count starts over (a worker that crashes once a day is never given up on).
    """

    enabled: bool = False
    max_restarts: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    reset_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


@dataclass(frozen=True)
class HealthCheck:
    """Ping a running worker (``$/ping`` on the control channel) every ``interval`` seconds; one
    that does not answer within ``timeout`` seconds is hung: it is killed (SIGKILL to its
    process group) and handled as a crash (restart policy, ``WorkerHung`` for pending requests).

    A worker is seen as hung ``interval`` + ``timeout`` seconds after it stops answering, at the
    latest. A handler that blocks the worker's event loop (Python, Node) longer than ``timeout``
    also misses its ping: choose ``timeout`` above the longest such handler.

    Raises:
        ValueError: ``interval`` or ``timeout`` is not a positive, finite number of seconds.
    """

    interval: float = 10.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("interval", "timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"HealthCheck {name} must be a positive, finite number of seconds, "
                    f"not {value!r}"
                )


@dataclass(frozen=True)
class ControlChannelOptions:
    """The control channel (stdio): line-delimited JSON by default."""

    serialization: Codec = field(default_factory=JsonCodec)
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH

    def __post_init__(self) -> None:
        _check_size("max_line_length", "ASPECT_IPC_MAX_LINE_LENGTH", self.max_line_length)


@dataclass(frozen=True)
class DataChannelOptions:
    """The data channel (Unix socket): length-prefixed MessagePack by default.

    ``path`` defaults to ``PipePath.for_module(namespace, worker_id)``.
    """

    enabled: bool = False
    path: str | None = None
    serialization: Codec = field(default_factory=MessagePackCodec)
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE

    def __post_init__(self) -> None:
        _check_size("max_frame_size", "ASPECT_IPC_MAX_FRAME_SIZE", self.max_frame_size)


def _check_size(name: str, variable: str, value: int) -> None:
    # The worker gets the value in ``variable``, whose grammar (spec 5) allows only this range:
    # refusing it here says why, where a worker would refuse to start (exit code 2).
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_SIZE_SETTING <= value <= MAX_FRAME_SIZE_LIMIT
    ):
        raise ValueError(
            f"{name} must be an integer from {MIN_SIZE_SETTING} to {MAX_FRAME_SIZE_LIMIT} "
            f"bytes (it is passed to the worker in {variable}), not {value!r}"
        )


class WorkerState(StrEnum):
    """The life cycle of a :class:`ProcessHandle`."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    RESTARTING = "restarting"
    FAILED = "failed"


class EventKind(StrEnum):
    """What a :class:`ProcessEvent` reports; ``on()`` and ``events()`` also take ``"*"``, all.

    In a worker's life: ``spawn``, ``ready``, then ``output`` lines; it ends with ``exit`` then
    ``stop`` (it exited cleanly, or was stopped), or ``crash`` then ``restart`` (a new ``spawn``
    follows) or ``failed`` (for good).
    """

    SPAWN = "spawn"
    """The process started (``pid``)."""
    READY = "ready"
    """Both channels are ready (``pid``; ``info``: the worker's ``$/ready`` params)."""
    OUTPUT = "output"
    """A line the worker wrote outside the protocol (``stream``: ``"stderr"`` or ``"stdout"``,
    ``line``). A stderr line longer than 16 KiB comes in pieces: each but the last ends with
    ``" [line continues]"`` and has ``info == {"continues": True}``."""
    EXIT = "exit"
    """The process exited without crashing: a stop, or a clean exit (``exit_code``, ``signal``)."""
    STOP = "stop"
    """The worker is stopped for good, after ``exit`` (``info["requested"]``: by ``stop()`` or
    the manager closing, rather than by exiting on its own)."""
    CRASH = "crash"
    """The process died unexpectedly (``exit_code`` or ``signal``, ``error``). A worker killed
    because it hung (see :class:`HealthCheck`) has ``info["hung"]`` true and a ``WorkerHung``."""
    RESTART = "restart"
    """A restart after a crash is scheduled (``attempt``, ``delay`` in seconds), or, with
    ``info["requested"]`` true, ``restart()`` replaced the worker (``delay`` 0, after ``exit``)."""
    FAILED = "failed"
    """The worker crashed and will not be restarted (``error``)."""


@dataclass(frozen=True)
class ProcessEvent:
    """Something that happened to a worker; ``kind`` (an :class:`EventKind`) says what, and
    which other fields are set.

    ``dropped`` is set on the first event an ``events()`` subscriber gets after it fell behind:
    how many older events its buffer dropped just before this one.
    """

    kind: EventKind
    worker_id: str
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    attempt: int | None = None
    delay: float | None = None
    stream: str | None = None
    line: str | None = None
    error: BaseException | None = None
    info: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0
