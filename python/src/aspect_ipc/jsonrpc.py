"""JSON-RPC 2.0 as profiled by spec section 4: build, classify, validate. Sans-IO.

Messages travel as plain dicts (the codec's values); :meth:`JsonRpcProtocol.parse` classifies one
into a :class:`Request`, :class:`Notification`, :class:`Response`, :class:`ErrorResponse` or
:class:`InvalidMessage`, following the order of checks in spec 4.2 so that every SDK reaches the
same verdict on the same message.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Final

from .constants import INT_MAX, INT_MIN
from .errors import RemoteError

__all__ = [
    "ABSENT",
    "ErrorCode",
    "ErrorResponse",
    "InvalidMessage",
    "JsonRpcProtocol",
    "Message",
    "MessageId",
    "Notification",
    "Request",
    "Response",
    "error_for_exception",
]

MessageId = int | str


class _Absent:
    """The type of :data:`ABSENT`: a member that the message does not have (unlike ``None``)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


class ErrorCode(IntEnum):
    """The error codes of spec section 12."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    HANDLER_ERROR = -32000
    REQUEST_TIMEOUT = -32001
    REQUEST_CANCELLED = -32002
    UNAUTHORIZED = -32003
    SHUTTING_DOWN = -32004
    MESSAGE_TOO_LARGE = -32005
    WORKER_CRASHED = -32006
    PROTOCOL_VERSION_MISMATCH = -32007
    CHANNEL_CLOSED = -32008


@dataclass(frozen=True, slots=True)
class Request:
    """A call that expects exactly one response with the same ``id``."""

    id: MessageId
    method: str
    params: list[Any] | dict[str, Any] | None = None  # None: the message has no params


@dataclass(frozen=True, slots=True)
class Notification:
    """A call that is never answered."""

    method: str
    params: list[Any] | dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer to the request with the same ``id``."""

    id: MessageId
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A failed answer; ``id`` is None when the failed message's id could not be determined."""

    id: MessageId | None
    code: int
    message: str
    data: Any = ABSENT


@dataclass(frozen=True, slots=True)
class InvalidMessage:
    """A message that breaks the rules; ``reply`` says whether the receiver answers it."""

    code: int
    id: MessageId | None
    reply: bool
    reason: str
    no_method: bool = False
    """It has no ``method``: not a request of the peer, so an ``id`` of ours names the request
    it (badly) answers (spec 1.5)."""


Message = Request | Notification | Response | ErrorResponse | InvalidMessage


def _is_id(value: Any) -> bool:
    if type(value) is int:
        return INT_MIN <= value <= INT_MAX
    return type(value) is str


class JsonRpcProtocol:
    """Builds outgoing messages (allocating request ids) and classifies incoming ones."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """Allocate the next request id: 1, 2, 3, ..."""
        return next(self._ids)

    def request(
        self, method: str, params: Any = None, *, id: MessageId | None = None
    ) -> dict[str, Any]:
        """Build a request; ``id`` defaults to the next allocated id."""
        message: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids) if id is None else id,
            "method": method,
        }
        if params is not None:
            kind = type(params)  # a dict or a list goes as it is: no call for most requests
            message["params"] = params if kind is dict or kind is list else _params(params)
        return message

    @staticmethod
    def notification(method: str, params: Any = None) -> dict[str, Any]:
        """Build a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = _params(params)
        return message

    @staticmethod
    def response(id: MessageId, result: Any) -> dict[str, Any]:
        """Build a successful response."""
        return {"jsonrpc": "2.0", "id": id, "result": result}

    @staticmethod
    def error_response(
        id: MessageId | None, code: int, message: str, data: Any = ABSENT
    ) -> dict[str, Any]:
        """Build an error response; ``data`` is left out unless given."""
        error: dict[str, Any] = {"code": int(code), "message": message}
        if data is not ABSENT:
            error["data"] = data
        return {"jsonrpc": "2.0", "id": id, "error": error}

    @staticmethod
    def parse(value: Any) -> Message:
        """Classify a decoded value per spec 4.2."""
        if type(value) is dict and len(value) == 3 and "result" in value:
            # The commonest message, an answer: three members, so exactly these three.
            version, answer_id = value.get("jsonrpc"), value.get("id", ABSENT)
            if type(version) is str and version == "2.0" and _is_id(answer_id):
                return Response(answer_id, value["result"])
        if isinstance(value, list):
            return InvalidMessage(
                ErrorCode.INVALID_REQUEST, None, True, "Invalid Request: batches are not supported"
            )
        if not isinstance(value, dict):
            return InvalidMessage(
                ErrorCode.INVALID_REQUEST, None, True, "Invalid Request: a message must be a map"
            )
        raw_id = value.get("id")
        msg_id: MessageId | None = raw_id if _is_id(raw_id) else None
        if value.get("jsonrpc") != "2.0" or type(value.get("jsonrpc")) is not str:
            # Shaped like a response: an invalid response is never answered (4.3).
            reply = "method" in value or not ("result" in value or "error" in value)
            invalid = _invalid(msg_id, reply, 'the "jsonrpc" member must be the string "2.0"')
            return replace(invalid, no_method="method" not in value)
        if "method" in value:
            return _parse_call(value, msg_id)
        if "result" in value or "error" in value:
            return _parse_response(value, msg_id)
        invalid = _invalid(msg_id, True, "neither a request, a notification nor a response")
        return replace(invalid, no_method=True)


