"""What the parent logs, and under which names.

- ``aspect_ipc.manager``: the workers' life cycle, one record per event: INFO spawn, ready,
  exit, stop, a restart by ``restart()``; WARNING crash, restart, a hung worker (health check);
  ERROR failed.
- ``aspect_ipc.worker.<worker id>``: that worker's stderr, one record per line (INFO, or the
  line's own level), and its stray stdout (WARNING).
- ``aspect_ipc.channel``: protocol oddities on a channel (undecodable or invalid messages,
  answers to unknown ids, failed notification handlers).

A stderr line that is a JSON object with a level, as hashicorp's go-plugin and other structured
loggers write it (``{"@level": "warn", "@message": "..."}``), keeps its level: ``@level`` or
``level`` in trace, debug, info, warn, warning, error (any case), the message from ``@message``,
``message`` or ``msg`` (the whole line if none). Every record carries ``worker_id`` (and
lifecycle records ``event``) as attributes, for filters and structured handlers.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from ._loggers import library_logger
from ._stderr import CAUSES
from .options import EventKind, ProcessEvent

__all__ = ["LEVELS", "log_event", "log_stderr_line", "manager_logger"]

manager_logger = library_logger("aspect_ipc.manager")

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
"""Levels a structured stderr line may name, and the ``logging`` level each maps to."""

_EVENT_LEVELS = {
    EventKind.SPAWN: logging.INFO,
    EventKind.READY: logging.INFO,
    EventKind.EXIT: logging.INFO,
    EventKind.STOP: logging.INFO,
    EventKind.CRASH: logging.WARNING,
    EventKind.RESTART: logging.WARNING,
    EventKind.FAILED: logging.ERROR,
}


def log_event(event: ProcessEvent) -> None:
    """One line on ``aspect_ipc.manager`` for a life cycle event (``output`` is not one)."""
    level = _EVENT_LEVELS.get(event.kind)
    if event.kind is EventKind.RESTART and event.info.get("requested"):
        level = logging.INFO  # asked for by restart(): nothing went wrong
    if level is None or not manager_logger.isEnabledFor(level):
        return
    extra = {"worker_id": event.worker_id, "event": event.kind.value}
    manager_logger.log(level, "worker %s: %s", event.worker_id, _describe(event), extra=extra)


def _describe(event: ProcessEvent) -> str:
    kind = event.kind
    if kind is EventKind.SPAWN:
        return f"spawned (pid {event.pid})"
    if kind is EventKind.READY:
        language = event.info.get("language")
        return f"ready (pid {event.pid}{f', {language}' if language else ''})"
    if kind is EventKind.EXIT:
        return f"exited ({_status(event)})"
    if kind is EventKind.STOP:
        return "stopped" if event.info.get("requested") else "stopped: it exited on its own"
    if kind is EventKind.CRASH:
        why = crash_summary(event.error) if event.error else _status(event)
        return f"crashed: {why}"
    if kind is EventKind.RESTART:
        if event.info.get("requested"):
            return "restarting: restart() was called"
        return f"restarting in {event.delay:g} s (attempt {event.attempt})"
    why = crash_summary(event.error) if event.error else "unknown"
    return f"failed for good, no more restarts; its last crash: {why}"


_TAIL_HEADING = "; last lines of its stderr:"


def crash_summary(error: BaseException) -> str:
    """One line for a crash: the error's first line and the line of the worker's stderr that
    says most about it (the whole tail stays in the error's message and ``stderr_tail``)."""
    first = str(error).split("\n", 1)[0].removesuffix(_TAIL_HEADING)
    tail = getattr(error, "stderr_tail", "") or ""
    telling = _telling_line([line for line in tail.splitlines() if line.strip()])
    return f"{first}; its stderr ended with: {telling}" if telling else first


# An exception's own line, as Python and Node.js print it last before a stack or a trailer
# ("ValueError: x", "TypeError [ERR_X]: y"), and Node's closing trailer ("Node.js v20.20.2").
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b[^:]{0,60}: ")
_NODE_TRAILER = re.compile(r"^Node\.js v\d")
# What Node prints after an exception's line: its stack, and the error's own properties in braces.
_NODE_FRAME = re.compile(r"^\s+at |^\s*$|^\s*[{}]\s*$|^\s+\w+: ")


def _telling_line(lines: list[str]) -> str:
    """The runtime's cause line if there is one (a Go panic or fatal error, Node's fatal
    error); else the exception line of the trace that ends the tail, if it ends with one;
    else the last line but Node's version trailer.

    Only the trace at the end: an exception line further up belongs to an error the worker
    logged and lived on after (a handler's failure, answered), and quoting it blamed the wrong
    request for a crash (the realistic-apps drill)."""
    for line in lines:
        if line.startswith(CAUSES):
            return line
    while lines and _NODE_TRAILER.match(lines[-1]):
        lines = lines[:-1]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line
        if not _NODE_FRAME.match(line):  # Node prints its stack after the exception line
            break
    return lines[-1] if lines else ""


def _status(event: ProcessEvent) -> str:
    if event.signal is not None:
        return f"signal {event.signal}"
    return f"code {event.exit_code}"


def log_stderr_line(logger: logging.Logger, worker_id: str, line: str) -> None:
    """Log a worker's stderr line on ``logger``: INFO, or the level a JSON line names."""
    level, message = logging.INFO, line
    if line.startswith("{") and line.endswith("}"):
        level, message = _structured(line)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", message, extra={"worker_id": worker_id})


def _structured(line: str) -> tuple[int, str]:
    try:
        record: Any = json.loads(line)
    except ValueError:
        return logging.INFO, line
    if not isinstance(record, dict):
        return logging.INFO, line
    named = record.get("@level", record.get("level"))
    level = LEVELS.get(named.lower()) if isinstance(named, str) else None
    if level is None:
        return logging.INFO, line
    for key in ("@message", "message", "msg"):
        message = record.get(key)
        if isinstance(message, str):
            return level, message
    return level, line
