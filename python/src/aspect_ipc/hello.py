"""The worker's verdict on a data connection's first frame, ``$/hello`` (spec 7.4). Pure.

The checks run in a fixed order, so that every SDK answers the same frame the same way
(``spec/vectors/handshake.json``): the frame must be a request, for ``$/hello``, with the right
token (compared in constant time), all before the protocol is looked at, so that a peer without
the token learns nothing but "unauthorized".
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .constants import METHOD_HELLO
from .jsonrpc import ErrorCode, JsonRpcProtocol, Request

__all__ = ["ALREADY_AUTHENTICATED", "UNDECODABLE", "HelloVerdict", "hello_verdict"]

ALREADY_AUTHENTICATED: Final = (ErrorCode.INVALID_REQUEST, "Invalid Request: already authenticated")
"""The code and message for a ``$/hello`` request on an authenticated connection."""


class _Undecodable:
    def __repr__(self) -> str:
        return "UNDECODABLE"


UNDECODABLE: Final = _Undecodable()
"""Stands for a first frame that is not valid MessagePack."""


@dataclass(frozen=True, slots=True)
class HelloVerdict:
    """What to do with the connection: send ``reply``, then keep it if ``accept``, else close."""

    reply: dict[str, Any] | None
    accept: bool


def hello_verdict(
    message: Any,
    *,
    token: str,
    supported: Sequence[int],
    worker_id: str,
    pid: int,
    already_authenticated: bool,
    first_frame: bool = True,
) -> HelloVerdict:
    """Decide on the first frame of a data connection.

    Args:
        message: the frame's decoded value, or :data:`UNDECODABLE`.
        token: the expected token (``ASPECT_IPC_TOKEN``).
        supported: the protocol versions this worker speaks.
        worker_id, pid: what an accepted ``$/hello`` is answered with.
        already_authenticated: whether another connection is authenticated now.
        first_frame: False for a ``$/hello`` on this connection once it is authenticated:
            a request is answered ``-32600`` and the connection stays open.
    """
    parsed = None if message is UNDECODABLE else JsonRpcProtocol.parse(message)
    if not first_frame:
        if isinstance(parsed, Request):
            reply = JsonRpcProtocol.error_response(parsed.id, *ALREADY_AUTHENTICATED)
            return HelloVerdict(reply, accept=True)
        return HelloVerdict(None, accept=True)
    if not isinstance(parsed, Request):
        return _refuse(None, ErrorCode.UNAUTHORIZED, "unauthorized: $/hello expected first")
    if parsed.method != METHOD_HELLO:
        return _refuse(parsed.id, ErrorCode.UNAUTHORIZED, "unauthorized: $/hello expected first")
    params = parsed.params
    given = params.get("token") if isinstance(params, dict) else None
    # Both sides are compared whole, whatever the given token is: no early exit.
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogatepass") if isinstance(given, str) else b"",
        token.encode("utf-8", "surrogatepass"),
    ) or not isinstance(given, str):
        return _refuse(parsed.id, ErrorCode.UNAUTHORIZED, "unauthorized")
    assert isinstance(params, dict)
    protocol = params.get("protocol")
    if type(protocol) is not int:
        return _refuse(
            parsed.id,
            ErrorCode.INVALID_PARAMS,
            f"Invalid params: $/hello needs an integer protocol, got {_describe(protocol)}",
        )
    if protocol not in supported:
        return _refuse(
            parsed.id,
            ErrorCode.PROTOCOL_VERSION_MISMATCH,
            f"protocol version mismatch: worker speaks {', '.join(map(str, supported))}, "
            f"parent speaks {protocol}",
            {"supported": list(supported)},
        )
    if already_authenticated:
        return _refuse(parsed.id, ErrorCode.UNAUTHORIZED, "data channel already connected")
    result = {"protocol": protocol, "workerId": worker_id, "pid": pid}
    return HelloVerdict(JsonRpcProtocol.response(parsed.id, result), accept=True)


def _refuse(reply_id: Any, code: int, text: str, data: Any = None) -> HelloVerdict:
    if data is None:
        return HelloVerdict(JsonRpcProtocol.error_response(reply_id, code, text), accept=False)
    return HelloVerdict(JsonRpcProtocol.error_response(reply_id, code, text, data), accept=False)


def _describe(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
