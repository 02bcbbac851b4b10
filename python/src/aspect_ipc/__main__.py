"""``python -m aspect_ipc``: the ``aspect-ipc`` command (see :mod:`aspect_ipc.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
