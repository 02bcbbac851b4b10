"""Type checks of the options of ``ProcessManager``, ``spawn`` and ``spawn_pool``: a value of
the wrong type is a TypeError naming the option, before anything starts. Caught later it failed
far from its cause (``health=5`` passed ``spawn()``, then ended the manager's supervision with
``AttributeError: 'int' object has no attribute 'interval'``, stopping every other worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["check_callable", "check_flag", "check_instance", "check_lines"]


def check_instance(name: str, value: object, kind: type, *, optional: bool = True) -> None:
    """``value`` is a ``kind`` (or None, if ``optional``)."""
    if (value is None and optional) or isinstance(value, kind):
        return
    raise TypeError(
        f"{name} must be a {kind.__name__}{' or None' if optional else ''}, not "
        f"{type(value).__name__} {value!r:.80}"
    )


def check_flag(name: str, value: object, *, optional: bool = False) -> None:
    """``value`` is True or False (or None, if ``optional``): not a truthy string such as
    ``"no"``."""
    if (value is None and optional) or isinstance(value, bool):
        return
    raise TypeError(
        f"{name} must be True or False{' or None' if optional else ''}, not "
        f"{type(value).__name__} {value!r:.80}"
    )


def check_lines(name: str, value: object) -> None:
    """``value`` is a whole number of lines >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of lines, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")


def check_callable(name: str, value: Callable[..., Any] | None) -> None:
    """``value`` is a function (or None)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function or None, not {type(value).__name__}")
