"""The worker's settings from the environment (spec section 5). Pure.

``ASPECT_IPC_MAX_FRAME_SIZE`` and ``ASPECT_IPC_MAX_LINE_LENGTH`` are absent or empty (the
default), or 1 to 10 ASCII digits with a value in [1024, 2**32 - 1]. Anything else is a mistake
in whoever started the worker, and the worker refuses to start (exit code 2) rather than guess.
The worker id, the namespace and the data path are UTF-8 whatever the locale (5.1): they are read
as bytes, not through ``os.environ``, which decodes by the locale.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .constants import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    ENV_MAX_FRAME_SIZE,
    ENV_MAX_LINE_LENGTH,
    MAX_FRAME_SIZE_LIMIT,
    MIN_SIZE_SETTING,
)
from .errors import SizeSettingError, TextSettingError

__all__ = [
    "SizeSettingError",
    "TextSettingError",
    "WorkerLimits",
    "environ_bytes",
    "read_limits",
    "read_size",
    "read_text",
]

# re.ASCII with an explicit class: "\d" would also take other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """The limits a worker applies: its data frames and its control lines, in bytes."""

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH


def read_size(environ: Mapping[str, str], name: str, default: int) -> int:
    """The value of the size variable ``name`` in ``environ``, or ``default`` if absent/empty.

    Raises:
        SizeSettingError: the value is not 1 to 10 ASCII digits within [1024, 2**32 - 1].
    """
    raw = environ.get(name, "")
    if raw == "":
        return default
    if _DIGITS.fullmatch(raw) is None or not (MIN_SIZE_SETTING <= int(raw) <= MAX_FRAME_SIZE_LIMIT):
        raise SizeSettingError(
            f"invalid {name} {json.dumps(raw, ensure_ascii=False)}: expected 1 to 10 ASCII "
            f"digits, from {MIN_SIZE_SETTING} to {MAX_FRAME_SIZE_LIMIT} (no sign, spaces or "
            f"prefix; unset or empty for the default, {default})"
        )
    return int(raw)


def read_limits(environ: Mapping[str, str]) -> WorkerLimits:
    """Both limits from ``environ``.

    Raises:
        SizeSettingError: either variable is malformed (the first one found is named).
    """
    return WorkerLimits(
        read_size(environ, ENV_MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE),
        read_size(environ, ENV_MAX_LINE_LENGTH, DEFAULT_MAX_LINE_LENGTH),
    )


def environ_bytes() -> Mapping[bytes, bytes]:
    """This process's environment as bytes: what the parent wrote, before any locale decoding."""
    environb: Mapping[bytes, bytes] | None = getattr(os, "environb", None)
    if environb is not None:
        return environb
    # Windows keeps the environment as text: its UTF-8 is what a parent meant.
    return {k.encode("utf-8"): v.encode("utf-8", "surrogatepass") for k, v in os.environ.items()}


def read_text(environb: Mapping[bytes, bytes], name: str, *, lenient: bool = False) -> str:
    """The UTF-8 value of ``name`` in ``environb`` (the environment's bytes), ``""`` if absent.

    ``lenient``: invalid bytes become U+FFFD instead of an error.

    Raises:
        TextSettingError: the value is not valid UTF-8 (and not ``lenient``).
    """
    raw = environb.get(name.encode("ascii"), b"")
    if lenient:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = raw.decode("utf-8", "backslashreplace").replace('"', '\\"')
        raise TextSettingError(
            f'invalid {name} "{shown}": not valid UTF-8 (a parent passes the worker id, the '
            "namespace and the data path as UTF-8, whatever its locale)"
        ) from None
