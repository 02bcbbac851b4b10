"""The worker's lifecycle hooks (``@worker.on(event)``): who listens to what, and calling them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._loggers import library_logger

__all__ = ["Hooks"]

logger = library_logger("aspect_ipc.worker")

C = TypeVar("C", bound=Callable[..., Any])


class Hooks:
    """Callbacks by lifecycle event; one that raises is logged, and the others still run."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {}

    def register(self, event: str) -> Callable[[C], C]:
        """Decorator: call ``callback(argument)`` each time ``event`` is emitted."""

        def register(callback: C) -> C:
            if inspect.iscoroutinefunction(callback):  # its body would never run
                raise TypeError(
                    f"the {event} hook {callback!r} is async: lifecycle hooks are called, not "
                    "awaited; register a plain function (it may start a task of its own)"
                )
            self._listeners.setdefault(event, []).append(callback)
            return callback

        return register

    def emit(self, event: str, **info: Any) -> None:
        """Call ``event``'s callbacks with the dict ``info``."""
        self.call(event, info)

    def call(self, event: str, argument: Any) -> None:
        """Call ``event``'s callbacks with ``argument``, in the order they were registered."""
        for callback in self._listeners.get(event, ()):
            try:
                result = callback(argument)
            except Exception:  # a hook's bug must not stop the worker, nor the other hooks
                logger.exception("the %s hook %r failed", event, callback)
                continue
            if inspect.isawaitable(result):  # a plain function that returned a coroutine
                close = getattr(result, "close", None)
                if close is not None:
                    close()  # never awaited: no RuntimeWarning, and said here instead
                logger.error(
                    "the %s hook %r returned an awaitable, which is not awaited: lifecycle "
                    "hooks are called, not awaited",
                    event,
                    callback,
                )
