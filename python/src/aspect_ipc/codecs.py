"""Codecs: values to bytes and back (spec section 3). Sans-IO.

Both codecs carry the JSON data model (null, bool, int, float, str, list, dict with str keys);
:class:`MessagePackCodec` adds binary (``bytes``, ``bytearray``, ``memoryview`` in, ``bytes`` out).
Anything else is refused on the sending side with :class:`CodecError`, before a byte is written.
"""

from __future__ import annotations

import json
import secrets
from itertools import chain
from typing import Any, Protocol, runtime_checkable

import msgpack

from .constants import INT_MAX, INT_MIN, MAX_DEPTH
from .errors import CodecError

__all__ = ["Codec", "JsonCodec", "MessagePackCodec", "PartsCodec"]

Buffer = bytes | bytearray | memoryview
_CONTAINERS = (dict, list, tuple)
_IS_CONTAINER = frozenset(_CONTAINERS).__contains__
_ONLY_DICTS: set[type] = {dict}
_ONLY_STR: set[type] = {str}
_BINARY = (bytes, bytearray, memoryview)
# Binaries this large are written from where they are rather than copied into the packed bytes.
# At 65536 bytes and up MessagePack uses bin 32, whose header is 0xc6 and a 4-byte length.
_LARGE_BINARY = 64 * 1024
# The placeholder is an ext 8 of 20 bytes: 0xc7, the length, the type, then the marker and index.
_PLACEHOLDER_TYPE = 42
_PLACEHOLDER_HEADER = 3
# The type bytes without which a MessagePack payload cannot hold a bin map key (bin 8/16/32) or a
# timestamp extension (fixext 4/8, ext 8): only payloads containing one of them pay for the
# structural check. Single bytes, because a one-byte search is a memchr that stops at the first
# hit, where a longer pattern can cost a full scan of a large payload.
_SUSPECT_MARKERS = (b"\xc4", b"\xc5", b"\xc6", b"\xd6", b"\xd7", b"\xc7")
# Every byte but the container headers (fixmap, fixarray, array 16/32, map 16/32).
_NOT_HEADERS = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))


@runtime_checkable
class Codec(Protocol):
    """A serialization: ``encode`` a value to bytes, ``decode`` bytes to a value.

    Implementations raise :class:`CodecError` for values they cannot represent and for bytes they
    cannot decode.
    """

    name: str

    def encode(self, value: Any) -> bytes: ...
    def decode(self, data: Buffer) -> Any: ...


@runtime_checkable
class PartsCodec(Codec, Protocol):
    """A codec that can encode into several buffers (optional capability).

    ``encode_parts(value)`` returns buffers whose concatenation is ``encode(value)``, leaving
    large binaries uncopied: with a :class:`~aspect_ipc.framing.HeaderFraming` a channel writes
    them as they are.
    """

    def encode_parts(self, value: Any) -> list[Buffer]: ...


