"""The bytes of the two channels (spec sections 1-4), built by hand from the spec.

Control: one compact JSON text per line, `\\n`-terminated. Data: a 4-byte big-endian length and a
MessagePack payload. Messages that a correct encoder would refuse (lone surrogates, nesting deeper
than 512, float ids...) are written here as raw text or raw bytes on purpose.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

__all__ = [
    "MISSING",
    "deep_line",
    "deep_payload",
    "frame",
    "line",
    "nested",
    "notification",
    "pack",
    "raw_request",
    "request",
    "unpack",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "leave the member out", as opposed to null


def request(method: str, params: Any = MISSING, request_id: Any = 1) -> dict[str, Any]:
    """A JSON-RPC request; ``params=MISSING`` leaves the member out."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not MISSING:
        message["params"] = params
    return message


def notification(method: str, params: Any = MISSING) -> dict[str, Any]:
    """A JSON-RPC notification; ``params=MISSING`` leaves the member out."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not MISSING:
        message["params"] = params
    return message


def line(message: Any) -> bytes:
    """One control line: ``message`` as compact JSON (UTF-8, not ASCII-escaped) and ``\\n``."""
    text = json.dumps(
        message, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode() + b"\n"


def pack(message: Any) -> bytes:
    """MessagePack as spec 3.2 writes it: shortest ints, float 64, bin for bytes."""
    return msgpack.packb(message, use_bin_type=True)


def frame(message: Any) -> bytes:
    """One data frame: ``bytes`` are the payload as they are, anything else is packed."""
    payload = message if isinstance(message, bytes) else pack(message)
    return len(payload).to_bytes(4, "big") + payload


def unpack(payload: bytes) -> Any:
    """A received payload, decoded (raises ``ValueError`` on anything that is not one object)."""
    return msgpack.unpackb(payload, raw=False)


def nested(containers: int) -> Any:
    """``containers`` arrays nested in each other, the innermost empty: ``[[[]]]`` for 3."""
    value: list[Any] = []
    for _ in range(containers - 1):
        value = [value]
    return value


def _params_depth(depth: int) -> int:
    # The message map is depth 1, params depth 2 (decision D11): params holds depth - 1 levels.
    return depth - 1


def deep_payload(request_id: Any, depth: int, method: str = "echo") -> bytes:
    """A MessagePack request whose nesting is exactly ``depth`` (the message map counts 1).

    Written by hand: msgpack-python refuses to pack more than 511 levels itself.
    """
    head = pack({"jsonrpc": "2.0", "id": request_id, "method": method, "params": None})
    assert head.endswith(b"\xc0")  # params is the last member: replace its nil
    levels = _params_depth(depth)
    return head[:-1] + b"\x91" * (levels - 1) + b"\x90"


def deep_line(request_id: Any, depth: int, method: str = "echo") -> bytes:
    """A control line whose nesting is exactly ``depth`` (the message map counts 1)."""
    levels = _params_depth(depth)
    head = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method})[:-1]
    return f'{head}, "params": {"[" * levels}{"]" * levels}}}\n'.encode()


def raw_request(id_text: str, params_text: str, method: str = "echo") -> bytes:
    """A control request written from JSON fragments as they are (``id_text`` ``"1.0"``,
    ``params_text`` ``'["\\\\ud800"]'``...), for texts a JSON encoder would not produce."""
    head = '{"jsonrpc":"2.0","id":' + id_text + ',"method":' + json.dumps(method)
    return (head + ',"params":' + params_text + "}").encode()
