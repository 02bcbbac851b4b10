"""Codec hooks: application values to and from the values the wire carries (spec 3.5).

An encode hook is called with each value a codec cannot encode and returns one it can (like
``json``'s ``default``); a decode hook is called with each decoded map, innermost first, and its
result replaces the map (like ``json``'s ``object_hook``). Both run in Python on the values, around
the C-level encoders and decoders, and only when a hook is set: a codec without hooks never
calls into this module. Nothing changes on the wire.

Large binaries an encode hook returns (a ``memoryview`` of a numpy array...) are taken as they are,
uncopied, by :meth:`~aspect_ipc.codecs.MessagePackCodec.encode_parts`: they are replaced by
placeholders here, like the large ``bytes`` of :func:`without_large_binaries`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

import msgpack

from ._codec_path import format_path, render_at, type_name
from .constants import MAX_DEPTH
from .errors import CodecError

__all__ = [
    "LARGE_BINARY",
    "MAX_APPLICATIONS",
    "PLACEHOLDER_HEADER",
    "DecodeHook",
    "EncodeHook",
    "apply_decode_hook",
    "convert",
    "without_large_binaries",
]

EncodeHook = Callable[[Any], Any]
"""Called with a value the codec cannot encode; returns a value it can (or raises)."""
DecodeHook = Callable[[dict[str, Any]], Any]
"""Called with each decoded map (its values already passed through it); returns its replacement."""

MAX_APPLICATIONS = 64
"""How many times the encode hook may be applied on the way down to one value."""
# Binaries this large are written from where they are rather than copied into the packed bytes.
# At 65536 bytes and up MessagePack uses bin 32, whose header is 0xc6 and a 4-byte length.
LARGE_BINARY = 64 * 1024
# The placeholder is an ext 8 of 20 bytes: 0xc7, the length, the type, then the marker and index.
_PLACEHOLDER_TYPE = 42
PLACEHOLDER_HEADER = 3

_LEAVES = frozenset({type(None), bool, int, float, str, bytes, bytearray, memoryview})
# Subclasses of these are packed as their base class (msgpack without strict_types; json).
_LEAF_BASES = (int, float, str, bytes, bytearray, memoryview)
_BINARY = frozenset({bytes, bytearray, memoryview})
_TEXT_BASES = (int, float, str)  # the same, for JSON: no binary


class _Failure(Exception):
    """A hook failed: unwinds the conversion, each level adding its key, to build the path."""

    def __init__(self, render: Callable[[str], str]) -> None:
        super().__init__()
        self.render = render
        self.segments: list[str | int] = []  # innermost first


def placeholder(marker: bytes, index: int) -> msgpack.ExtType:
    """The stand-in for the large binary ``index`` while the rest of a message is packed."""
    return msgpack.ExtType(_PLACEHOLDER_TYPE, marker + index.to_bytes(4, "big"))


def convert(
    value: Any,
    hook: EncodeHook,
    codec: str,
    *,
    large: list[memoryview | bytes] | None = None,
    marker: bytes = b"",
) -> Any:
    """``value`` with every value the codec cannot encode replaced by what ``hook`` returns for
    it; the containers on the way to a replaced value are copied, nothing else is.

    With ``large`` (MessagePack's ``encode_parts``), a binary of :data:`LARGE_BINARY` bytes or
    more that the hook returns is appended to it, as a byte ``memoryview``, and replaced by its
    placeholder. Raises CodecError naming the place when the hook fails.
    """
    converter = _Converter(hook, codec, large, marker)
    try:
        return converter.value(value, 0, 0)
    except _Failure as failure:
        path = format_path(reversed(failure.segments))
        raise CodecError(failure.render(render_at(path)), path=path) from failure.__cause__
    except RecursionError:
        raise CodecError(f"cannot encode as {codec}: value is nested too deeply") from None


class _Converter:
    __slots__ = ("bases", "codec", "hook", "json", "large", "leaves", "marker", "plain")

    def __init__(
        self, hook: EncodeHook, codec: str, large: list[memoryview | bytes] | None, marker: bytes
    ) -> None:
        self.hook, self.codec, self.large, self.marker = hook, codec, large, marker
        # JSON has no binary: a binary goes to the hook, as any value JSON cannot carry (Node's
        # and Go's JSON hooks get theirs too). MessagePack: inside what the hook returned,
        # binaries are the hook's: checked, and with ``large``, taken uncopied when large.
        self.json = codec != "MessagePack"
        self.leaves = _LEAVES - _BINARY if self.json else _LEAVES
        self.plain = _LEAVES - _BINARY
        self.bases = _TEXT_BASES if self.json else _LEAF_BASES

    def value(self, value: Any, depth: int, applied: int) -> Any:
        """``value`` converted; ``depth`` containers and ``applied`` hook calls above it."""
        kind = type(value)
        leaves = self.plain if applied else self.leaves
        if kind in leaves:
            return value
        if kind in _BINARY:
            return self.replaced(value, depth, applied) if self.json else self.binary(value)
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                # A map the wire cannot carry, whole (Node's hook gets a Map, Go's a map[int]T).
                return self.replaced(value, depth, applied)
            if depth >= MAX_DEPTH or leaves.issuperset(map(type, value.values())):
                return value  # nothing to convert (too deep: the structure check says so)
            copy: dict[Any, Any] = {}
            changed = False
            for key, item in value.items():
                try:
                    new = self.value(item, depth + 1, applied)
                except _Failure as failure:
                    failure.segments.append(key)
                    raise
                copy[key] = new
                changed = changed or new is not item
            return copy if changed else value
        if isinstance(value, (list, tuple)):
            if depth >= MAX_DEPTH or leaves.issuperset(map(type, value)):
                return value
            items: list[Any] = []
            changed = False
            for index, item in enumerate(value):
                try:
                    new = self.value(item, depth + 1, applied)
                except _Failure as failure:
                    failure.segments.append(index)
                    raise
                items.append(new)
                changed = changed or new is not item
            return items if changed else value
        if isinstance(value, self.bases):
            return value
        return self.replaced(value, depth, applied)

    def replaced(self, value: Any, depth: int, applied: int) -> Any:
        name = type_name(value)
        if applied >= MAX_APPLICATIONS:
            raise _Failure(
                lambda at: (
                    f"encode hook returned a value it cannot encode: {name}{at} is still not a "
                    f"value the wire carries after {MAX_APPLICATIONS} applications of the hook "
                    "(return null, a boolean, number, string, binary, list or dict with string "
                    "keys)"
                )
            )
        try:
            result = self.hook(value)
        except Exception as exc:
            detail, codec = f"{type(exc).__name__}: {exc}", self.codec
            raise _Failure(
                lambda at: f"encode hook failed on {name}{at} ({codec}): {detail}"
            ) from exc
        return self.value(result, depth, applied + 1)

    def binary(self, result: bytes | bytearray | memoryview) -> Any:
        """A binary the hook returned (MessagePack): checked; with ``large``, kept uncopied."""
        if type(result) is memoryview and not result.c_contiguous:
            raise _Failure(
                lambda at: (
                    f"encode hook returned a memoryview{at} that is not C-contiguous: make it "
                    "contiguous first (np.ascontiguousarray(a))"
                )
            )
        if self.large is None:
            return result
        view = result if type(result) is memoryview else memoryview(result)
        if view.nbytes < LARGE_BINARY:
            return result
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")  # len() of a part must be its size in bytes
        self.large.append(view)
        return placeholder(self.marker, len(self.large) - 1)


def without_large_binaries(value: Any, large: list[memoryview | bytes], marker: bytes) -> Any:
    """``value`` with each ``bytes`` of ``LARGE_BINARY`` bytes or more (appended to ``large``)
    replaced by a placeholder extension; containers on the way are copied, nothing else is."""
    kind = type(value)
    if kind is bytes:  # immutable: it can be written later, from where it is, unchanged
        if len(value) < LARGE_BINARY:
            return value
        large.append(value)
        return placeholder(marker, len(large) - 1)
    if kind is dict:
        found = len(large)
        copy = {k: without_large_binaries(v, large, marker) for k, v in value.items()}
        return copy if len(large) > found else value
    if kind is list or kind is tuple:
        found = len(large)
        items = [without_large_binaries(v, large, marker) for v in value]
        return items if len(large) > found else value
    return value


def apply_decode_hook(value: Any, hook: DecodeHook, codec: str) -> Any:
    """``value`` (freshly decoded and checked: ours to change) with every map replaced by what
    ``hook`` returns for it, innermost first: a map's values have been through the hook before
    the map itself. Raises CodecError naming the map when the hook fails."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    # Every container, level by level, with the index of its parent and its key there.
    entries: list[tuple[Any, int, Any]] = [(value, -1, None)]
    position = 0
    while position < len(entries):
        container = entries[position][0]
        values = container.values() if type(container) is dict else container
        kinds = set(map(type, values))
        if dict in kinds or list in kinds:  # else nothing below: one C-level pass
            if kinds == _ONLY_DICTS and type(container) is list and _flat(container):
                # A row of records: no map below them, so their turn is now, in one C-level
                # pass, rather than one Python step each.
                _rows(container, hook, codec, entries, position)
            else:
                pairs = container.items() if type(container) is dict else enumerate(container)
                for key, child in pairs:
                    if type(child) is dict or type(child) is list:
                        entries.append((child, position, key))
        position += 1
    for index in range(len(entries) - 1, -1, -1):  # the deepest level first
        container, parent, key = entries[index]
        if type(container) is not dict:
            continue
        try:
            new = hook(container)
        except Exception as exc:
            raise _decode_failure(codec, _segments(entries, index), exc) from exc
        if parent < 0:
            return new
        entries[parent][0][key] = new
    return value


_ONLY_DICTS = {dict}


def _flat(maps: list[dict[str, Any]]) -> bool:
    """Whether no value of these maps is a container."""
    kinds = set(map(type, chain.from_iterable(map(dict.values, maps))))
    return dict not in kinds and list not in kinds


def _rows(
    maps: list[Any], hook: DecodeHook, codec: str, entries: list[tuple[Any, int, Any]], at: int
) -> None:
    """Replace each map of ``maps`` (the container ``entries[at]``) by ``hook(map)``."""
    done: list[Any] = []
    try:
        done.extend(map(hook, maps))  # on a failure, holds the maps before the failed one
    except Exception as exc:
        raise _decode_failure(codec, [*_segments(entries, at), len(done)], exc) from exc
    maps[:] = done


def _decode_failure(codec: str, segments: list[str | int], exc: Exception) -> CodecError:
    path = format_path(segments)
    return CodecError(
        f"decode hook failed on the map{render_at(path)} ({codec}): {type(exc).__name__}: {exc}",
        path=path,
    )


def _segments(entries: list[tuple[Any, int, Any]], index: int) -> list[str | int]:
    segments: list[str | int] = []
    while entries[index][1] >= 0:
        segments.append(entries[index][2])
        index = entries[index][1]
    return segments[::-1]