class JsonCodec:
    """UTF-8 JSON, compact, without NaN/Infinity and without binary (spec 3.1)."""

    name = "json"

    def encode(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        _check_structure(value, integers=True)
        try:
            text = json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_no_json
            )
        except ValueError as exc:
            if "float" in str(exc):
                raise CodecError(
                    "cannot encode as JSON: NaN and Infinity have no JSON form "
                    "(send them on the data channel, or as strings)"
                ) from None
            raise CodecError(f"cannot encode as JSON: {exc}") from None
        except RecursionError:
            raise CodecError("cannot encode as JSON: value is nested too deeply") from None
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecError(
                f"cannot encode as JSON: a string holds a lone surrogate ({exc.object[exc.start]!r}"
                "), which is not Unicode text"
            ) from None

    def decode(self, data: Buffer) -> Any:
        """Decode one JSON text; anything else (or invalid UTF-8) raises :class:`CodecError`."""
        try:
            text = bytes(data).decode("utf-8")
            value = json.loads(
                text, parse_constant=_no_constant, parse_int=_json_int, parse_float=_json_float
            )
        except UnicodeDecodeError as exc:
            raise CodecError(f"line is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
        except json.JSONDecodeError as exc:
            raise CodecError(f"line is not valid JSON: {exc}") from None
        except RecursionError:
            raise CodecError(
                f"line is not valid JSON for aspect-ipc: containers are nested deeper than "
                f"{MAX_DEPTH} levels"
            ) from None
        # Both checks only where they can fail: 513 levels need 513 brackets, and a surrogate
        # (paired or lone: json joins the pairs) needs an escape "\\uD800" to "\\uDFFF".
        raw = data if isinstance(data, bytes) else bytes(data)
        if len(raw) > 2 * MAX_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
            _check_depth(value)
        if b"\\" in raw and (b"\\ud" in raw or b"\\uD" in raw):
            try:
                _ = json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise CodecError(
                    "line is not valid JSON for aspect-ipc: a \\u escape is a lone surrogate, "
                    "which is not a Unicode character"
                ) from None
        return value


class MessagePackCodec:
    """MessagePack with the spec's mapping (3.2): str keys, bin for bytes, float64, no ext types."""

    name = "msgpack"

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, default=_no_msgpack, datetime=False)
        # Stands in for a large binary while the rest is packed: random, so no payload holds it.
        self._marker = secrets.token_bytes(16)

    def encode(self, value: Any) -> bytes:
        """Encode ``value``; unsupported types and out-of-range integers raise CodecError."""
        _check_structure(value)
        return self._pack(value)

    def _pack(self, value: Any) -> bytes:
        try:
            return self._packer.pack(value)
        except CodecError:
            self._packer.reset()
            raise
        except (OverflowError, TypeError, ValueError) as exc:
            self._packer.reset()
            raise CodecError(f"cannot encode as MessagePack: {exc}") from None

    def encode_parts(self, value: Any) -> list[Buffer]:
        """Like :meth:`encode`, as buffers to write in order, without copying large binaries.

        The bytes are the same as :meth:`encode`'s. ``bytes`` values of 64 KiB or more are not
        packed: each is returned as a buffer of its own (the object itself, not a copy), after
        its ``bin 32`` header. Mutable binaries (``bytearray``, ``memoryview``) are copied as
        usual, so that changing them after a send cannot change what is sent.
        """
        if not _check_structure(value, large=True):
            return [self._pack(value)]
        large: list[bytes] = []
        packed = self._pack(_without_large_binaries(value, large, self._marker))
        parts: list[Buffer] = []
        position = 0
        with memoryview(packed) as view:
            for index, blob in enumerate(large):
                marker = packed.index(self._marker + index.to_bytes(4, "big"), position)
                parts.append(view[position : marker - _PLACEHOLDER_HEADER])
                parts.append(b"\xc6" + len(blob).to_bytes(4, "big"))
                parts.append(blob)
                position = marker + len(self._marker) + 4
            if position < len(packed):
                parts.append(view[position:])
        return parts

    def decode(self, data: Buffer) -> Any:
        """Decode exactly one MessagePack object under the spec's mapping."""
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext)
        except msgpack.ExtraData:
            raise CodecError(
                "frame is not valid MessagePack: trailing bytes after the object "
                "(do both sides use MessagePackCodec?)"
            ) from None
        except CodecError:
            raise
        except Exception as exc:  # ValueError, UnicodeDecodeError, msgpack's FormatError, ...
            raise CodecError(
                f"frame is not valid MessagePack: {str(exc) or type(exc).__name__} "
                "(do both sides use MessagePackCodec?)"
            ) from None
        if isinstance(value, _CONTAINERS) and (
            any(m in data for m in _SUSPECT_MARKERS)
            # 513 levels need 513 bytes and 513 container headers: counted in C, walked if so.
            or (len(data) > MAX_DEPTH and _may_be_too_deep(value, data))
        ):
            _check_structure(value, received=True)
        elif type(value) is msgpack.Timestamp:
            raise CodecError("frame is not valid MessagePack for aspect-ipc: ext type -1")
        return value


def _check_structure(
    value: Any, *, received: bool = False, integers: bool = False, large: bool = False
) -> bool:
    """Raise CodecError if ``value`` nests containers deeper than :data:`MAX_DEPTH`, if a map
    inside it has a non-``str`` key, or, in a received value, if it holds a timestamp
    extension, or, with ``integers``, if it holds an integer outside the spec's range
    (MessagePack refuses those by itself, JSON would write them).

    With ``large``, return whether ``value`` holds a ``bytes`` of ``_LARGE_BINARY`` or more.
    """
    # Leaves of these types need a look; a container whose values include none of them (a row
    # of floats, a map of numbers and strings) is passed over in one C-level pass.
    notable: set[type] = {dict, list, tuple}
    if received:
        notable.add(msgpack.Timestamp)
    if integers:
        notable.add(int)
    if large:
        notable.add(bytes)
    found = False
    where = "frame is not valid MessagePack for aspect-ipc: " if received else ""
    # Level by level, so that the depth of every container is known at no cost per container.
    level, depth = [value], 1 if type(value) in _CONTAINERS else 0
    values: Any
    while level:
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                for key in item:
                    if type(key) is not str:
                        raise CodecError(
                            f"{where}map keys must be strings, got {type(key).__name__} key {key!r}"
                        )
                values = item.values()
            elif kind is list or kind is tuple:
                values = item
            else:
                values = (item,)  # the top-level value itself
            kinds = set(map(type, values))
            if notable.isdisjoint(kinds):
                continue
            if kinds == _ONLY_DICTS and len(values) > 1:
                # A row of records (processItems): their keys, then their values, in two C passes.
                if set(map(type, chain.from_iterable(values))) != _ONLY_STR:
                    below.extend(values)  # let the per-map loop name the offending key
                    continue
                if notable.isdisjoint(map(type, chain.from_iterable(map(dict.values, values)))):
                    if depth >= MAX_DEPTH:
                        _too_deep(where)
                    continue
            for v in values:
                kind = type(v)
                if kind in _CONTAINERS:
                    below.append(v)
                elif kind is bytes:
                    found = found or len(v) >= _LARGE_BINARY
                elif kind is int:
                    _check_integer(v)
                elif kind is msgpack.Timestamp:
                    raise CodecError(f"{where}ext type -1")
        if below:
            depth += 1
            if depth > MAX_DEPTH:
                _too_deep(where)
        level = below
    return found


