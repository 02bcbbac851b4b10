"""The library's loggers, guarded against the application's logging code raising.

A ``logging.Handler`` should not raise from ``emit`` (logging's own handlers call
``handleError``, which reports the error on stderr and goes on); a custom one that does raises
out of the ``logger.info(...)`` call that reached it. So does a filter that raises, and a record
factory that sets an attribute the library passes in ``extra`` (``worker_id``: ``makeRecord``
refuses to overwrite it). In the library that call sits in a supervisor, a reader or an event
callback, which the exception ended: a handler failing on the ``stop`` record hung the manager's
exit for ever, and a filter failing on a worker's stderr line ended its supervision (the worker
was reported as gone, "exited on its own"). The loggers made here report such an error the way
``handleError`` does and go on; a record the factory cannot make is made without it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["library_logger", "release_logger"]

_reported_factories: set[tuple[str, object]] = set()  # (logger name, record factory)


def library_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, with the exceptions of its filters and handlers (its
    ancestors' included: a logger calls those itself) reported, not raised, and its records
    made even when the application's record factory fails."""
    logger = logging.getLogger(name)
    if "handle" not in vars(logger):
        handle: Callable[[logging.LogRecord], None] = logger.handle
        make_record = logger.makeRecord

        def guarded_handle(record: logging.LogRecord) -> None:
            try:
                handle(record)
            except Exception:
                _report(name, record)

        def guarded_make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            try:
                return make_record(*args, **kwargs)
            except Exception:
                return _plain_record(name, make_record, args, kwargs)

        logger.handle = guarded_handle  # type: ignore[method-assign]
        logger.makeRecord = guarded_make_record  # type: ignore[method-assign]
    return logger


def _plain_record(
    name: str, make_record: Callable[..., logging.LogRecord], args: Any, kwargs: Any
) -> logging.LogRecord:
    """The record ``make_record`` failed to make, made without the record factory; the failure
    is reported (once per logger and factory: it recurs with every record)."""
    key = (name, logging.getLogRecordFactory())
    if key not in _reported_factories:
        _reported_factories.add(key)
        if logging.raiseExceptions and sys.stderr is not None:
            with contextlib.suppress(Exception):
                sys.stderr.write(
                    f"--- Logging error: making a record of logger {name!r} raised (a record "
                    "factory that sets an attribute the library passes in extra, such as "
                    "worker_id?); its records are made without the factory ---\n"
                )
                traceback.print_exc(file=sys.stderr)
    # Logger._log calls makeRecord(name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)
    names = ("name", "level", "fn", "lno", "msg", "args", "exc_info", "func", "extra", "sinfo")
    given = dict(zip(names, args, strict=False)) | kwargs
    record = logging.LogRecord(
        given["name"],
        given["level"],
        given["fn"],
        given["lno"],
        given["msg"],
        given["args"],
        given["exc_info"],
        given.get("func"),
        given.get("sinfo"),
    )
    record.__dict__.update(given.get("extra") or {})  # the library's worker_id wins
    return record


def _report(name: str, record: logging.LogRecord) -> None:
    # As logging.Handler.handleError: only while logging.raiseExceptions (its default), to
    # stderr, and never raising.
    if not logging.raiseExceptions or sys.stderr is None:
        return
    try:
        sys.stderr.write(f"--- Logging error: a filter or handler of logger {name!r} raised ---\n")
        traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"Message: {record.msg!r}\nArguments: {record.args!r}\n")
    except Exception:  # stderr itself is broken: nothing left to tell
        pass


def release_logger(name: str) -> bool:
    """Drop logger ``name`` from logging's registry if the application never configured it (no
    level, handler or filter, propagating, no child logger): logging never drops a logger, and
    a parent that gives each job a worker id of its own kept one per id for ever (about 1.2 KB;
    the leaks drill). A configured one stays, with its configuration, for the next worker of
    that id. False: it stays because of a child logger (a worker whose id extends this one's
    with a dot, such as a pool's next worker of a slot), to be tried again once that is gone."""
    registry = logging.Logger.manager.loggerDict
    lock = getattr(logging, "_lock", None)  # logging's own: getLogger() holds it too
    with lock if lock is not None else contextlib.nullcontext():
        logger = registry.get(name)
        if (
            not isinstance(logger, logging.Logger)
            or logger.level != logging.NOTSET
            or logger.handlers
            or logger.filters
            or not logger.propagate
            or logger.disabled
        ):
            return True  # gone already, or the application's
        if any(getattr(other, "parent", None) is logger for other in registry.values()):
            return False
        del registry[name]
        return True
