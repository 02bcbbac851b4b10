"""Configuration values and events of the process manager."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._calls import seconds_of
from .codecs import Codec, JsonCodec, MessagePackCodec
from .constants import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    MAX_FRAME_SIZE_LIMIT,
    MIN_SIZE_SETTING,
    WINDOWS_PIPE_PREFIX,
)
from .paths import _path_limit, _wire_path

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

    Raises:
        ValueError: ``max_restarts`` is not a whole number >= 0, ``backoff`` or ``max_backoff``
            is not a finite number of seconds >= 0, or ``reset_after`` is not a number of
            seconds >= 0 (``math.inf``: never).
    """

    enabled: bool = False
    """Restart after a crash at all."""
    max_restarts: int = 3
    """Restarts in a row before giving up (state ``failed``)."""
    backoff: float = 1.0
    """Seconds before the first restart; doubled for each further one, up to ``max_backoff``."""
    max_backoff: float = 30.0
    """The longest wait before a restart, in seconds."""
    reset_after: float = 60.0
    """Seconds of uptime (from ready, not from the spawn) after which the restart count starts
    over."""

    def __post_init__(self) -> None:
        # Checked here, not at the first crash: there a bad value would fail the supervisor.
        if not isinstance(self.enabled, bool):
            raise TypeError(f"RestartPolicy enabled must be True or False, not {self.enabled!r}")
        count = self.max_restarts
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(
                f"RestartPolicy max_restarts must be a whole number >= 0, not {count!r}"
            )
        for name in ("backoff", "max_backoff"):
            if not _seconds(getattr(self, name)) or math.isinf(getattr(self, name)):
                raise ValueError(
                    f"RestartPolicy {name} must be a finite number of seconds >= 0, "
                    f"not {getattr(self, name)!r}"
                )
        if not _seconds(self.reset_after):
            raise ValueError(
                "RestartPolicy reset_after must be a number of seconds >= 0 (math.inf: never), "
                f"not {self.reset_after!r}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based)."""
        # 2.0 ** 1023 is the largest power of two a float holds: past it the product is inf (or
        # 0), never an OverflowError, however many restarts in a row (max_restarts is unbounded).
        return float(min(self.backoff * 2.0 ** min(attempt - 1, 1023), self.max_backoff))


def _seconds(value: object) -> bool:
    """Whether ``value`` is a number of seconds >= 0 (not NaN, not a bool, not beyond a float's
    range); inf included."""
    seconds = seconds_of(value)
    return seconds is not None and seconds >= 0


MIN_HEALTH_INTERVAL = 0.01
"""The shortest :class:`HealthCheck` interval allowed, in seconds."""


@dataclass(frozen=True)
class HealthCheck:
    """Ping a running worker (``$/ping`` on the control channel) every ``interval`` seconds; one
    that does not answer within ``timeout`` seconds is hung: it is killed (SIGKILL to its
    process group) and handled as a crash (restart policy, ``WorkerHung`` for pending requests).

    A worker is seen as hung ``interval`` + ``timeout`` seconds after it stops answering, at the
    latest. A handler that blocks the worker's event loop (Python, Node) longer than ``timeout``
    also misses its ping: choose ``timeout`` above the longest such handler.

    Raises:
        ValueError: ``interval`` or ``timeout`` is not a positive, finite number of seconds,
            or ``interval`` is below :data:`MIN_HEALTH_INTERVAL`.
    """

    interval: float = 10.0
    """Seconds between two pings of a running worker (at least :data:`MIN_HEALTH_INTERVAL`)."""
    timeout: float = 5.0
    """Seconds a ping may take before the worker counts as hung."""

    def __post_init__(self) -> None:
        for name in ("interval", "timeout"):
            value = getattr(self, name)
            seconds = seconds_of(value)
            if seconds is None or not math.isfinite(seconds) or seconds <= 0:
                raise ValueError(
                    f"HealthCheck {name} must be a positive, finite number of seconds, "
                    f"not {value!r}"
                )
        if self.interval < MIN_HEALTH_INTERVAL:
            # 1e-9 pinged a worker thousands of times a second: the checking became the load.
            raise ValueError(
                f"HealthCheck interval must be at least {MIN_HEALTH_INTERVAL} s, not "
                f"{self.interval!r}: pings more frequent than that are a load on the worker, "
                "and detect a hung one no sooner than its timeout does"
            )


@dataclass(frozen=True)
class ControlChannelOptions:
    """The control channel (stdio): line-delimited JSON by default."""

    codec: Codec = field(default_factory=JsonCodec)
    """The codec of the control channel's messages (JSON: the spec's control codec)."""
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    """The longest line either side may send, in bytes (1024..2^32-1); passed to the worker."""

    def __post_init__(self) -> None:
        _check_codec("ControlChannelOptions", self.codec)
        _check_size("max_line_length", "ASPECT_IPC_MAX_LINE_LENGTH", self.max_line_length)


def _check_codec(options: str, codec: object) -> None:
    control = options == "ControlChannelOptions"
    wanted, name = ("JsonCodec", "json") if control else ("MessagePackCodec", "msgpack")
    if not isinstance(codec, Codec):
        raise TypeError(f"{options} codec must be a {wanted}, not {codec!r:.80}")
    if codec.name != name:
        # The wire fixes each channel's serialization (spec 1, 2): a worker would not
        # understand another one, and the start-up would time out without saying why.
        channel, carries = ("control", "JSON lines") if control else ("data", "MessagePack")
        raise ValueError(
            f"{options} codec must be a {wanted} (with hooks if you need them), not "
            f"{type(codec).__name__} ({codec.name!r}): the {channel} channel carries {carries} "
            "in every SDK (spec sections 1 and 2)"
        )


@dataclass(frozen=True)
class DataChannelOptions:
    """The data channel (Unix socket): length-prefixed MessagePack by default.

    ``path`` defaults to ``PipePath.for_module(namespace, worker_id)``.
    """

    enabled: bool = False
    """Open the data channel (a Unix socket the worker listens on)."""
    path: str | None = None
    """The socket path; None: ``PipePath.for_module(namespace, worker_id)``. A relative path is
    made absolute (from the parent's working directory), since the worker may run elsewhere."""
    codec: Codec = field(default_factory=MessagePackCodec)
    """The codec of the data channel's frames (MessagePack: the spec's data codec)."""
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    """The largest frame either side may send, in bytes (1024..2^32-1); passed to the worker."""
    busy_poll: float = 0.0
    """Seconds (0 to 0.01) a request waits for its answer by reading the socket without
    sleeping, before it sleeps in the event loop as usual; 0 (the default): never. It trades
    CPU for latency: a small round trip no longer pays for waking a sleeping thread (see the
    parent guide, "Busy polling"). Only on asyncio, only when the request is the channel's only
    one in flight and nothing else is ready to run in the loop; the loop runs nothing else
    meanwhile. The blocking API's calls, written by the calling thread, do not poll."""
    receive_wait: float = 0.0
    """Seconds (0 to 0.01, such as 200e-6) a request may wait for its answer asleep in the
    socket's receive call, before it waits in the event loop as usual; 0 (the default): never.
    A thread asleep in a receive call is woken by the answer sooner than one in ``epoll_wait``
    on many machines, and uses no CPU meanwhile; but the loop runs nothing else until bytes
    come, or for one or two scheduler ticks (milliseconds) if none do, however short the value
    (see the parent guide, "Waiting in the receive call"). On asyncio's own loop only, only for
    a request that is the channel's only one in flight, with nothing else ready to run and no
    timer due within 10 ms. After a wait that runs out, or outlasts the value, the next
    requests skip theirs for a while. With ``busy_poll`` set, requests poll instead."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise TypeError(
                f"DataChannelOptions enabled must be True or False, not {self.enabled!r}"
            )
        if self.path is not None:
            if not isinstance(self.path, str | os.PathLike):
                raise TypeError(
                    f"DataChannelOptions path must be a string or None, not {self.path!r}"
                )
            path = os.fspath(self.path)
            if path and not path.startswith(WINDOWS_PIPE_PREFIX):
                path = os.path.abspath(path)
                _check_socket_path_length(path)
            object.__setattr__(self, "path", path)
        _check_codec("DataChannelOptions", self.codec)
        _check_size("max_frame_size", "ASPECT_IPC_MAX_FRAME_SIZE", self.max_frame_size)
        check_busy_poll(self.busy_poll)
        check_busy_poll(self.receive_wait, "receive_wait")


def _check_socket_path_length(path: str) -> None:
    # Checked here, before a worker is started on it: one that cannot bind it exits with a
    # message of its own (or, Node, binds the 108 bytes Linux takes without the NUL and is never
    # reached, its socket file left behind).
    _wire_path(path, "DataChannelOptions path")
    platform, limit = _path_limit()
    size = len(os.fsencode(path))
    if size > limit:
        raise ValueError(
            f"DataChannelOptions path {path!r} is {size} bytes, over the {limit}-byte limit of a "
            f"socket path on {platform}: choose a shorter path"
        )


MAX_BUSY_POLL = 0.01
"""The longest busy poll (or receive wait) allowed, in seconds: beyond it, the event loop's
own wait costs little in comparison."""


def check_busy_poll(value: object, name: str = "busy_poll") -> None:
    """Raise ValueError unless ``value`` is a number of seconds from 0 to MAX_BUSY_POLL."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_BUSY_POLL
    ):
        raise ValueError(
            f"{name} must be a number of seconds from 0 (off) to {MAX_BUSY_POLL:g}, such as "
            f"0.00005 (50 µs), not {value!r}"
        )


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
    ``line``). A line longer than 16 KiB comes in pieces, each but the last with
    ``info == {"continues": True}``: joined, they are the line (the log records of the pieces
    end with ``" [line continues]"``). A stdout line over the control channel's
    ``max_line_length`` is skipped, and only logged."""
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
    """What happened (see :class:`EventKind`)."""
    worker_id: str
    """The worker it happened to."""
    pid: int | None = None
    """The worker process's pid, when there is one."""
    exit_code: int | None = None
    """``exit``/``crash``: the exit code, or None when a signal ended the process."""
    signal: int | None = None
    """``exit``/``crash``: the signal that ended the process, or None."""
    attempt: int | None = None
    """``restart``: which restart in a row this is (1-based)."""
    delay: float | None = None
    """``restart``: seconds until the new process starts."""
    stream: str | None = None
    """``output``: ``"stderr"``, or ``"stdout"`` for stray output on the control channel."""
    line: str | None = None
    """``output``: the line (a piece of it, for a line over 16 KiB: ``info["continues"]``)."""
    error: BaseException | None = None
    """``crash``/``failed``: the error pending requests got (``WorkerCrashed``, ``WorkerHung``), or
    a restart's ``StartupError`` (e.g. ``WorkerExitedDuringStartup``) when it failed to start."""
    info: dict[str, Any] = field(default_factory=dict)
    """Kind-specific details: ``ready``: the worker's ``$/ready`` params; ``crash``: ``hung``;
    ``restart``/``stop``: ``requested``; ``output``: ``continues``."""
    dropped: int = 0
    """For ``events()`` subscribers: older events lost just before this one."""
