"""Fuzzing the JSON-RPC validator against the text of spec 4.2.

``JsonRpcProtocol.parse`` never raises, whatever the value, and reaches the verdict that an
independent reading of spec 4.2 (``expected`` below, written from the spec, not from jsonrpc.py)
reaches, on random values and on valid messages with a few members broken. Messages the
protocol builds survive both codecs and parse back to themselves.

Short by default; ``ASPECT_IPC_FUZZ=long`` (``make fuzz``) runs many more examples.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspect_ipc import JsonCodec, MessagePackCodec
from aspect_ipc.jsonrpc import (
    ABSENT,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    Notification,
    Request,
    Response,
)
from vectors import same

settings.register_profile("fuzz-short", max_examples=60, deadline=None)
settings.register_profile(
    "fuzz-long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
fuzz = settings.get_profile(
    "fuzz-long" if os.environ.get("ASPECT_IPC_FUZZ") == "long" else "fuzz-short"
)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
MISSING = object()


def _is_id(value: Any) -> bool:
    """Spec 4.2: a string, or an integer in [-2**63, 2**64 - 1] (not a bool, not a float)."""
    return type(value) is str or (type(value) is int and INT_MIN <= value <= INT_MAX)


def expected(value: Any) -> tuple[Any, ...]:
    """The verdict of spec 4.2, step by step: (kind, id, ...)."""
    if not isinstance(value, dict):  # steps 1 and 2: a batch or not a map
        return ("invalid", None, True)
    raw_id = value.get("id", MISSING)
    extracted = raw_id if _is_id(raw_id) else None  # step 3
    if type(value.get("jsonrpc")) is not str or value["jsonrpc"] != "2.0":  # step 4
        a_response = "method" not in value and ("result" in value or "error" in value)
        return ("invalid", extracted, not a_response)
    if "method" in value:  # step 5
        if type(value["method"]) is not str or "result" in value or "error" in value:
            return ("invalid", extracted, True)
        if raw_id is not MISSING and not _is_id(raw_id):
            return ("invalid", None, True)
        params = value.get("params", MISSING)
        if params is not MISSING and type(params) not in (list, dict):
            return ("invalid", extracted, True)
        params = None if params is MISSING else params
        if raw_id is MISSING:
            return ("notification", None, value["method"], params)
        return ("request", raw_id, value["method"], params)
    if "result" in value or "error" in value:  # step 6: never answered when invalid
        bad = ("invalid", extracted, False)
        if raw_id is MISSING or (raw_id is not None and not _is_id(raw_id)):
            return bad
        if ("result" in value) == ("error" in value):
            return bad
        if "result" in value:
            return bad if raw_id is None else ("response", raw_id, value["result"])
        error = value["error"]
        if type(error) is not dict:
            return bad
        code, message = error.get("code"), error.get("message")
        # Integers on this protocol are 64-bit (3.2); a code beyond cannot cross MessagePack.
        if type(code) is not int or not INT_MIN <= code <= INT_MAX or type(message) is not str:
            return bad
        return ("error", raw_id, code, message, error.get("data", MISSING))
    return ("invalid", extracted, True)  # step 7


def verdict(message: Any) -> tuple[Any, ...]:
    """The library's verdict in the shape of :func:`expected`."""
    if isinstance(message, InvalidMessage):
        assert message.code == -32600 and message.reason.startswith("Invalid Request")
        return ("invalid", message.id, message.reply)
    if isinstance(message, Notification):
        return ("notification", None, message.method, message.params)
    if isinstance(message, Request):
        return ("request", message.id, message.method, message.params)
    if isinstance(message, Response):
        return ("response", message.id, message.result)
    assert isinstance(message, ErrorResponse)
    data = MISSING if message.data is ABSENT else message.data
    return ("error", message.id, message.code, message.message, data)


