"""Fuzzing the codecs: near-valid MessagePack and JSON, and every value they may meet.

Decoding any bytes gives a value of the data model (spec 3) or a :class:`CodecError`; encoding any
value gives bytes or a :class:`CodecError` (never another exception: a channel turns only our
errors into -32700 / -32603, anything else would tear it down); what decodes re-encodes to the
same value. Test_core_properties covers random bytes and the MessagePack round trip of clean
values; here the inputs are structured so that they get deep into the decoders.

Short by default; ``ASPECT_IPC_FUZZ=long`` (``make fuzz``) runs many more examples.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, JsonCodec, MessagePackCodec
from vectors import same

settings.register_profile("fuzz-short", max_examples=60, deadline=None)
settings.register_profile(
    "fuzz-long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
fuzz = settings.get_profile(
    "fuzz-long" if os.environ.get("ASPECT_IPC_FUZZ") == "long" else "fuzz-short"
)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1

# Strings with lone surrogates too: Python can hold them, UTF-8 cannot.
any_text = st.text(st.characters(codec=None), max_size=12) | st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.integers()  # beyond 64 bits: refused by MessagePack, legal JSON
    | st.floats()  # NaN and the infinities included
    | any_text
)
values = st.recursive(
    scalars | st.binary(max_size=16),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(any_text, children, max_size=4)
        | st.dictionaries(st.integers(-2, 2) | st.binary(max_size=2), children, max_size=2)
    ),
    max_leaves=16,
)


def in_data_model(value: Any, *, binary: bool) -> bool:
    """Whether ``value`` is a value of spec 3's data model as decoded by Python."""
    kind = type(value)
    if value is None or kind in (bool, str, float):
        return kind is not str or _utf8(value)
    if kind is int:
        return INT_MIN <= value <= INT_MAX or not binary  # JSON has no integer range
    if kind is bytes:
        return binary
    if kind is list:
        return all(in_data_model(v, binary=binary) for v in value)
    if kind is dict:
        return all(
            type(k) is str and _utf8(k) and in_data_model(v, binary=binary)
            for k, v in value.items()
        )
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encode_or_codec_error(codec: Any, value: Any) -> bytes | None:
    try:
        encoded: bytes = codec.encode(value)
    except CodecError:
        return None
    return encoded


def _decode_or_codec_error(codec: Any, data: bytes) -> tuple[bool, Any]:
    try:
        return True, codec.decode(data)
    except CodecError:
        return False, None


