"""The id of a message that did not decode (spec 4.8): a request's, so that its ``-32700`` reaches
the caller; an answer's, so that the request it answers fails at once instead of timing out.

Only on the failure path: a message is recovered when it is well-formed (syntactically valid JSON
text, or exactly one well-formed MessagePack object) and failed for another reason (nesting too
deep, a refused key, a lone surrogate, an out-of-range number, an ext type...), its top level is a
map, its ``method`` member is a string (an answer: it has none, and has ``result`` or ``error``) and
its ``id`` member a string or an integer in range.
MessagePack is read by msgpack's C unpacker first (it skips whole values at C speed); where that
fails (nesting beyond its stack, a member that does not decode), and for JSON, an iterative
pure-Python reader takes over: a value nested 100,000 deep costs time, not stack. That reader runs
only on messages of at most ``PURE_SCAN_LIMIT`` bytes, so a hostile peer cannot hold the event loop
with a huge malformed message: a larger one is answered with id null. Sans-IO.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgpack

from .constants import INT_MAX, INT_MIN

__all__ = ["PURE_SCAN_LIMIT", "recover_answer_id", "recover_answer_id_from_head", "recover_id"]

PURE_SCAN_LIMIT = 1024 * 1024
"""The largest message (bytes) the pure-Python readers scan: about 0.1 s of CPU at worst."""

Buffer = bytes | bytearray | memoryview

_VALUED = ("id", "method")  # the members whose values are read
_PRESENT = ("result", "error")  # the members whose presence is noted


def recover_id(codec_name: str, data: Buffer) -> int | str | None:
    """The id to answer an undecodable ``data`` with, for codec ``"json"`` or ``"msgpack"``."""
    members = _members(codec_name, data)
    if members is None:
        return None
    method = members.get("method")
    if type(method) is not str or not _is_text(method):
        return None
    return _valid_id(members.get("id"))


def recover_answer_id(codec_name: str, data: Buffer) -> int | str | None:
    """The id of an undecodable answer (spec 4.8): ``data`` is well-formed, and its top level a
    map with ``result`` or ``error``, no ``method``, and a valid ``id``; else None."""
    members = _members(codec_name, data)
    if members is None or "method" in members:
        return None
    if "result" not in members and "error" not in members:
        return None
    return _valid_id(members.get("id"))


def recover_answer_id_from_head(head: bytes) -> int | str | None:
    """The id of an answer whose JSON line was over the limit and skipped (spec 4.9), from the
    line's first bytes: a map whose top level shows, before the bytes run out, an ``id`` and a
    ``result`` or ``error`` member, and no ``method``; else None. A value cut by the end of
    ``head`` is not read: the digits of an id cut short would name another request."""
    cut = len(head)
    while cut > 0:  # the end may cut a character in two
        try:
            text = head[:cut].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            if exc.start < cut - 3:
                return None  # not UTF-8 before the end: not a message
            cut -= 1
    else:
        return None
    members = _json_members_of(text, prefix=True)
    if members is None or "method" in members:
        return None
    if "result" not in members and "error" not in members:
        return None
    return _valid_id(members.get("id"))


def _members(codec_name: str, data: Buffer) -> dict[str, Any] | None:
    """The top-level members of a well-formed message that matter here: ``id`` and ``method``
    with their values, ``result`` and ``error`` present (their values are not read)."""
    if codec_name not in ("json", "msgpack"):
        return None
    try:
        if codec_name == "msgpack":
            members = _msgpack_members_fast(data)
            if members is None and len(data) <= PURE_SCAN_LIMIT:
                members = _msgpack_members(bytes(data))
            return members
        if len(data) <= PURE_SCAN_LIMIT:
            return _json_members(data)
    except (ValueError, IndexError, UnicodeDecodeError):
        pass
    return None


def _valid_id(request_id: Any) -> int | str | None:
    if type(request_id) is int and INT_MIN <= request_id <= INT_MAX:
        return request_id
    if type(request_id) is str and _is_text(request_id):
        return request_id
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


# -- JSON -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
      (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
    | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<literal>true|false|null)
    | (?P<punct>[\[\]{}:,])
    )""",
    re.VERBOSE,
)
_SPACE = re.compile(r"[ \t\n\r]*")


def _json_members(data: Buffer) -> dict[str, Any] | None:
    """The scalar ``id`` and ``method`` members of the top-level map of a syntactically valid JSON
    text, and whether it has ``result`` and ``error``; else None."""
    return _json_members_of(bytes(data).decode("utf-8"), prefix=False)