def agree(value: Any) -> None:
    got, want = verdict(JsonRpcProtocol.parse(value)), expected(value)
    assert len(got) == len(want) and all(
        (g is w) if w is MISSING else same(g, w) for g, w in zip(got, want, strict=True)
    ), f"{value!r}: library says {got!r}, spec 4.2 says {want!r}"


# Values that sit on the edges of the rules.
edges = st.sampled_from(
    [
        None, True, False, 0, 1, -1, 1.0, 1.5, -0.0, INT_MAX, INT_MAX + 1, INT_MIN, INT_MIN - 1,
        "", "2.0", "1.0", "2", "$/hello", "id", [], [1], {}, {"code": 1}, b"", b"2.0",
    ]
)  # fmt: skip
anything = st.recursive(
    edges | st.integers() | st.floats() | st.text(max_size=6) | st.binary(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
ids = st.integers(INT_MIN, INT_MAX) | st.text(max_size=8)
params = st.lists(anything, max_size=3) | st.dictionaries(st.text(max_size=6), anything, max_size=3)
errors = st.fixed_dictionaries(
    {"code": st.integers(INT_MIN, INT_MAX), "message": st.text(max_size=8)},
    optional={"data": anything},
)
valid_messages = st.one_of(
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": ids, "method": st.text(max_size=8)},
        optional={"params": params},
    ),
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": st.text(max_size=8)}, optional={"params": params}
    ),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": ids, "result": anything}),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": ids | st.none(), "error": errors}),
)
MEMBERS = ["jsonrpc", "id", "method", "params", "result", "error", "x-extra"]


@st.composite
def near_valid(draw: st.DrawFn) -> Any:
    message = dict(draw(valid_messages))
    for _ in range(draw(st.integers(1, 3))):
        member = draw(st.sampled_from(MEMBERS))
        if draw(st.booleans()) and member in message:
            del message[member]
        else:
            message[member] = draw(edges | anything)
    if "error" in message and isinstance(message["error"], dict) and draw(st.booleans()):
        error = dict(message["error"])
        error[draw(st.sampled_from(["code", "message", "data"]))] = draw(edges)
        message["error"] = error
    return message


@fuzz
@given(anything)
def test_any_value_gets_the_spec_verdict(value: Any) -> None:
    agree(value)


@fuzz
@given(near_valid())
def test_broken_messages_get_the_spec_verdict(message: Any) -> None:
    agree(message)


@fuzz
@given(valid_messages)
def test_valid_messages_get_the_spec_verdict(message: Any) -> None:
    assert expected(message)[0] != "invalid"
    agree(message)


json_params = st.lists(
    st.integers(INT_MIN, INT_MAX) | st.text(max_size=6) | st.none(), max_size=3
) | (
    st.dictionaries(
        st.text(max_size=6),
        st.booleans() | st.floats(allow_nan=False, allow_infinity=False),
        max_size=3,
    )
)


@fuzz
@given(
    st.text(max_size=10),
    json_params | st.none(),
    ids,
    st.sampled_from([JsonCodec(), MessagePackCodec()]),
)
def test_built_messages_cross_the_codecs_and_parse_back(
    method: str, call_params: Any, request_id: Any, codec: Any
) -> None:
    protocol = JsonRpcProtocol()
    request = protocol.request(method, call_params, id=request_id)
    parsed = JsonRpcProtocol.parse(codec.decode(codec.encode(request)))
    assert isinstance(parsed, Request)
    assert (parsed.id, parsed.method) == (request_id, method)
    assert same(parsed.params, call_params)
    note = JsonRpcProtocol.parse(codec.decode(codec.encode(protocol.notification(method))))
    assert note == Notification(method, None)
    response = protocol.response(request_id, call_params)
    assert JsonRpcProtocol.parse(codec.decode(codec.encode(response))) == Response(
        request_id, call_params
    )
    error = protocol.error_response(request_id, -32000, method, {"type": "X"})
    assert JsonRpcProtocol.parse(codec.decode(codec.encode(error))) == ErrorResponse(
        request_id, -32000, method, {"type": "X"}
    )
