"""Fuzzing id recovery (spec 4.8): on any bytes it returns an id or None and never raises; on a
request made undecodable only inside its params it finds the request's id, in both codecs.

Short by default; ``ASPECT_IPC_FUZZ=long`` (``make fuzz``) runs many more examples.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, JsonCodec, MessagePackCodec
from aspect_ipc.recovery import recover_answer_id_from_head, recover_id

settings.register_profile("recovery-short", max_examples=80, deadline=None)
settings.register_profile(
    "recovery-long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
fuzz = settings.get_profile(
    "recovery-long" if os.environ.get("ASPECT_IPC_FUZZ") == "long" else "recovery-short"
)

ids = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=6))
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@fuzz
@given(st.binary(max_size=200), st.sampled_from(["json", "msgpack"]))
def test_any_bytes_give_an_id_or_none(data: bytes, codec: str) -> None:
    found = recover_id(codec, data)
    assert found is None or type(found) in (int, str)


@fuzz
@given(ids, values, st.sampled_from(["json", "msgpack"]), st.booleans())
def test_a_request_broken_inside_its_params_is_recovered(
    request_id: Any, params: Any, codec: str, id_first: bool
) -> None:
    members: dict[str, Any] = {"jsonrpc": "2.0", "method": "m"}
    if id_first:
        members = {"id": request_id, **members, "params": [params, "POISON"]}
    else:
        members = {**members, "params": [params, "POISON"], "id": request_id}
    if codec == "json":
        text = JsonCodec().encode(members)
        data = text.replace(b'"POISON"', b'"\\ud800"')  # a lone surrogate: a codec error
    else:
        packed = MessagePackCodec().encode(members)
        data = packed.replace(b"\xa6POISON", b"\xd4\x05\x01", 1)  # an ext type: a codec error
    try:
        (JsonCodec() if codec == "json" else MessagePackCodec()).decode(data)
    except CodecError:
        assert recover_id(codec, data) == request_id
    else:
        raise AssertionError("the poisoned message decoded")


@fuzz
@given(ids, values, st.sampled_from(["result", "error"]), st.booleans(), st.data())
def test_the_head_of_an_answer_over_the_limit_names_its_request_or_nothing(
    request_id: Any, value: Any, kind: str, id_first: bool, data: st.DataObject
) -> None:
    # Spec 4.9: an answer's line over the limit is skipped; from its first bytes the receiver
    # fails the request it answered. Cut anywhere, the head gives that id or None: never the id
    # of another request (digits cut short), never one read from inside the result.
    member = value if kind == "result" else {"code": -32000, "message": "m", "data": value}
    pairs = [("id", request_id), (kind, member)]
    answer = dict([("jsonrpc", "2.0"), *(pairs if id_first else pairs[::-1])])
    line = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
    cut = data.draw(st.integers(0, len(line)))
    found = recover_answer_id_from_head(line[:cut])
    assert found is None or (found == request_id and type(found) is type(request_id))
    # Once the head holds both members' names and the id whole (a byte after it), it is found.
    rest = json.dumps(member, separators=(",", ":"), ensure_ascii=False).encode()
    shown = len(line) - len(rest) if id_first else len(line) - 1
    if cut > shown:
        assert found == request_id


@fuzz
@given(st.binary(max_size=200))
def test_any_head_gives_an_id_or_none(data: bytes) -> None:
    found = recover_answer_id_from_head(data)
    assert found is None or type(found) in (int, str)
