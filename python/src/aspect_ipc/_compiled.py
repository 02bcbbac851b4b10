"""The compiled core (the optional ``aspect-ipc-core`` package, ``python/core/``), if present.

It packs plain messages (exact ``dict``/``list``/``tuple``/``str``/``int``/``float``/``bool``/
``None``/``bytes`` values) as MessagePack in one pass, where the Python path walks a message to
check it and msgpack walks it again to pack it; and it decodes a frame checking it as it goes,
where the Python path unpacks it and then, often, walks the value to check it. It declines
anything it is not sure of, and the Python path decides, so that both paths give the same bytes
and values and raise the same errors. Sans-IO.

``ASPECT_IPC_PURE_PYTHON=1`` in the environment turns it off (read once, at import).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._loggers import library_logger

__all__ = [
    "DECLINED",
    "compiled_core",
    "fast_pack",
    "fast_unpack",
    "pack_frame",
    "take_answers",
]

logger = library_logger("aspect_ipc")

# The contract of the functions used here; a core of another API version is not used.
_API_VERSION = 3

fast_pack: Callable[[Any], bytes | None] | None = None
fast_unpack: Callable[[Any, Any], Any] | None = None
pack_frame: Callable[[int, Any], bytes | None] | None = None
take_answers: Callable[[list[Any], Any, Any, int, int], tuple[int, Any]] | None = None
DECLINED: Any = object()
"""What ``fast_unpack(data, DECLINED)`` returns when the Python path must decode ``data``."""
_version: str | None = None

if os.environ.get("ASPECT_IPC_PURE_PYTHON", "") in ("", "0"):
    try:
        import aspect_ipc_core as _core
    except ImportError:
        pass
    else:
        if getattr(_core, "API_VERSION", None) == _API_VERSION:
            fast_pack, fast_unpack = _core.pack, _core.unpack
            pack_frame, take_answers = _core.pack_frame, _core.take_answers
            _version = str(_core.__version__)
        else:
            logger.warning(
                "aspect-ipc-core %s speaks API %s, this aspect-ipc needs %s: using the pure-Python "
                "path; install the aspect-ipc-core that comes with this aspect-ipc",
                getattr(_core, "__version__", "?"),
                getattr(_core, "API_VERSION", "?"),
                _API_VERSION,
            )


def compiled_core() -> str | None:
    """The version of the compiled core in use, or None when the pure-Python path runs (the
    ``aspect-ipc-core`` package is not installed, or ``ASPECT_IPC_PURE_PYTHON=1``)."""
    return _version
