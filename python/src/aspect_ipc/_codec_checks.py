"""The structural checks of decoded and to-be-encoded values (spec 3.2, 3.4). Sans-IO.

What msgpack and json do not check themselves: map keys that are not strings, nesting deeper than
512 levels, integers outside [-2**63, 2**64 - 1] (JSON), timestamp extensions in received data.
Each check runs in C-level passes where it can, and only where it can fail.
"""

from __future__ import annotations

import re
from itertools import chain
from operator import itemgetter
from typing import Any

import msgpack

from ._codec_hooks import LARGE_BINARY
from .constants import INT_MAX, INT_MIN, MAX_DEPTH
from .errors import CodecError

__all__ = ["check_depth", "check_structure", "has_suspect", "may_be_too_deep"]

Buffer = bytes | bytearray | memoryview
_CONTAINERS = (dict, list, tuple)
_IS_CONTAINER = frozenset(_CONTAINERS).__contains__
_ONLY_DICTS: set[type] = {dict}
_ONLY_STR = frozenset({str})
# Leaves no check looks at when integers are not checked (MessagePack refuses its own).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_LARGE_BINARY = LARGE_BINARY
# The type bytes without which a MessagePack payload cannot hold a bin map key (bin 8/16/32) or a
# timestamp extension (fixext 4/8, ext 8): only payloads containing one of them pay for the
# structural check. Single bytes, because a one-byte search is a memchr that stops at the first
# hit, where a longer pattern can cost a full scan of a large payload.
_SUSPECT_MARKERS = (b"\xc4", b"\xc5", b"\xc6", b"\xd6", b"\xd7", b"\xc7")
# The same as one pattern: for a small payload one C call beats six (a regex scan is slower per
# byte than memchr, so large payloads keep the six searches).
_SUSPECT = re.compile(b"[\xc4-\xc7\xd6\xd7]").search
_SUSPECT_SCAN_AT = 4096
# Every byte but the container headers (fixmap, fixarray, array 16/32, map 16/32).
_NOT_HEADERS = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))


def check_structure(
    value: Any, *, received: bool = False, integers: bool = False, large: bool = False
) -> bool:
    """Raise CodecError if ``value`` nests containers deeper than :data:`MAX_DEPTH`, if a map
    inside it has a non-``str`` key, or, in a received value, if it holds a timestamp
    extension, or, with ``integers``, if it holds an integer outside the spec's range
    (MessagePack refuses those by itself, JSON would write them).

    With ``large``, return whether ``value`` holds a ``bytes`` of ``_LARGE_BINARY`` or more.
    """
    if not (received or integers) and _plain(value):
        return False
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
                # A row of records (processItems): their keys, then their values, in C passes.
                if kind is not dict and _same_plain_records(values, notable):
                    if depth >= MAX_DEPTH:
                        _too_deep(where)
                    continue
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


def _same_plain_records(records: Any, notable: set[type]) -> bool:
    """Whether ``records`` (a list or tuple of dicts) all have the first one's keys, strings,
    and no value of a ``notable`` type. Column by column: 0.7x the time of a pass over all keys
    and one over all values (a record with other keys gives False: the caller looks closer)."""
    first = records[0]
    if not _ONLY_STR.issuperset(map(type, first)) or set(map(len, records)) != {len(first)}:
        return False
    try:  # same size and every key of the first: the same keys
        for key in first:
            if not notable.isdisjoint(map(type, map(itemgetter(key), records))):
                return False
    except KeyError:
        return False
    return True


def _plain(value: Any) -> bool:
    """Whether ``value`` is a map of plain leaves, maps of plain leaves and lists of them (most
    messages: an envelope and its params): nothing to check, in half the time of the walk."""
    if type(value) is not dict or not _ONLY_STR.issuperset(map(type, value)):
        return False
    for item in value.values():
        kind = type(item)
        if kind in _PLAIN:
            continue
        if kind is dict:
            if not (
                _ONLY_STR.issuperset(map(type, item))
                and _PLAIN.issuperset(map(type, item.values()))
            ):
                return False
        elif kind is not list or not _PLAIN.issuperset(map(type, item)):
            return False
    return True


def has_suspect(data: Buffer) -> bool:
    """Whether ``data`` holds a byte of :data:`_SUSPECT_MARKERS` (False: no check needed)."""
    if len(data) <= _SUSPECT_SCAN_AT:
        return _SUSPECT(data) is not None
    if type(data) is memoryview:
        # ``in`` on a memoryview compares element by element in Python, and never matches a
        # bytes: search the object it views, a superset (a marker outside the frame costs a
        # check, never a miss), or a copy.
        base = data.obj
        data = base if type(base) is bytes or type(base) is bytearray else data.tobytes()
    return any(m in data for m in _SUSPECT_MARKERS)


def may_be_too_deep(value: Any, data: Buffer) -> bool:
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


def check_depth(value: Any) -> None:
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
