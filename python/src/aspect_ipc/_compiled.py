"""The compiled core (the optional ``aspect-ipc-core`` package, ``python/core/``), if present.

It packs plain messages (exact ``dict``/``list``/``tuple``/``str``/``int``/``float``/``bool``/
``None``/``bytes`` values) as MessagePack in one pass, where the Python path walks a message to
check it and msgpack walks it again to pack it. It answers ``None`` for anything it is not sure
of, and the Python path decides, so that both paths write the same bytes and raise the same
errors. Sans-IO.

``ASPECT_IPC_PURE_PYTHON=1`` in the environment turns it off (read once, at import).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

__all__ = ["compiled_core", "fast_pack"]

logger = logging.getLogger("aspect_ipc")

# The contract of the functions used here; a core of another API version is not used.
_API_VERSION = 1

fast_pack: Callable[[Any], bytes | None] | None = None
_version: str | None = None

if os.environ.get("ASPECT_IPC_PURE_PYTHON", "") in ("", "0"):
    try:
        import aspect_ipc_core as _core
    except ImportError:
        pass
    else:
        if getattr(_core, "API_VERSION", None) == _API_VERSION:
            fast_pack, _version = _core.pack, str(_core.__version__)
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