def _may_be_too_deep(value: Any, data: Buffer) -> bool:
    """False when ``value`` (decoded from ``data``) cannot nest deeper than :data:`MAX_DEPTH`:
    it holds at most that many containers, or ``data`` has at most that many header bytes."""
    if len(data) <= _LARGE_BINARY:  # a C pass over the bytes costs less than a walk
        raw = data.tobytes() if isinstance(data, memoryview) else data
        return len(raw.translate(None, _NOT_HEADERS)) > MAX_DEPTH
    level, count = [value], 1  # count containers, in C-level passes, until there are too many
    while level:
        below: list[Any] = []
        for item in level:
            values = item.values() if type(item) is dict else item
            found = sum(map(_IS_CONTAINER, map(type, values)))
            if found:
                count += found
                if count > MAX_DEPTH:
                    return True
                below.extend(v for v in values if type(v) in _CONTAINERS)
        level = below
    return False


def _too_deep(where: str) -> None:
    raise CodecError(f"{where}containers are nested deeper than {MAX_DEPTH} levels")


def _check_depth(value: Any) -> None:
    """Raise CodecError if ``value`` nests containers deeper than :data:`MAX_DEPTH`."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            _too_deep("")
        level = [
            v
            for item in level
            for v in (item.values() if type(item) is dict else item)
            if type(v) is dict or type(v) is list
        ]


def _check_integer(value: int) -> None:
    if not INT_MIN <= value <= INT_MAX:
        raise CodecError(f"cannot encode integer {value}: it is outside [-2**63, 2**64 - 1]")


def _without_large_binaries(value: Any, large: list[bytes], marker: bytes) -> Any:
    """``value`` with each ``bytes`` of ``_LARGE_BINARY`` bytes or more (appended to ``large``)
    replaced by a placeholder extension; containers on the way are copied, nothing else is."""
    kind = type(value)
    if kind is bytes:  # immutable: it can be written later, from where it is, unchanged
        if len(value) < _LARGE_BINARY:
            return value
        large.append(value)
        return msgpack.ExtType(_PLACEHOLDER_TYPE, marker + (len(large) - 1).to_bytes(4, "big"))
    if kind is dict:
        found = len(large)
        copy = {k: _without_large_binaries(v, large, marker) for k, v in value.items()}
        return copy if len(large) > found else value
    if kind is list or kind is tuple:
        found = len(large)
        items = [_without_large_binaries(v, large, marker) for v in value]
        return items if len(large) > found else value
    return value


def _no_json(value: Any) -> Any:
    if isinstance(value, _BINARY):
        raise CodecError(
            "bytes cannot be sent on a JSON channel: use the data channel (MessagePack), "
            "or encode the bytes as a string first"
        )
    raise CodecError(f"cannot encode {type(value).__name__} as JSON: {_CONVERT}")


def _json_int(digits: str) -> int:
    # Checked on the digits first: int() of a few thousand digits is refused by Python itself.
    value = int(digits) if len(digits) <= 20 else None
    if value is None or not INT_MIN <= value <= INT_MAX:
        raise CodecError(
            f"line is not valid JSON for aspect-ipc: integer {digits[:24]}"
            f"{'...' if len(digits) > 24 else ''} is outside [-2**63, 2**64 - 1]"
        )
    return value


def _json_float(digits: str) -> float:
    value = float(digits)
    if value - value != 0.0:  # infinite: the number is beyond float 64
        raise CodecError(
            f"line is not valid JSON for aspect-ipc: number {digits[:24]}"
            f"{'...' if len(digits) > 24 else ''} is too large for a float 64"
        )
    return value


def _no_constant(name: str) -> Any:
    raise CodecError(f"line is not valid JSON: {name} is not a JSON value")


def _no_msgpack(value: Any) -> Any:
    if isinstance(value, int):
        raise CodecError(
            f"cannot encode as MessagePack: integer {value} is outside [-2**63, 2**64 - 1]"
        )
    raise CodecError(f"cannot encode {type(value).__name__} as MessagePack: {_CONVERT}")


_CONVERT = (
    "the wire carries null, booleans, numbers, strings, lists, dicts with string keys (and bytes "
    "on the data channel): convert it first (a set to a list, a datetime to an ISO string or a "
    "number, an object to a dict)"
)


def _no_ext(code: int, data: bytes) -> Any:
    raise CodecError(
        f"frame is not valid MessagePack for aspect-ipc: ext type {code} is not allowed"
    )
