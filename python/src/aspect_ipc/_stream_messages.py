"""The shapes of spec 13 streams: the ``$/stream`` descriptor of an opening request and the four
``$/stream/*`` notifications. Pure: values in, verdicts out (no state, no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .constants import INT_MAX, INT_MIN

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_OPEN_STREAMS",
    "MAX_WINDOW",
    "STREAM_KEY",
    "STREAM_METHODS",
    "STREAM_PROTOCOL_ERROR",
    "STREAM_CLOSED",
    "TOO_MANY_STREAMS",
    "Credit",
    "DescriptorError",
    "End",
    "Failed",
    "Item",
    "Malformed",
    "Opening",
    "StreamMessage",
    "check_input_window",
    "check_output_window",
    "descriptor",
    "parse_opening",
    "parse_stream_message",
]

STREAM_KEY: Final = "$/stream"
ITEM: Final = "$/stream/item"
CREDIT: Final = "$/stream/credit"
END: Final = "$/stream/end"
ERROR: Final = "$/stream/error"
STREAM_METHODS: Final = frozenset({ITEM, CREDIT, END, ERROR})
"""The methods the stream layer takes in its reader: one set lookup tells them from the rest."""

DEFAULT_WINDOW: Final = 16
MAX_WINDOW: Final = 1024
MAX_OPEN_STREAMS: Final = 64
TOO_MANY_STREAMS: Final = -32009
STREAM_PROTOCOL_ERROR: Final = -32010
STREAM_CLOSED: Final = -32011

Dir = Literal["out", "in"]
StreamId = int | str


class DescriptorError(ValueError):
    """A ``$/stream`` descriptor that breaks 13.1: the request is answered -32602."""


@dataclass(frozen=True, slots=True)
class Opening:
    """What an opening request asks for: the params without ``$/stream``, and its streams."""

    params: dict[str, Any]
    out_window: int | None  # None: no output stream
    has_input: bool


def parse_opening(params: Any) -> Opening | None:
    """The streams a request opens, None if it opens none; raises :class:`DescriptorError`."""
    if type(params) is not dict or STREAM_KEY not in params:
        return None
    rest = {k: v for k, v in params.items() if k != STREAM_KEY}
    desc = params[STREAM_KEY]
    if type(desc) is not dict:
        raise DescriptorError("$/stream must be a map")
    if not desc or not desc.keys() <= {"out", "in"}:
        raise DescriptorError('$/stream must hold "out", "in" or both, and nothing else')
    window = None
    if "out" in desc:
        out = desc["out"]
        if type(out) is not dict or type(out.get("window")) is not int:
            raise DescriptorError("$/stream.out.window must be an integer")
        if len(out) != 1:
            extra = next(k for k in out if k != "window")
            raise DescriptorError(f"$/stream.out has an unknown member {extra!r}")
        window = out["window"]
        if not 1 <= window <= MAX_WINDOW:
            raise DescriptorError(f"$/stream.out.window must be in [1, {MAX_WINDOW}], not {window}")
    if "in" in desc and (type(desc["in"]) is not dict or desc["in"]):
        raise DescriptorError("$/stream.in must be an empty map")
    return Opening(rest, window, "in" in desc)


def check_output_window(window: object) -> int:
    """``window`` if it is a valid window for an output stream we open (13.1), else raise
    ValueError before anything is sent (a peer would answer -32602, or worse, accept 2.0)."""
    if type(window) is not int or not 1 <= window <= MAX_WINDOW:
        raise ValueError(
            f"window must be an integer from 1 to {MAX_WINDOW} (the items the stream may have "
            f"in flight; default {DEFAULT_WINDOW}), not {window!r}"
        )
    return window


def check_input_window(method: str, window: object) -> int:
    """``window`` if it is a valid input window for the handler of ``method`` (13.3), else
    raise ValueError naming the handler (at registration, not when a request comes)."""
    if type(window) is not int or not 1 <= window <= MAX_WINDOW:
        raise ValueError(
            f"handler {method!r}: input_window must be an integer from 1 to {MAX_WINDOW} "
            f"(the items its input stream buffers; default {DEFAULT_WINDOW}), not {window!r}"
        )
    return window


def descriptor(out_window: int | None, has_input: bool) -> dict[str, Any]:
    """The ``$/stream`` member a requester puts in its params (13.1)."""
    desc: dict[str, Any] = {}
    if out_window is not None:
        desc["out"] = {"window": out_window}
    if has_input:
        desc["in"] = {}
    return desc


@dataclass(frozen=True, slots=True)
class Item:
    stream: StreamId
    dir: Dir
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Credit:
    stream: StreamId
    dir: Dir
    add: int


@dataclass(frozen=True, slots=True)
class End:
    stream: StreamId
    dir: Dir


@dataclass(frozen=True, slots=True)
class Failed:
    """``$/stream/error``: the requester's input stream failed with this error object."""

    stream: StreamId
    dir: Dir
    code: int
    message: str
    data: Any  # ABSENT-like: None when the message has no data, see has_data
    has_data: bool


@dataclass(frozen=True, slots=True)
class Malformed:
    """A ``$/stream/*`` message naming a stream but breaking its shape (13.5)."""

    method: str
    stream: StreamId
    dir: Dir
    reason: str


StreamMessage = Item | Credit | End | Failed | Malformed


def _is_id(value: Any) -> bool:
    return type(value) is str or (type(value) is int and INT_MIN <= value <= INT_MAX)


def _count(value: Any, least: int) -> bool:
    return type(value) is int and least <= value <= INT_MAX


def parse_stream_message(method: str, params: Any) -> StreamMessage | None:
    """Classify a ``$/stream/*`` notification; None when it names no stream (dropped)."""
    if type(params) is not dict:
        return None
    sid: StreamId = params.get("stream")  # type: ignore[assignment]  # checked just below
    d: Dir = params.get("dir")  # type: ignore[assignment]
    if not _is_id(sid) or d not in ("out", "in"):
        return None
    if method == ITEM:
        if not _count(params.get("seq"), 0) or "value" not in params:
            return Malformed(method, sid, d, "an item needs an integer seq >= 0 and a value")
        return Item(sid, d, params["seq"], params["value"])
    if method == CREDIT:
        if not _count(params.get("add"), 1):
            return Malformed(method, sid, d, "credit needs an integer add >= 1")
        return Credit(sid, d, params["add"])
    if d != "in":
        return Malformed(method, sid, d, f"{method} is sent for input streams only")
    if method == END:
        return End(sid, d)
    error = params.get("error")
    if (
        type(error) is not dict
        or type(error.get("code")) is not int
        or type(error.get("message")) is not str
    ):
        return Malformed(method, sid, d, "$/stream/error needs an error with code and message")
    return Failed(sid, d, error["code"], error["message"], error.get("data"), "data" in error)