@st.composite
def mutated(draw: st.DrawFn, data: bytes, markers: list[bytes]) -> bytes:
    """``data`` with a few mutations: bit flips, cuts, and interesting bytes spliced in."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["flip", "splice", "delete", "truncate", "append"]))
        if op == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "splice":
            out[at:at] = draw(st.sampled_from(markers))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 3))]
        elif op == "truncate":
            del out[at:]
        else:
            out += draw(st.binary(min_size=1, max_size=4))
    return bytes(out)


# -- MessagePack --------------------------------------------------------------------------------

MSGPACK_MARKERS = [
    b"\xc1",  # never used
    b"\xc0",
    b"\xc4\xff",  # bin 8 declaring 255 bytes
    b"\xc6\xff\xff\xff\xff",  # bin 32 declaring 4 GiB
    b"\xdb\xff\xff\xff\xff",  # str 32 declaring 4 GiB
    b"\xdd\xff\xff\xff\xff",  # array 32 declaring 4 Gi elements
    b"\xdf\xff\xff\xff\xff",  # map 32 declaring 4 Gi pairs
    b"\xd4\x01\x00",  # fixext 1
    b"\xd6\xff\x00\x00\x00\x00",  # timestamp 32
    b"\xc7\x0c\xff" + b"\x00" * 12,  # timestamp 96
    b"\x81\x01\x02",  # a map with an int key
    b"\x81\xc4\x01k\xc0",  # a map with a bin key
    b"\xa2\xff\xfe",  # a str that is not UTF-8
    b"\xa3\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"\xca\x7f\xc0\x00\x00",  # float 32 NaN
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # uint 64 max
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # int 64 min
    b"\x91" * 40,
]
valid_msgpack = values.map(
    lambda v: msgpack.packb(v, use_bin_type=True, strict_types=False) if _packable(v) else b"\xc0"
)


def _packable(value: Any) -> bool:
    try:
        msgpack.packb(value, use_bin_type=True)
    except Exception:
        return False
    return True


@fuzz
@given(st.data())
def test_msgpack_decodes_near_valid_frames_to_the_data_model(data: st.DataObject) -> None:
    frame = data.draw(valid_msgpack.flatmap(lambda b: mutated(b, MSGPACK_MARKERS)))
    codec = MessagePackCodec()
    ok, value = _decode_or_codec_error(codec, frame)
    if not ok:
        return
    assert in_data_model(value, binary=True), value
    again = codec.encode(value)  # a decoded value always encodes
    assert same(codec.decode(again), value)


@fuzz
@given(values)
def test_msgpack_encodes_any_value_or_refuses_it(value: Any) -> None:
    codec = MessagePackCodec()
    encoded = _encode_or_codec_error(codec, value)
    if encoded is None:
        assert not in_data_model(_as_list(value), binary=True)
        return
    assert same(codec.decode(encoded), _normalized(value))


def _as_list(value: Any) -> Any:
    """Tuples travel as arrays; nothing else changes."""
    if isinstance(value, (list, tuple)):
        return [_as_list(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_list(v) for k, v in value.items()}
    return value


def _normalized(value: Any) -> Any:
    return _as_list(value)


# -- JSON ---------------------------------------------------------------------------------------

JSON_MARKERS = [
    b"\\ud800",  # a lone high surrogate escape
    b"\\udfff",
    b'"\\ud83d\\ude00"',
    b"1" * 4400,  # more digits than Python converts by default (4300)
    b"-" + b"9" * 5000,
    b"1e400",  # beyond float64
    b"-0",
    b"NaN",
    b"Infinity",
    b"\xff",
    b"\xed\xa0\x80",  # a surrogate encoded in UTF-8
    b"\x00",
    b"[" * 3000,
    b"{",
    b'"',
    b",",
    b":",
    b" \t\r\n",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)
valid_json = json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode())


@fuzz
@given(st.data())
def test_json_decodes_near_valid_text_to_the_data_model(data: st.DataObject) -> None:
    text = data.draw(valid_json.flatmap(lambda b: mutated(b, JSON_MARKERS)))
    codec = JsonCodec()
    ok, value = _decode_or_codec_error(codec, text)
    if not ok:
        return
    again = _encode_or_codec_error(codec, value)  # never anything but a CodecError
    if again is not None:
        assert same(codec.decode(again), value)


@fuzz
@given(values)
def test_json_encodes_any_value_or_refuses_it(value: Any) -> None:
    codec = JsonCodec()
    encoded = _encode_or_codec_error(codec, value)
    if encoded is None:
        return
    decoded = codec.decode(encoded)
    assert b"\n" not in encoded and same(decoded, _normalized(value))
    assert not _has(value, lambda v: isinstance(v, bytes) or _non_finite(v))


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _has(value: Any, predicate: Any) -> bool:
    if predicate(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has(v, predicate) for v in value)
    if isinstance(value, dict):
        return any(_has(v, predicate) for v in value.values())
    return False


# -- the crashes found, minimal --------------------------------------------------------------


def test_json_decode_of_a_4301_digit_integer_gives_only_a_codec_error() -> None:
    """Python refuses int("1" * 4301) with ValueError (sys.int_max_str_digits): such a number
    on a worker's stdout escaped JsonCodec.decode and tore the parent's manager down."""
    line = b'{"jsonrpc":"2.0","method":"n","params":[' + b"1" * 4301 + b"]}"
    ok, value = _decode_or_codec_error(JsonCodec(), line)
    assert not ok or value["params"][0] > 10**4300


def test_json_lone_surrogates_give_only_codec_errors() -> None:
    """JSON may escape a lone surrogate ("\\ud800"), which no UTF-8 text can carry: decoding
    it, or encoding such a str (an echo handler), gives a value or a CodecError, and an
    encoding that succeeds is valid UTF-8."""
    codec = JsonCodec()
    ok, value = _decode_or_codec_error(codec, b'["\\ud800", "\\udcff"]')
    for bad in ([value] if ok else []) + [["\ud800"], {"\udcff": 1}]:
        encoded = _encode_or_codec_error(codec, bad)
        if encoded is not None:
            encoded.decode("utf-8")


def test_json_decodes_whatever_json_encodes() -> None:
    """Found by test_json_encodes_any_value_or_refuses_it: JsonCodec.encode wrote integers
    outside [-2**63, 2**64 - 1] that JsonCodec.decode refuses, so one side could send what the
    other must reject. Either the sender refuses them (spec 3.2: on the sending side) or the
    receiver takes them."""
    codec = JsonCodec()
    for value in (2**64, -(2**63) - 1, 10**30, [{"n": -(10**25)}], 2**64 - 1, -(2**63)):
        encoded = _encode_or_codec_error(codec, value)
        assert encoded is None or same(codec.decode(encoded), value), value


def test_a_refused_msgpack_frame_says_why() -> None:
    """msgpack's own errors may have an empty message (nesting too deep): the CodecError must
    still say what went wrong, not "frame is not valid MessagePack:  (...)"."""
    for frame in (b"\x91" * 5000 + b"\xc0", b"\xc1", b"\x92\x01"):
        try:
            MessagePackCodec().decode(frame)
        except CodecError as exc:
            detail = str(exc).split("MessagePack", 1)[1]
            assert not detail.startswith(":  ("), str(exc)
        else:
            raise AssertionError(f"{frame[:4].hex()}... decoded")
