"""Why a worker shuts down, and the params of ``$/shutdown`` (spec 8.1). Pure."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from .errors import RemoteError
from .jsonrpc import ErrorCode

__all__ = ["ShutdownReason", "shutdown_timeout", "shutdown_timeout_for"]


class ShutdownReason(StrEnum):
    """Why a worker is shutting down: what its ``shutting_down`` hook receives.

    The values are the same strings in every SDK.
    """

    SHUTDOWN_REQUEST = "shutdown_request"
    """The parent sent ``$/shutdown`` (a request or a notification)."""
    SHUTDOWN_CALL = "shutdown_call"
    """The worker program called ``Worker.shutdown()``."""
    STDIN_EOF = "stdin_eof"
    """The control channel's input ended: the parent closed it, or is gone."""
    STDOUT_CLOSED = "stdout_closed"
    """The control channel's output broke: nobody reads the worker's stdout any more."""
    PARENT_EXITED = "parent_exited"
    """The parent process died (the worker was re-parented) while its stdin stayed open."""
    SIGNAL = "signal"
    """SIGTERM or SIGINT."""


def shutdown_timeout(params: Any, default: float) -> float:
    """The grace period ``$/shutdown`` asks for: ``params`` absent, ``{}`` or ``{"timeout": t}``
    with ``t`` null (``default``) or a finite number of seconds >= 0.

    Raises:
        RemoteError: ``-32602`` for anything else; the request is answered with it and no
            shutdown happens.
    """
    if params is None:
        return default
    if not isinstance(params, dict):
        raise RemoteError(
            ErrorCode.INVALID_PARAMS,
            'Invalid params: $/shutdown takes a map {"timeout": seconds}, not an array',
        )
    timeout = params.get("timeout")
    if timeout is None:
        return default
    if type(timeout) not in (int, float) or not math.isfinite(timeout) or timeout < 0:
        raise RemoteError(
            ErrorCode.INVALID_PARAMS,
            "Invalid params: $/shutdown timeout must be a finite number of seconds >= 0 "
            f"(or null for the default), got {timeout!r}",
        )
    return float(timeout)


def shutdown_timeout_for(grace: float) -> float:
    """The ``timeout`` of the ``$/shutdown`` sent with ``grace`` seconds to go: 80% of it, and at
    least 0.8 s less. After its timeout the worker waits up to half a second (the SDKs' bound)
    for handlers that ignore their cancellation, answers theirs -32002, then exits (200 ms):
    that must fit in the grace, or the requests in flight end unanswered, killed by SIGTERM."""
    return max(0.0, min(grace * 0.8, grace - 0.8))
