"""Listeners of process events: the registry a manager and each of its handles keep."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .options import ProcessEvent

__all__ = ["Listener", "Listeners"]

logger = logging.getLogger("aspect_ipc.manager")

Listener = Callable[[ProcessEvent], Any]


class Listeners:
    """Callbacks by event kind; a callback that raises is logged, the others still run."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Listener]] = {}

    def add(self, kind: str, callback: Listener) -> None:
        """Call ``callback(event)`` for events of ``kind``."""
        self._callbacks.setdefault(kind, []).append(callback)

    def emit(self, event: ProcessEvent, *, also: Listeners | None = None) -> None:
        """Call this registry's callbacks for ``event``, then those of ``also``."""
        callbacks = [*self._callbacks.get(event.kind, ())]
        if also is not None:
            callbacks += also._callbacks.get(event.kind, ())
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                logger.exception("worker %s: %s event callback failed", event.worker_id, event.kind)
