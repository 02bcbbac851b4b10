"""The wire trace: every message of a channel, one DEBUG record on ``aspect_ipc.trace``.

``spawn(trace=True)`` (or ``ASPECT_IPC_TRACE=1`` in the parent's environment) gives each channel
a :class:`Tracer`; ``trace="payloads"`` (``ASPECT_IPC_TRACE=payloads``) adds each message's
params, result or error, as a repr truncated to :data:`PAYLOAD_LIMIT` characters. The params of
``$/hello`` (they carry the data channel's token) are never logged.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ._loggers import library_logger
from .constants import METHOD_HELLO

__all__ = ["ENV_TRACE", "PAYLOAD_LIMIT", "Tracer", "trace_mode", "trace_logger"]

trace_logger = library_logger("aspect_ipc.trace")

ENV_TRACE = "ASPECT_IPC_TRACE"
PAYLOAD_LIMIT = 200
"""Characters of a payload's repr a trace record keeps (``trace="payloads"``)."""
# Requests remembered for their answers' method and round trip, per direction: requests never
# answered (a hung peer) must not pile up for ever; the oldest is forgotten first.
_REMEMBERED = 4096

_REDACTED = "<redacted>"


def trace_mode(trace: bool | str | None) -> str | None:
    """``None`` (off), ``"messages"`` or ``"payloads"``, from ``spawn(trace=...)``, or from
    ``ASPECT_IPC_TRACE`` (``1``/``true``/``payloads``) when ``trace`` is None.

    Raises:
        ValueError: ``trace`` is not a bool, None or ``"payloads"``.
    """
    if trace is None:
        value = os.environ.get(ENV_TRACE, "").strip().lower()
        trace = "payloads" if value == "payloads" else value in ("1", "true", "yes", "on")
    if trace is True:
        return "messages"
    if trace is False:
        return None
    if trace == "payloads":
        return "payloads"
    raise ValueError(f"trace must be True, False or 'payloads', not {trace!r}")


class Tracer:
    """Logs one channel's messages; round trips are timed from the send to the answer."""

    __slots__ = ("_ours", "_payloads", "_theirs", "channel", "worker_id")

    def __init__(self, worker_id: str, channel: str, *, payloads: bool = False) -> None:
        self.worker_id = worker_id
        self.channel = channel
        self._payloads = payloads
        self._ours: dict[Any, tuple[str, float]] = {}  # our requests: id -> (method, sent)
        self._theirs: dict[Any, tuple[str, float]] = {}  # the peer's requests being handled

    def sent(self, message: dict[str, Any], size: int) -> None:
        """A message we queued for sending (``size``: its frame's bytes)."""
        self._record("send", message, size, self._ours, self._theirs)

    def received(self, message: Any, size: int) -> None:
        """A decoded message from the peer (any value: invalid ones are logged as such)."""
        if not isinstance(message, dict):
            if trace_logger.isEnabledFor(logging.DEBUG):
                self._log("recv", "invalid", "-", None, size, None, message)
            return
        self._record("recv", message, size, self._theirs, self._ours)

    def _record(
        self,
        direction: str,
        message: dict[str, Any],
        size: int,
        started: dict[Any, tuple[str, float]],
        answered: dict[Any, tuple[str, float]],
    ) -> None:
        method = message.get("method")
        request_id = message.get("id")
        elapsed: float | None = None
        if isinstance(method, str):
            kind = "notification" if "id" not in message else "request"
            if kind == "request":
                if len(started) >= _REMEMBERED:
                    del started[next(iter(started))]
                started[request_id] = (method, time.perf_counter())
            payload = _REDACTED if method == METHOD_HELLO else message.get("params")
        else:
            kind = "error" if "error" in message else "response"
            entry = answered.pop(request_id, None)
            method = "?"
            if entry is not None:
                method, since = entry
                elapsed = time.perf_counter() - since
            payload = message.get("error") if kind == "error" else message.get("result")
        if trace_logger.isEnabledFor(logging.DEBUG):
            self._log(direction, kind, method, request_id, size, elapsed, payload)

    def _log(
        self,
        direction: str,
        kind: str,
        method: str,
        request_id: Any,
        size: int,
        elapsed: float | None,
        payload: Any,
    ) -> None:
        text = "%s %s worker=%s channel=%s method=%s id=%s size=%d"
        args: list[Any] = [direction, kind, self.worker_id, self.channel, method, request_id, size]
        if elapsed is not None:
            text += " rtt=%.3fms"
            args.append(elapsed * 1e3)
        if self._payloads:
            shown = payload if payload is _REDACTED else repr(payload)
            if len(shown) > PAYLOAD_LIMIT:
                shown = shown[:PAYLOAD_LIMIT] + "..."
            text += " payload=%s"
            args.append(shown)
        trace_logger.debug(
            text,
            *args,
            extra={
                "worker_id": self.worker_id,
                "channel": self.channel,
                "direction": direction,
                "kind": kind,
                "method": method,
                "request_id": request_id,
                "size": size,
                "rtt": elapsed,
            },
        )
