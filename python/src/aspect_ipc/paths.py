"""Default data paths: ``PipePath.for_module`` (spec section 6). Sans-IO."""

from __future__ import annotations

import hashlib
import os
import re
import sys

from .errors import IpcError

__all__ = ["PipePath"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# Longest socket path in bytes (sun_path minus its NUL), and the Windows pipe-name limit.
_LIMITS = {"linux": 107, "darwin": 103, "windows": 256}


def _platform_name(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return "linux"
    if platform in ("win32", "windows", "cygwin"):
        return "windows"
    return "darwin"  # macOS and the BSDs share the 104-byte sun_path


def _path_limit(platform: str | None = None) -> tuple[str, int]:
    """The platform's name and the longest socket path it takes, in bytes."""
    kind = _platform_name(platform)
    return kind, _LIMITS[kind]


def _wire_path(path: str, what: str = "data path") -> str:
    """``path`` as a worker is given it and names it back (spec 5.1): the UTF-8 text of the bytes
    this system names the file by (the same string, unless the locale is not UTF-8).

    Raises:
        ValueError: those bytes are not UTF-8 (a directory ``é`` under a Latin-1 locale), or
            the path has a character this locale cannot encode; ``what`` names the path.
    """
    encoding = sys.getfilesystemencoding()
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeError:
        raise ValueError(
            f"{what} {path!r} cannot be given to a worker: this process names files in "
            f"{encoding} (its locale), and a worker is given its data path as UTF-8 (spec 5.1); "
            "choose an ASCII directory, or run Python in UTF-8 mode (PYTHONUTF8=1 or -X utf8)"
        ) from None


class PipePath:
    """Computes the path a worker's data channel listens on."""

    @staticmethod
    def for_module(
        namespace: str,
        worker_id: str,
        *,
        directory: str | None = None,
        platform: str | None = None,
    ) -> str:
        """Return the data path for ``worker_id`` in ``namespace``.

        Unix: ``/tmp/<namespace>-<id>.sock``; Windows: ``\\\\.\\pipe\\<namespace>-<id>``.
        Characters outside ``[A-Za-z0-9._-]`` become ``_``; a digest of the unsanitized names is
        appended when sanitizing changed anything or the path would exceed the platform's limit,
        so distinct names never collide and the path never escapes ``directory``.

        Raises:
            ValueError: ``namespace`` or ``worker_id`` is empty.
            IpcError: ``directory`` is too long for any socket name to fit.
        """
        if not namespace or not worker_id:
            raise ValueError("namespace and worker id must not be empty")
        kind, limit = _path_limit(platform)
        if kind == "windows":
            base_dir, separator, suffix = directory or "\\\\.\\pipe", "\\", ""
        else:
            base_dir, separator, suffix = directory or "/tmp", "/", ".sock"
        base_dir = base_dir.rstrip(separator)  # "/run/app/" is "/run/app"; "/" becomes ""
        clean_namespace = _UNSAFE.sub("_", namespace)
        clean_id = _UNSAFE.sub("_", worker_id)
        base = f"{clean_namespace}-{clean_id}"
        plain = f"{base_dir}{separator}{base}{suffix}"
        changed = clean_namespace != namespace or clean_id != worker_id
        if not changed and len(os.fsencode(plain)) <= limit:
            return plain
        digest = hashlib.sha256(
            namespace.encode("utf-8", "surrogatepass")
            + b"\x00"
            + worker_id.encode("utf-8", "surrogatepass")
        ).hexdigest()[:16]
        keep = limit - len(os.fsencode(base_dir + separator)) - len(f"-{digest}{suffix}")
        if keep < 1:
            raise IpcError(
                f"socket directory {base_dir!r} is too long: no socket name fits within the "
                f"{limit}-byte path limit of {kind}; use a shorter directory"
            )
        return f"{base_dir}{separator}{base[:keep]}-{digest}{suffix}"
