"""Where an encode failed: the JSONPath of the offending place, and what to do about it.

Slow path only. The codecs check and pack in C-level passes that do not keep track of where they
are; after one of them has refused a value, :func:`locate` walks the value again, in Python and in
document order, to find the first place a codec cannot encode, and :func:`encode_error` turns it
into a :class:`CodecError` that names the place (``$.params.rows[3].when``, spec-neutral JSONPath),
the type, and the conversion to make. Nothing here runs when an encode succeeds.
"""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from .constants import INT_MAX, INT_MIN, MAX_DEPTH
from .errors import CodecError

__all__ = [
    "type_name",
    "Segments",
    "advice",
    "encode_error",
    "format_path",
    "locate",
    "refuse_json",
    "refuse_msgpack",
    "render_at",
]

Segments = tuple[str | int, ...]
"""The keys (``str``) and list indices (``int``) from the message down to a value."""
Render = Callable[[str], str]
"""Builds an error message from the place it names (``" at $.params.x"``, or ``""`` at the top)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_JSON = "bytes cannot be sent on a JSON channel"


def type_name(value: Any) -> str:
    """The name of ``value``'s type in a message: ``set``, ``Decimal``; qualified where the bare
    name is a builtin's and the type is not that builtin (numpy's ``bool`` is ``numpy.bool``)."""
    kind = type(value)
    name = kind.__name__
    if getattr(builtins, name, kind) is not kind:
        return f"{kind.__module__}.{kind.__qualname__}"
    return name


def format_path(segments: Iterable[str | int]) -> str:
    """``$`` followed by ``.key`` (identifiers), ``["a b"]`` (other keys) and ``[3]`` (indices)."""
    out = ["$"]
    for segment in segments:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):
            out.append(f".{segment}")
        else:
            out.append(f"[{_quoted(segment)}]")
    return "".join(out)


def render_at(path: str) -> str:
    """`` at <path>`` for a message, or nothing for the message itself (``$``)."""
    return "" if path == "$" else f" at {path}"


def encode_error(value: Any, codec: str, original: CodecError) -> CodecError:
    """The CodecError to raise for ``value``, which ``codec`` ("JSON" or "MessagePack") refused
    with ``original``: the first place it cannot encode, with its path; ``original`` itself when
    the walk finds nothing (the refusal came from somewhere it does not model)."""
    if original.path is not None:
        return original
    found = locate(value, as_json=codec == "JSON")
    if found is None:
        return original
    segments, render = found
    path = format_path(segments)
    return CodecError(render(render_at(path)), path=path)


def locate(value: Any, *, as_json: bool) -> tuple[Segments, Render] | None:
    """The first place in ``value`` (depth first, in order) that the codec cannot encode, and the
    message for it; None if there is none. Iterative: the value may nest very deeply."""
    codec = "JSON" if as_json else "MessagePack"
    # (value, path to it, depth of the containers down to and including it)
    stack: list[tuple[Any, Segments, int]] = [(value, (), 0)]
    while stack:
        item, segments, depth = stack.pop()
        problem = _problem(item, codec)
        if problem is not None:
            return segments, problem
        if isinstance(item, dict):
            if depth + 1 > MAX_DEPTH:
                return segments, _too_deep
            for key in item:
                problem = _key_problem(key)
                if problem is not None:
                    return segments, problem
            children: list[tuple[Any, Segments, int]] = [
                (v, (*segments, k), depth + 1) for k, v in item.items()
            ]
        elif isinstance(item, (list, tuple)):
            if depth + 1 > MAX_DEPTH:
                return segments, _too_deep
            children = [(v, (*segments, i), depth + 1) for i, v in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))
    return None


def _problem(item: Any, codec: str) -> Render | None:
    """What is wrong with ``item`` itself (not its contents), or None."""
    if item is None or isinstance(item, (bool, dict, list, tuple)):
        return None
    if isinstance(item, int):
        if INT_MIN <= item <= INT_MAX:
            return None
        return lambda at: (
            f"cannot encode integer {item}{at} as {codec}: it is outside [-2**63, 2**64 - 1]"
        )
    if isinstance(item, float):
        if codec == "MessagePack" or math.isfinite(item):
            return None
        return lambda at: (
            f"cannot encode {item!r}{at} as JSON: NaN and Infinity have no JSON form "
            "(send them on the data channel, or as strings)"
        )
    if isinstance(item, str):
        if _is_text(item):
            return None
        return lambda at: (
            f"cannot encode a string{at} as {codec}: it holds a lone surrogate, which is not "
            "Unicode text"
        )
    if isinstance(item, (bytes, bytearray, memoryview)):
        if codec == "JSON":
            return lambda at: (
                f"{_NO_JSON}{at}: use the data channel (MessagePack), or encode the bytes as a "
                "string first"
            )
        if not isinstance(item, memoryview) or item.c_contiguous:
            return None
        return lambda at: (
            f"cannot encode a memoryview{at} as MessagePack: it is not C-contiguous "
            "(copy it first: np.ascontiguousarray(a), or bytes(view))"
        )
    if codec == "MessagePack" and type(item) is msgpack.ExtType:
        return None  # a large binary's placeholder (codecs.encode_parts), not a user's value
    name = type_name(item)
    codec_class = "JsonCodec" if codec == "JSON" else "MessagePackCodec"
    return lambda at: (
        f"cannot encode {name}{at} as {codec}: {advice(item)} or pass an encode_hook to "
        f"{codec_class}"
    )


def _key_problem(key: Any) -> Render | None:
    if type(key) is not str:
        name = type_name(key)
        return lambda at: f"map key {key!r}{at} is {name}: keys must be strings"
    if _is_text(key):
        return None
    return lambda at: f"a map key{at} holds a lone surrogate, which is not Unicode text"


def _too_deep(at: str) -> str:
    return f"containers{at} are nested deeper than {MAX_DEPTH} levels"


def advice(item: Any) -> str:
    """What to convert ``item`` to, for a message: ``convert it first (a set to a list)``."""
    kind = type(item)
    names = {k.__name__ for k in kind.__mro__}
    module = kind.__module__.partition(".")[0]
    if module == "numpy" and "ndarray" in names:
        return "send it as the numpy recipe in docs/codec-hooks.md does (dtype, shape, buffer)"
    if module == "numpy":
        return "convert it first (a numpy scalar with .item())"
    if names & {"datetime", "date", "time"}:
        return f"convert it first (a {kind.__name__} to an ISO string or a number)"
    if names & {"set", "frozenset"}:
        return f"convert it first (a {kind.__name__} to a list)"
    if "Decimal" in names:
        return "convert it first (a Decimal to a str)"
    if names & {"UUID", "PurePath"}:
        return f"convert it first (a {kind.__name__} to a str)"
    if "Enum" in names:
        return "convert it first (an Enum to its .value)"
    return (
        "convert it first to what the wire carries (null, booleans, numbers, strings, lists, "
        "dicts with string keys, bytes on the data channel): a set to a list, a datetime to an "
        "ISO string or a number, an object to a dict"
    )


def refuse_json(value: Any) -> Any:
    """``json.dumps``'s ``default``: refuses ``value`` (:func:`encode_error` then says where)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise CodecError(
            "bytes cannot be sent on a JSON channel: use the data channel (MessagePack), "
            "or encode the bytes as a string first"
        )
    raise CodecError(f"cannot encode {type_name(value)} as JSON: {_CONVERT}")


def refuse_msgpack(value: Any) -> Any:
    """``msgpack.Packer``'s ``default``: refuses ``value`` (:func:`encode_error` says where)."""
    if isinstance(value, int):
        raise CodecError(
            f"cannot encode as MessagePack: integer {value} is outside [-2**63, 2**64 - 1]"
        )
    raise CodecError(f"cannot encode {type_name(value)} as MessagePack: {_CONVERT}")


_CONVERT = (
    "the wire carries null, booleans, numbers, strings, lists, dicts with string keys (and bytes "
    "on the data channel): convert it first (a set to a list, a datetime to an ISO string or a "
    "number, an object to a dict)"
)


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _quoted(key: str) -> str:
    return json.dumps(key, ensure_ascii=not _is_text(key))