def _json_members_of(text: str, *, prefix: bool) -> dict[str, Any] | None:
    """:func:`_json_members` of ``text``; with ``prefix``, of the start of a JSON text: what it
    shows before it ends (a token the end cuts, or may cut, is not read)."""
    position, end = 0, len(text)
    stack: list[str] = []  # "{" or "[" per open container
    expect = "value"  # what may come next: value, key, colon, comma, value_or_close...
    members: dict[str, Any] = {}
    key: str | None = None
    while True:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        if prefix and match.end() == end:
            break  # the last token may be cut short (digits, a literal): not read
        kind, token, position = match.lastgroup, match.group(match.lastgroup or 0), match.end()
        top_level_value = len(stack) == 1 and stack[0] == "{" and expect == "value"
        if kind == "punct":
            expect = _punct(token, expect, stack)
            if expect == "":
                return None
            if not stack:
                break
            continue
        if expect in ("key", "key_or_close"):
            if kind != "string":
                return None
            key, expect = json.loads(token), "colon"
            if len(stack) == 1 and key in _PRESENT:
                members[key] = None
            continue
        if expect not in ("value", "value_or_close"):
            return None
        if top_level_value and key in _VALUED:
            members[key] = json.loads(token)
        elif not stack:
            return None  # a scalar at the top level: not a message
        expect = "comma"
    if prefix:
        return members  # a top level that is not a map returned None above
    if stack or _SPACE.match(text, position).end() != end:  # type: ignore[union-attr]
        return None
    return members


def _punct(token: str, expect: str, stack: list[str]) -> str:
    """Apply one punctuation token; the next expectation, or "" if it is not allowed here."""
    if token in "[{":
        if expect not in ("value", "value_or_close") or (not stack and token == "["):
            return ""
        stack.append(token)
        return "key_or_close" if token == "{" else "value_or_close"
    if token in "]}":
        opener = "[" if token == "]" else "{"
        if not stack or stack[-1] != opener:
            return ""
        if expect not in ("comma", "key_or_close" if token == "}" else "value_or_close"):
            return ""
        stack.pop()
        return "comma"
    if token == ":":
        return "value" if expect == "colon" else ""
    if expect != "comma" or not stack:
        return ""
    return "key" if stack[-1] == "{" else "value"


# -- MessagePack ------------------------------------------------------------------------------


def _msgpack_members_fast(data: Buffer) -> dict[str, Any] | None:
    """``_msgpack_members`` at C speed, or None where msgpack's unpacker cannot tell."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    members: dict[str, Any] = {}
    try:
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key in _VALUED:
                members[key] = unpacker.unpack()
            else:
                if key in _PRESENT:
                    members[key] = None
                unpacker.skip()
    except Exception:  # too deep for its stack, a member that does not decode, not a map...
        return None
    return members if unpacker.tell() == len(data) else None


def _msgpack_members(data: bytes) -> dict[str, Any] | None:
    """The ``id`` and ``method`` members of the top-level map of one well-formed MessagePack
    object, and whether it has ``result`` and ``error``; else None."""
    count, position = _map_header(data, 0)
    if count is None:
        return None
    members: dict[str, Any] = {}
    for _ in range(count):
        key_start = position
        position = _skip(data, position)
        value_start = position
        position = _skip(data, position)
        try:
            key = msgpack.unpackb(data[key_start:value_start], raw=False)
        except Exception:
            continue  # a refused key: none of ours
        if key in _PRESENT:
            members[key] = None
        elif key in _VALUED:
            try:
                members[key] = msgpack.unpackb(data[value_start:position], raw=False)
            except Exception:
                members[key] = None  # the member itself does not decode
    return members if position == len(data) else None


def _map_header(data: bytes, position: int) -> tuple[int | None, int]:
    first = data[position]
    if 0x80 <= first <= 0x8F:
        return first & 0x0F, position + 1
    if first == 0xDE:
        return int.from_bytes(data[position + 1 : position + 3], "big"), position + 3
    if first == 0xDF:
        return int.from_bytes(data[position + 1 : position + 5], "big"), position + 5
    return None, position


# Fixed sizes after the type byte, and sizes given by a length field: (length bytes, extra).
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED |= {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
_SIZED |= {0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}
_CONTAINER = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def _skip(data: bytes, position: int) -> int:
    """The position after the one object at ``position``; IndexError/ValueError if malformed."""
    pending = 1  # objects still to skip: a container adds its items instead of recursing
    end = len(data)
    while pending:
        pending -= 1
        if position >= end:
            raise IndexError("truncated")
        first = data[position]
        position += 1
        if first <= 0x7F or first >= 0xE0:
            continue
        if first <= 0x8F:
            pending += 2 * (first & 0x0F)
        elif first <= 0x9F:
            pending += first & 0x0F
        elif first <= 0xBF:
            position += first & 0x1F
        elif first in _FIXED:
            position += _FIXED[first]
        elif first in _SIZED:
            width, extra = _SIZED[first]
            position += width + extra + int.from_bytes(data[position : position + width], "big")
        elif first in _CONTAINER:
            width, per_item = _CONTAINER[first]
            pending += per_item * int.from_bytes(data[position : position + width], "big")
            position += width
        else:
            raise ValueError("0xc1 is never used")
        if position > end:
            raise IndexError("truncated")
    return position
