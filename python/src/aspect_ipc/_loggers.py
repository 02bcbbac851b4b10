"""The library's loggers, guarded against handlers that raise.

A ``logging.Handler`` should not raise from ``emit`` (logging's own handlers call
``handleError``, which reports the error on stderr and goes on); a custom one that does raises
out of the ``logger.info(...)`` call that reached it. In the library that call sits in a
supervisor, a reader or an event callback, which the exception ended: a handler failing on the
``stop`` record hung the manager's exit for ever. The loggers made here report such an error the
way ``handleError`` does and go on.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

__all__ = ["library_logger"]


def library_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, with its handlers' exceptions reported, not raised (the
    handlers of its ancestors included: a logger calls those itself)."""
    logger = logging.getLogger(name)
    if "callHandlers" not in vars(logger):
        call: Callable[[logging.LogRecord], None] = logger.callHandlers

        def call_handlers(record: logging.LogRecord) -> None:
            try:
                call(record)
            except Exception:
                _report(name, record)

        logger.callHandlers = call_handlers  # type: ignore[method-assign]
    return logger


def _report(name: str, record: logging.LogRecord) -> None:
    # As logging.Handler.handleError: only while logging.raiseExceptions (its default), to
    # stderr, and never raising.
    if not logging.raiseExceptions or sys.stderr is None:
        return
    try:
        sys.stderr.write(f"--- Logging error: a handler of logger {name!r} raised ---\n")
        traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"Message: {record.msg!r}\nArguments: {record.args!r}\n")
    except Exception:  # stderr itself is broken: nothing left to tell
        pass
