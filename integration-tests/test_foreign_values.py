"""The foreign parent sends values and ids that SDKs get wrong, on both channels (spec 3, 4.2;
decisions D5, D6, D8-D11, D18), and replays the byte-level wire cases of spec/vectors/jsonrpc.json
against the real workers."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from foreign_parent import (
    deep_line,
    deep_payload,
    fixtures,
    nested,
    pack,
    raw_request,
    request,
)
from foreign_parent.channels import Via

hygiene = fixtures.hygiene
shared = fixtures.shared
via = fixtures.via
control = fixtures.control
data = fixtures.data

VECTORS = Path(__file__).resolve().parents[1] / "spec/vectors/jsonrpc.json"


def answer(via: Via, raw: bytes) -> dict[str, Any]:
    """Sends ``raw`` (a line's text or a frame's payload) and returns the next message."""
    via.send_raw(raw)
    reply: dict[str, Any] = via.next().message
    return reply


def code_and_id(reply: dict[str, Any]) -> tuple[Any, Any, type]:
    return reply.get("error", {}).get("code"), reply.get("id"), type(reply.get("id"))


# ---- D5: every string is a map key -------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        {"__proto__": 1, "a": 2},
        {"__proto__": {"polluted": True}, "constructor": 2, "prototype": 3},
        [{"__proto__": []}, {"toString": "x", "hasOwnProperty": None}],
    ],
    ids=["proto", "proto-constructor-prototype", "nested"],
)
def test_reserved_looking_keys_round_trip(via: Via, value: Any) -> None:
    assert via.call("echo", value)["result"] == value
    assert via.call("echo", {})["result"] == {}, (
        "the echo of {} changed: prototype polluted"
    )


# ---- D6: a float is never an id ----------------------------------------------------------
@pytest.mark.parametrize("token", ["1.0", "1e0", "1E2", "-0.0", "2.5", "1.0e0"])
def test_a_float_id_on_control_is_an_invalid_request(control: Via, token: str) -> None:
    raw = raw_request(token, "[]")
    assert code_and_id(answer(control, raw)) == (-32600, None, type(None))


@pytest.mark.parametrize("single", [False, True], ids=["float64", "float32"])
def test_a_float_id_on_data_is_an_invalid_request(data: Via, single: bool) -> None:
    message = {"jsonrpc": "2.0", "id": 1.0, "method": "echo", "params": []}
    raw = msgpack.packb(message, use_single_float=single)
    assert code_and_id(answer(data, raw)) == (-32600, None, type(None))


def test_minus_zero_as_id_text_is_the_integer_zero(control: Via) -> None:
    reply = answer(control, b'{"jsonrpc":"2.0","id":-0,"method":"echo","params":[]}')
    assert reply["id"] == 0 and type(reply["id"]) is int and reply["result"] == []


def test_integer_ids_of_any_width_are_integers(data: Via) -> None:
    head = pack({"jsonrpc": "2.0", "method": "echo", "params": []})
    for encoded in [
        b"\xcf" + (77).to_bytes(8, "big"),
        b"\xd3" + (-77).to_bytes(8, "big", signed=True),
    ]:
        raw = bytes([head[0] + 1]) + head[1:] + b"\xa2id" + encoded
        reply = answer(data, raw)
        assert reply["id"] in (77, -77) and reply["result"] == [], reply


# ---- D8: lone surrogates are codec errors ------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        r'["\ud800"]',
        r'["\udc00"]',
        r'["a\ud800b"]',
        r'["\ud800\ud800"]',
        r'["\udc00\ud800"]',
        r'{"\ud800": 1}',
        r'["\ud83d"]',
    ],
)
def test_a_lone_surrogate_on_control_is_a_parse_error_with_the_id(
    control: Via, text: str
) -> None:
    request_id = control.new_id()
    raw = raw_request(str(request_id), text)
    assert code_and_id(answer(control, raw)) == (-32700, request_id, int)
    assert control.replies_before_ping() == []


def test_a_surrogate_pair_is_one_character(control: Via) -> None:
    raw = rb'{"jsonrpc":"2.0","id":"pair","method":"echo","params":["\ud83d\ude00", "\u00e9"]}'
    assert answer(control, raw)["result"] == ["\U0001f600", "\u00e9"]


def test_invalid_utf8_in_params_on_data_recovers_the_id(data: Via) -> None:
    for bad in [
        b"\xa2\xc3\x28",
        b"\xa3\xed\xa0\x80",
    ]:  # a broken sequence; an encoded surrogate
        head = pack({"jsonrpc": "2.0", "id": 31, "method": "echo", "params": None})
        assert code_and_id(answer(data, head[:-1] + b"\x91" + bad)) == (-32700, 31, int)


# ---- D9: exact integers, -0.0 ------------------------------------------------------------
BIG = [2**64 - 1, 2**63, 2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1, 2**53, 0, -1]


def test_big_integers_echo_exactly(via: Via) -> None:
    result = via.call("echo", BIG)["result"]
    assert result == BIG and all(type(n) is int for n in result), result


def test_minus_zero_echoes_as_a_float(via: Via) -> None:
    request_id = via.new_id()
    via.send(request("echo", [-0.0, {"z": -0.0}], request_id))
    item = via.next()
    assert item.message["id"] == request_id
    values = [item.message["result"][0], item.message["result"][1]["z"]]
    for value in values:
        assert type(value) is float and math.copysign(1, value) == -1, item
    if via.name == "data":  # float 64, not float 32, not an integer (3.2)
        assert item.raw.count(bytes.fromhex("cb8000000000000000")) == 2, item.raw.hex()
    else:
        assert item.raw.count(b"-0.0") == 2, item


FLOATS = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 1e308, -2.5e-300, 2.0**-1074 * 3]


def test_floats_echo_bit_exact(via: Via) -> None:
    result = via.call("echo", FLOATS)["result"]
    assert [struct.pack(">d", v) for v in result] == [
        struct.pack(">d", v) for v in FLOATS
    ]
    assert all(type(v) is float for v in result), result


def test_an_integer_out_of_range_on_control_is_a_parse_error_with_the_id(
    control: Via,
) -> None:
    for number in ["18446744073709551616", "-9223372036854775809", "1" + "0" * 40]:
        raw = raw_request("41", f"[{number}]")
        assert code_and_id(answer(control, raw)) == (-32700, 41, int), number


# ---- D10, D11: depth 512 works, 513 is answered with the id --------------------------------
def test_a_message_512_deep_echoes(via: Via) -> None:
    request_id = via.new_id()
    if via.name == "data":
        via.send_raw(deep_payload(request_id, 512))
    else:
        via.send_raw(deep_line(request_id, 512))
    reply = via.response(request_id)
    assert reply.get("result") == nested(511), str(reply)[:300]


@pytest.mark.parametrize("depth", [513, 600, 100_000])
def test_a_message_too_deep_is_a_parse_error_with_the_id(via: Via, depth: int) -> None:
    request_id = via.new_id()
    raw = (
        deep_payload(request_id, depth)
        if via.name == "data"
        else deep_line(request_id, depth)
    )
    assert code_and_id(answer(via, raw)) == (-32700, request_id, int)
    assert via.replies_before_ping() == []


@pytest.mark.parametrize(
    "params",
    [b"\x91\xd4\x05\x01", b"\x81\x01\x02", b"\x91\xc7\x00\xff"],
    ids=["ext", "integer-key", "timestamp-ext"],
)
def test_refused_values_in_params_on_data_recover_the_id(
    data: Via, params: bytes
) -> None:
    head = pack({"jsonrpc": "2.0", "id": "refused", "method": "echo", "params": None})
    assert code_and_id(answer(data, head[:-1] + params)) == (-32700, "refused", str)


def test_float32_is_accepted_and_widened(data: Via) -> None:
    head = pack({"jsonrpc": "2.0", "id": 51, "method": "echo", "params": None})
    assert answer(data, head[:-1] + b"\x92\xca\x3f\xc0\x00\x00\xca\x3d\xcc\xcc\xcd")[
        "result"
    ] == [
        1.5,
        struct.unpack(">f", b"\x3d\xcc\xcc\xcd")[0],
    ]


# ---- D18: the test worker contract --------------------------------------------------------
ADD = [
    ({"a": 40, "b": 2}, 42),
    ({"a": 2**62, "b": 2**62 - 1}, 2**63 - 1),
    ({"a": -(2**62), "b": -(2**62)}, -(2**63)),
    ({"a": 2**53 + 1, "b": 0}, 2**53 + 1),
    ({"a": 2**63, "b": -1}, 2**63 - 1),
    ({"a": 0.1, "b": 0.2}, 0.30000000000000004),
    ({"a": 1, "b": 0.5}, 1.5),
    ({"a": -0.0, "b": -0.0}, -0.0),
    ({"a": 2**53 + 1, "b": 0.5}, 9007199254740992.0),
]


@pytest.mark.parametrize(("params", "total"), ADD, ids=[str(p) for p, _ in ADD])
def test_add_is_exact_for_integers_and_float64_otherwise(
    via: Via, params: dict[str, Any], total: Any
) -> None:
    result = via.call("add", params)["result"]
    if isinstance(total, int):
        assert result == total and type(result) is int, result
    else:  # a receiver that expects a float accepts an integer for it (3.2)
        assert result == total and struct.pack(">d", result) == struct.pack(">d", total)


BAD_PARAMS = [  # (method, params, a word the message must contain)
    ("add", {"a": 2**62, "b": 2**62}, "overflow"),
    ("add", {"a": -(2**63), "b": -1}, "overflow"),
    ("add", {"a": 2**64 - 1, "b": 0}, "overflow"),
    ("add", {"a": 1}, "b"),
    ("add", {"b": 1}, "a"),
    ("add", {}, "a"),
    ("add", [1, 2], ""),
    ("add", {"a": "1", "b": 2}, "a"),
    ("add", {"a": 1, "b": True}, "b"),
    ("add", {"a": None, "b": 1}, "a"),
    ("add", {"a": [1], "b": 1}, "a"),
    ("sleep", {"seconds": "1", "tag": "t"}, "seconds"),
    ("fail", {}, "message"),
    ("getEnv", {"name": 5}, "name"),
    ("print", {"text": None}, "text"),
    ("crash", {"code": "3"}, "code"),
    ("callParent", {"method": 5, "via": "control"}, "method"),
    ("processMatrix", {"matrix": []}, ""),
    ("processItems", {"items": [{"id": 1}]}, ""),
]


@pytest.mark.parametrize(
    ("method", "params", "word"), BAD_PARAMS, ids=[f"{m}-{p}" for m, p, _ in BAD_PARAMS]
)
def test_wrong_params_get_invalid_params(
    via: Via, method: str, params: Any, word: str
) -> None:
    reply = via.call(method, params)
    assert reply.get("error", {}).get("code") == -32602, reply
    assert word in reply["error"]["message"], reply


def test_missing_params_get_invalid_params(via: Via) -> None:
    for method in ["add", "sleep", "fail", "getEnv"]:
        reply = via.call(method)
        assert reply.get("error", {}).get("code") == -32602, (method, reply)


# ---- the byte-level wire vectors, replayed against the real worker -------------------------
def _expected(value: Any) -> Any:
    return int(value["$int"]) if isinstance(value, dict) and "$int" in value else value


WIRE = json.loads(VECTORS.read_text())["wire_cases"]


@pytest.mark.parametrize("case", WIRE, ids=[case["id"] for case in WIRE])
def test_wire_vector(control: Via, data: Via, case: dict[str, Any]) -> None:
    via = control if case["codec"] == "json" else data
    raw, expect = bytes.fromhex(case["input"]), case["expect"]
    if expect["kind"] == "invalid" and not expect["reply"]:
        via.send_raw(raw)
        assert via.replies_before_ping() == [], (
            "an invalid response must not be answered"
        )
        return
    reply = answer(via, raw)
    request_id = _expected(expect["id"])
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id), reply
    # A request for the unknown method "m" is answered -32601 (spec 4.5).
    code = -32601 if expect["kind"] == "request" else expect["code"]
    assert reply["error"]["code"] == code, reply