def _parse_call(value: dict[str, Any], msg_id: MessageId | None) -> Message:
    method = value["method"]
    if type(method) is not str:
        return _invalid(msg_id, True, 'the "method" member must be a string')
    if "result" in value or "error" in value:
        return _invalid(msg_id, True, "a request must not carry result or error")
    has_id = "id" in value
    if has_id and msg_id is None:
        return _invalid(None, True, 'the "id" member must be a string or an integer')
    params = value.get("params", ABSENT)
    if params is ABSENT:
        params = None
    elif not isinstance(params, (list, dict)):
        return _invalid(msg_id, True, 'the "params" member must be an array or a map')
    if has_id:
        assert msg_id is not None
        return Request(msg_id, method, params)
    return Notification(method, params)


def _parse_response(value: dict[str, Any], msg_id: MessageId | None) -> Message:
    if "id" not in value:
        return _invalid(None, False, 'a response must have an "id" member')
    raw_id = value["id"]
    if raw_id is not None and msg_id is None:
        return _invalid(None, False, 'the "id" member must be a string, an integer or null')
    if "result" in value and "error" in value:
        return _invalid(msg_id, False, "a response must not carry both result and error")
    if "result" in value:
        if msg_id is None:
            return _invalid(None, False, "a successful response must not have a null id")
        return Response(msg_id, value["result"])
    error = value["error"]
    if not isinstance(error, dict):
        return _invalid(msg_id, False, 'the "error" member must be a map')
    code, message = error.get("code"), error.get("message")
    if type(code) is not int or not INT_MIN <= code <= INT_MAX:
        return _invalid(msg_id, False, "error.code must be an integer")
    if type(message) is not str:
        return _invalid(msg_id, False, "error.message must be a string")
    return ErrorResponse(msg_id, code, message, error.get("data", ABSENT))


def _invalid(msg_id: MessageId | None, reply: bool, reason: str) -> InvalidMessage:
    return InvalidMessage(ErrorCode.INVALID_REQUEST, msg_id, reply, f"Invalid Request: {reason}")


def _params(params: Any) -> list[Any] | dict[str, Any]:
    if isinstance(params, tuple):
        return list(params)
    if not isinstance(params, (list, dict)):
        raise TypeError(
            f"JSON-RPC params must be a list or a dict, not {type(params).__name__}; "
            "wrap a single value, e.g. [value] or {'value': value}"
        )
    return params


def error_for_exception(exc: BaseException) -> tuple[int, str, Any]:
    """Return ``(code, message, data)`` for an exception raised by a handler (spec 4.5); a
    RemoteError without data (``data=None``) gives :data:`ABSENT`: its error is sent with
    nothing added, not with ``"data": null``."""
    if isinstance(exc, RemoteError):
        return exc.code, exc.message, ABSENT if exc.data is None else exc.data
    return ErrorCode.HANDLER_ERROR, str(exc) or type(exc).__name__, {"type": type(exc).__name__}
