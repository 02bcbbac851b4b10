"""The command a worker is started with, checked before anything starts: what the OS would
refuse late (a NUL byte, an ``=`` in a variable's name), or would take in a way nobody meant
(``args="--fast"`` is five arguments of one letter), is a TypeError or ValueError naming it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .constants import (
    ENV_DATA_PATH,
    ENV_MAX_FRAME_SIZE,
    ENV_MAX_LINE_LENGTH,
    ENV_NAMESPACE,
    ENV_PROTOCOL,
    ENV_TOKEN,
    ENV_WORKER_ID,
)

__all__ = ["checked_command"]


def checked_command(
    executable: object, args: object, cwd: object, env: object
) -> tuple[str, tuple[str, ...], str | None, dict[str, str] | None]:
    """``(executable, args, cwd, env)`` as the spawn uses them: paths (``str`` or
    ``os.PathLike``) as strings, ``args`` as a tuple, ``env`` as a dict (None if empty).

    Raises:
        TypeError: a value of the wrong type (``args`` given as one string, say).
        ValueError: an empty executable, a NUL character, a variable name that is empty or
            holds ``=``, or a variable the parent sets itself (spec 5.1) with another value.
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
            _check_not_the_parents(name, value)
            variables[name] = value
    return program, arguments, directory, variables or None


# The variables the parent sets for each worker (spec 5.1), and where a user sets what they say.
_SET_BY_THE_PARENT = {
    ENV_PROTOCOL: "the protocol version, which the parent sets",
    ENV_WORKER_ID: "spawn()'s worker_id",
    ENV_NAMESPACE: "the manager's namespace",
    ENV_DATA_PATH: "DataChannelOptions(path=...)",
    ENV_TOKEN: "a fresh secret the parent makes for each spawn",
    ENV_MAX_FRAME_SIZE: "DataChannelOptions(max_frame_size=...)",
    ENV_MAX_LINE_LENGTH: "ControlChannelOptions(max_line_length=...)",
}


def _check_not_the_parents(name: str, value: str) -> None:
    """A variable of spec 5.1 in ``env`` would be replaced by the parent's own value without a
    word: refused, saying where its value comes from. One equal to this process's own is let
    through (``env={**os.environ, ...}``): inherited, it is dropped as any inherited one is."""
    source = _SET_BY_THE_PARENT.get(name)
    if source is not None and os.environ.get(name) != value:
        raise ValueError(
            f"env: {name} is set by the parent for each worker (spec 5.1), so {value!r:.40} "
            f"would be replaced; its value comes from {source}"
        )


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
