"""Reading spec/vectors: the tagged-value notation of spec/vectors/README.md."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

# An unpacked sdist carries spec/vectors beside tests/ (pyproject.toml); the repository, above.
VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"
if not VECTORS.is_dir():
    VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
# untag() and same() recurse, two frames a level: vectors nest 512 deep (the spec's maximum).
sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def load(name: str) -> dict[str, Any]:
    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def untag(value: Any) -> Any:
    """Turn a tagged vector value into the Python value it stands for."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$int":
                return int(inner)
            if key == "$float":
                return _FLOATS[inner] if isinstance(inner, str) else float(inner)
            if key == "$bin":
                return bytes.fromhex(inner)
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, float):
        raise AssertionError(f"untagged float {value!r} in a vector: floats must be tagged")
    return value


def same(a: Any, b: Any) -> bool:
    """Structural equality with typed numbers: 1 != 1.0, NaN == NaN, -0.0 != 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def cases(name: str, key: str = "cases") -> list[tuple[str, dict[str, Any]]]:
    return [(case["id"], case) for case in load(name).get(key, [])]
