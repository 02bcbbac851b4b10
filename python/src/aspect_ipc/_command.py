"""The command a worker is started with, checked before anything starts: what the OS would
refuse late (a NUL byte, an ``=`` in a variable's name), or would take in a way nobody meant
(``args="--fast"`` is five arguments of one letter), is a TypeError or ValueError naming it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["checked_command"]


def checked_command(
    executable: object, args: object, cwd: object, env: object
) -> tuple[str, tuple[str, ...], str | None, dict[str, str] | None]:
    """``(executable, args, cwd, env)`` as the spawn uses them: paths (``str`` or
    ``os.PathLike``) as strings, ``args`` as a tuple, ``env`` as a dict (None if empty).

    Raises:
        TypeError: a value of the wrong type (``args`` given as one string, say).
        ValueError: an empty executable, a NUL character, or a variable name that is empty or
            holds ``=``.
    """
    program = _path("executable", executable)
    if not program:
        raise ValueError("executable must not be empty")
    if isinstance(args, str | bytes) or not _iterable(args):
        raise TypeError(
            f"args must be a list of strings (one per argument), not {type(args).__name__} "
            f"{args!r:.80}"
        )
    listed: Iterable[Any] = args  # type: ignore[assignment]  # checked just above
    arguments = tuple(_path(f"args[{index}]", arg) for index, arg in enumerate(listed))
    directory = None if cwd is None else _path("cwd", cwd)
    variables: dict[str, str] | None = None
    if env is not None:
        if not isinstance(env, Mapping):
            raise TypeError(f"env must be a mapping of names to strings, not {type(env).__name__}")
        variables = {}
        for name, value in env.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(
                    f"env must map strings to strings: {name!r:.80} -> {value!r:.80} is not"
                )
            if not name or "=" in name or "\0" in name:
                raise ValueError(
                    f"env: {name!r:.80} cannot be an environment variable's name (empty, or "
                    "with '=' or a NUL character)"
                )
            if "\0" in value:
                raise ValueError(f"env: the value of {name!r:.80} contains a NUL character")
            variables[name] = value
    return program, arguments, directory, variables or None


def _path(name: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        raise TypeError(f"{name} must be a string, not bytes: {value!r:.80}")
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__} {value!r:.80}")
    if "\0" in value:
        raise ValueError(f"{name} {value!r:.80} contains a NUL character")
    return value


def _iterable(value: object) -> bool:
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
