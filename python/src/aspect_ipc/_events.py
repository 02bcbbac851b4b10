"""Listeners of process events: the registry a manager and each of its handles keep.

Callbacks are called in the supervisor's task, in order, for the kinds they asked for (or
``"*"``). A callback that returns an awaitable (an ``async def``) is awaited in a task of the
manager's, so that a slow callback never holds up supervision; its failure is logged. Subscribers
of :meth:`Listeners.subscribe` (``manager.events()``) each get a bounded buffer: one that falls
behind loses its oldest events, never holds up the supervisor, and is told how many it lost.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._loggers import library_logger
from .options import EventKind, ProcessEvent

__all__ = [
    "WILDCARD",
    "CallbackRunner",
    "EventStream",
    "Listener",
    "Listeners",
    "check_kind",
    "in_event_callback",
]

logger = library_logger("aspect_ipc.manager")

Listener = Callable[[ProcessEvent], Any]

WILDCARD = "*"
"""``on("*", callback)``: every event, whatever its kind."""

_KINDS = ", ".join(repr(kind.value) for kind in EventKind)


def check_kind(kind: str) -> str:
    """``kind`` if it names an :class:`EventKind` or is ``"*"``; else ValueError listing them."""
    if kind == WILDCARD or kind in EventKind.__members__.values():
        return kind
    raise ValueError(f"unknown event kind {kind!r}: expected one of {_KINDS}, or '*' for all")


class EventStream:
    """``async for event in manager.events():`` every event from the moment of the call.

    The buffer holds ``buffer`` events; when it is full the oldest is dropped and the next event
    delivered carries ``dropped`` (how many were lost). The iteration ends once the manager has
    closed and the buffer is empty, or at :meth:`aclose` (also ``async with``).
    """

    def __init__(self, kinds: frozenset[str], buffer: int) -> None:
        self._kinds = kinds
        self._buffer: collections.deque[ProcessEvent] = collections.deque()
        self._size = buffer
        self._dropped = 0
        self._arrived = anyio.Event()
        self._ended = False

    def _put(self, event: ProcessEvent) -> None:
        if self._ended or (WILDCARD not in self._kinds and event.kind not in self._kinds):
            return
        if len(self._buffer) >= self._size:
            self._buffer.popleft()
            self._dropped += 1  # always the oldest: told with the next event taken
        self._buffer.append(event)
        self._arrived.set()

    def _end(self) -> None:
        self._ended = True
        self._arrived.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ProcessEvent:
        while not self._buffer:
            if self._ended:
                raise StopAsyncIteration
            await self._arrived.wait()
            self._arrived = anyio.Event()
        event = self._buffer.popleft()
        if self._dropped:
            event, self._dropped = dataclasses.replace(event, dropped=self._dropped), 0
        return event

    async def aclose(self) -> None:
        """Stop receiving events; what is buffered is dropped."""
        self._end()
        self._buffer.clear()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


_IN_CALLBACK: ContextVar[bool] = ContextVar("aspect_ipc_in_event_callback", default=False)


def in_event_callback() -> bool:
    """Whether this runs in an async event callback's task (or a task it started)."""
    return _IN_CALLBACK.get()


class CallbackRunner:
    """Runs async event callbacks as tasks of a task group, and knows when they have all ended."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        self._running = 0
        self._idle = anyio.Event()

    def start(self, result: Awaitable[Any], callback: Listener, event: ProcessEvent) -> None:
        """Await ``result`` (what ``callback(event)`` returned) in a task; log its failure."""
        if self._running == 0:
            self._idle = anyio.Event()
        self._running += 1
        self._task_group.start_soon(self._run, result, callback, event, name=f"{callback!r}")

    async def _run(self, result: Awaitable[Any], callback: Listener, event: ProcessEvent) -> None:
        _IN_CALLBACK.set(True)  # this task's own context: see in_event_callback
        try:
            await result
        except Exception:
            _log_failure(callback, event)
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no async callback is running."""
        if self._running:
            await self._idle.wait()


class Listeners:
    """Callbacks by event kind, and ``events()`` subscribers; a callback that raises is logged,
    the others still run."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Listener]] = {}
        # Weak: an iterator the caller dropped (a ``break`` out of ``async for``) goes away.
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self.runner: CallbackRunner | None = None
        """Where async callbacks run (the manager's); None: they are refused, with an error."""

    def add(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` for events of ``kind`` (an :class:`EventKind` or ``"*"``).

        Raises:
            ValueError: ``kind`` is not an event kind.
        """
        check_kind(kind)
        if not callable(callback):
            raise TypeError(f"an event callback must be callable, not {callback!r}")
        self._callbacks.setdefault(kind, []).append(callback)

    def remove(self, kind: str, callback: Listener) -> None:
        """Stop calling ``callback`` for ``kind`` (one registration of it; none: nothing).

        Raises:
            ValueError: ``kind`` is not an event kind.
        """
        check_kind(kind)
        callbacks = self._callbacks.get(kind, [])
        for index in range(len(callbacks) - 1, -1, -1):  # the latest registration first
            if callbacks[index] == callback:
                del callbacks[index]
                break
        if not callbacks:
            self._callbacks.pop(kind, None)

    def subscribe(self, kinds: Iterable[str], buffer: int) -> EventStream:
        """A new :class:`EventStream` of ``kinds`` (all if empty)."""
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"buffer must be a positive number of events, not {buffer!r}")
        chosen = frozenset(check_kind(kind) for kind in kinds) or frozenset({WILDCARD})
        stream = EventStream(chosen, buffer)
        self._streams.add(stream)
        return stream

    async def close(self, grace: float) -> None:
        """The manager closes: wait up to ``grace`` seconds for async callbacks still running,
        then end every subscriber's iteration (once it has what is buffered)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            with anyio.move_on_after(grace):
                await runner.wait_idle()
        for stream in list(self._streams):
            stream._end()
        self._streams = weakref.WeakSet()

    def emit(self, event: ProcessEvent, *, also: Listeners | None = None) -> None:
        """Call this registry's callbacks for ``event``, then those of ``also``; feed the
        subscribers of both."""
        registries = (self,) if also is None else (self, also)
        runner = next((r.runner for r in registries if r.runner is not None), None)
        for registry in registries:
            callbacks = registry._callbacks
            for callback in (*callbacks.get(event.kind, ()), *callbacks.get(WILDCARD, ())):
                _call(callback, event, runner)
            for stream in list(registry._streams):
                stream._put(event)


def _call(callback: Listener, event: ProcessEvent, runner: CallbackRunner | None) -> None:
    try:
        result = callback(event)
    except Exception:
        _log_failure(callback, event)
        return
    if not inspect.isawaitable(result):
        return
    if runner is None:
        close = getattr(result, "close", None)  # a coroutine never awaited: no RuntimeWarning
        if close is not None:
            close()
        logger.error(
            "worker %s: the %s event callback %r is async and no open ProcessManager can await "
            "it: async callbacks run in the manager's tasks, inside its 'async with' block",
            event.worker_id,
            event.kind,
            callback,
            extra={"worker_id": event.worker_id, "event": event.kind.value},
        )
        return
    runner.start(result, callback, event)


def _log_failure(callback: Listener, event: ProcessEvent) -> None:
    logger.exception(
        "worker %s: the %s event callback %r failed",
        event.worker_id,
        event.kind,
        callback,
        extra={"worker_id": event.worker_id, "event": event.kind.value},
    )
