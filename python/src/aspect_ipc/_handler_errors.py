"""Which of a handler's exceptions are its failures, what a failure is answered with (spec 4.5,
4.10), and whether the stack goes along.

A handler failure without a JSON-RPC error of its own is answered ``-32000`` with
``data: {"type": ..., "traceback": ...}``: the traceback is the text
``traceback.format_exception`` gives, sent unless the parent turned it off with
``ASPECT_IPC_TRACEBACKS=0`` (spec 5.3). A :class:`RemoteError` is sent unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

import anyio

from .errors import RemoteError
from .jsonrpc import ErrorCode, error_for_exception

__all__ = [
    "ENV_TRACEBACKS",
    "TracebackSettingError",
    "handler_error",
    "handler_failed",
    "scope_cancellation",
    "read_tracebacks",
    "unicode_text",
    "write_failure",
]

ENV_TRACEBACKS = "ASPECT_IPC_TRACEBACKS"
"""``0``: handler errors carry no ``traceback``; absent, empty or ``1``: they do (spec 5.3)."""


class TracebackSettingError(ValueError):
    """``ASPECT_IPC_TRACEBACKS`` is neither unset, empty, ``0`` nor ``1``; the worker exits 2."""


def read_tracebacks(environ: Mapping[str, str]) -> bool:
    """Whether handler errors carry their traceback, per ``ASPECT_IPC_TRACEBACKS`` in ``environ``.

    Raises:
        TracebackSettingError: any value other than unset, ``""``, ``"0"`` and ``"1"``.
    """
    raw = environ.get(ENV_TRACEBACKS, "")
    if raw in ("", "1"):
        return True
    if raw == "0":
        return False
    raise TracebackSettingError(
        f'invalid {ENV_TRACEBACKS} {json.dumps(raw, ensure_ascii=False)}: expected "0" (off) '
        'or "1" (on), or unset'
    )


def handler_error(exc: BaseException, *, send_traceback: bool) -> tuple[int, str, Any]:
    """``(code, message, data)`` for ``exc``, raised by a handler; with its traceback when
    ``send_traceback`` and the error has no JSON-RPC error of its own.

    The text built here is made Unicode (spec 4.10): a surrogate in the message, the type or the
    traceback (a ``str`` may hold one, which no codec sends) becomes U+FFFD, so that the failure
    still reaches the caller. A typed error's ``data`` is the handler's own: it is left alone.
    """
    code, text, data = error_for_exception(exc)
    if code == ErrorCode.HANDLER_ERROR and not isinstance(exc, RemoteError):
        data = {"type": unicode_text(data["type"])}
        if send_traceback:
            data["traceback"] = unicode_text("".join(traceback.format_exception(exc)))
    return code, unicode_text(text), data


_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_text(text: str) -> str:
    """``text`` with each surrogate code point (not Unicode text, spec 3.4) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def write_failure(which: str, method: str, error: BaseException) -> None:
    """Write a failed handler's traceback to stderr (a worker's ``log_handler_errors``)."""
    text = "".join(traceback.format_exception(error)).rstrip("\n")
    print(f"aspect-ipc worker: {method!r} on the {which} channel failed:\n{text}", file=sys.stderr)


def handler_failed(exc: BaseException, scope: anyio.CancelScope | None) -> bool:
    """Whether ``exc``, raised by a request's handler, is the handler's failure, answered like
    any exception (-32000): not KeyboardInterrupt or SystemExit (the process ends), nor the
    request's cancellation (``scope``'s, or its task's). A handler may raise asyncio's
    CancelledError of its own (it awaited a future that other code cancelled): that is a failure
    of the handler, which would otherwise end the worker as if it had been told to stop. Another
    BaseException of the handler's own is a failure too."""
    if isinstance(exc, Exception):
        return True
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return False
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        if not isinstance(exc, asyncio.CancelledError):  # trio's: only a real cancellation
            return False
        if scope is not None and scope.cancel_called:
            return False
        task = asyncio.current_task()
        return task is None or task.cancelling() == 0  # nobody cancelled the task itself
    return True


def scope_cancellation(exc: BaseException, scope: anyio.CancelScope) -> bool:
    """Whether ``exc``, escaping ``scope`` on asyncio, is the scope's own cancellation, which
    anyio did not recognise: a future the handler awaited (``asyncio.gather`` whose children
    swallowed their cancellation) ended with a CancelledError of its own making, so the scope
    let it through. Its request is cancelled, nothing more: raised further, it would end the
    task group, the channel's, and so the worker (exit code 0) or the parent's channel."""
    if not isinstance(exc, asyncio.CancelledError) or not scope.cancel_called:
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0  # nobody cancels the task from outside
