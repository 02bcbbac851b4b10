"""Small pieces of a handle's calls: argument checks and errors that say who and why."""

from __future__ import annotations

import math
import unicodedata

from .errors import IpcError, RemoteError, RemoteTraceback, fresh

__all__ = [
    "MAX_NAME_LENGTH",
    "annotated",
    "check_grace",
    "check_name",
    "check_timeout",
    "seconds_of",
]


MAX_NAME_LENGTH = 1024
"""The longest worker id or namespace, in characters (they travel in environment variables)."""


def check_name(name: str, value: object) -> None:
    """Refuse a worker id or namespace that cannot travel to a worker (environment variables,
    socket names): not a non-empty string, too long, with a NUL or a lone surrogate."""
    problem = None
    if not isinstance(value, str) or not value:
        problem = "it must be a non-empty string"
    elif len(value) > MAX_NAME_LENGTH:
        problem = f"it has {len(value):,} characters, more than {MAX_NAME_LENGTH:,}"
    elif "\0" in value:
        problem = "it contains a NUL character"
    elif (control := next((c for c in value if unicodedata.category(c) == "Cc"), None)) is not None:
        # An id is in every log record and error about its worker: a newline or an escape
        # sequence there forges log lines or rewrites the terminal (text drill).
        problem = f"it contains a control character ({control!r}); ids are printed in logs"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "it is not valid Unicode (a lone surrogate)"
    if problem is not None:
        shown = (
            repr(value[:60]) + "..." if isinstance(value, str) and len(value) > 60 else repr(value)
        )
        raise ValueError(f"{name} {shown:.200} cannot be used: {problem}")


def seconds_of(value: object) -> float | None:
    """``value`` as a float of seconds, if it is a number (not a bool) a float can hold; None if
    not (an int beyond float range, 10**400, included: it would fail later, deep inside)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def check_timeout(name: str, value: float | None, *, optional: bool = True) -> None:
    """Refuse a timeout that is not a positive number of seconds (``math.inf``: no limit); None
    is refused too unless ``optional``."""
    if value is None and optional:
        return
    seconds = seconds_of(value)
    if seconds is None or not seconds > 0:
        raise ValueError(
            f"{name} must be a positive number of seconds (or math.inf for no limit), "
            f"not {value!r:.80}"
        )


def check_grace(name: str, value: float | None, *, optional: bool = True) -> None:
    """Refuse a grace period that is not a finite number of seconds >= 0; None is refused too
    unless ``optional``."""
    if value is None and optional:
        return
    seconds = seconds_of(value)
    if seconds is None or not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r:.80}")


def annotated(error: RemoteError, worker_id: str, channel: str, method: str) -> IpcError:
    """A copy of ``error`` whose text names the worker, the channel, the method and the remote
    type, and whose ``__cause__`` is the remote stack (a :class:`RemoteTraceback`) if it came.

    ``code``, ``message`` and ``data`` are the worker's, unchanged; ``worker_id``, ``channel``
    and ``method`` are set. Raise it ``from copy.__cause__``.
    """
    copy = fresh(error)
    assert isinstance(copy, RemoteError)
    copy.worker_id, copy.channel, copy.method = worker_id, channel, method
    # An exception without a message is sent with its type's name for one (spec 4.10): say it once.
    named = error.remote_type
    remote_type = f"{named}: " if named and named != error.message else ""
    copy.args = (
        f"worker {worker_id}: {method!r} on the {channel} channel failed: "
        f"{remote_type}{error.message} (code {error.code})",
    )
    remote_traceback = error.remote_traceback
    copy.__cause__ = RemoteTraceback(remote_traceback) if remote_traceback else None
    return copy
