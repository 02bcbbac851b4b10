"""Codec hooks (encode_hook, decode_hook) and CodecError naming the place (docs/codec-hooks.md).

The codecs are pure: most tests need no channel. The channel tests use a real socket pair, since
what they check is that a hook's large buffer reaches the socket uncopied, and run on asyncio and
trio.
"""

from __future__ import annotations

import datetime
import decimal
import math
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspect_ipc import (
    ChannelBuilder,
    CodecError,
    JsonCodec,
    MessagePackCodec,
    SocketTransport,
)
from aspect_ipc._codec_path import format_path
from aspect_ipc.channel import Channel

MIB = 1024 * 1024


# -- the numpy recipe (docs/codec-hooks.md), as a user writes it --------------------------------


def encode_ndarray(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                # The buffer in C order: the array's own when it is C-contiguous already.
                "data": np.ascontiguousarray(value).data,
            }
        }
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"no conversion for {type(value).__name__}")


def decode_ndarray(value: dict[str, Any]) -> Any:
    fields = value.get("__ndarray__")
    if len(value) == 1 and isinstance(fields, dict):
        return np.frombuffer(fields["data"], dtype=fields["dtype"]).reshape(fields["shape"])
    return value


def recipe() -> MessagePackCodec:
    return MessagePackCodec(encode_hook=encode_ndarray, decode_hook=decode_ndarray)


def request(params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "m", "params": params}


# -- CodecError names the place -------------------------------------------------------------------

CODECS = [JsonCodec, MessagePackCodec]


def test_a_path_is_jsonpath_from_the_message() -> None:
    assert format_path([]) == "$"
    assert format_path(["params", "rows", 3, "when"]) == "$.params.rows[3].when"
    assert format_path(["a b", "_x1", "1x", "é", 'q"']) == '$["a b"]._x1["1x"]["é"]["q\\""]'


@pytest.mark.parametrize(
    ("codec", "how"),
    [(JsonCodec, "encode"), (MessagePackCodec, "encode"), (MessagePackCodec, "encode_parts")],
)
def test_an_unencodable_value_names_its_place_its_type_and_the_conversion(
    codec: type[JsonCodec | MessagePackCodec], how: str
) -> None:
    rows: list[Any] = [{"when": 1}, {"when": 2}, {"when": 3}, {"when": datetime.datetime.now()}]
    encode = getattr(codec(), how)
    name = "JSON" if codec is JsonCodec else "MessagePack"
    with pytest.raises(CodecError) as info:
        encode(request({"rows": rows}))
    assert info.value.path == "$.params.rows[3].when"
    assert str(info.value) == (
        f"cannot encode datetime at $.params.rows[3].when as {name}: convert it first (a "
        f"datetime to an ISO string or a number) or pass an encode_hook to {codec.__name__}"
    )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"counts": {1: 2}}, "$.params.counts", "map key 1 at $.params.counts is int: keys must"),
        ({"n": [0, 2**64]}, "$.params.n[1]", "cannot encode integer 18446744073709551616 at"),
        ({"a b": {"t": {1}}}, '$.params["a b"].t', "convert it first (a set to a list)"),
        ({"d": decimal.Decimal(1)}, "$.params.d", "(a Decimal to a str)"),
        ({"a": np.zeros(3)}, "$.params.a", "numpy recipe in docs/codec-hooks.md"),
        # numpy's bool is named "bool": "cannot encode bool" read as if True were refused
        ({"f": np.bool_(True)}, "$.params.f", "cannot encode numpy.bool at $.params.f as"),
        ({"o": object()}, "$.params.o", "an object to a dict"),
        (None, "", None),
    ],
)
def test_every_refusal_names_its_place(
    codec: type[JsonCodec | MessagePackCodec], params: Any, path: str, message: str | None
) -> None:
    if message is None:  # depth: the first container below the 512th level
        params = {"deep": []}
        level = params["deep"]
        for _ in range(600):
            level.append([])
            level = level[0]
        path = "$.params.deep" + "[0]" * 510
        message = f"containers at {path} are nested deeper than 512 levels"
    with pytest.raises(CodecError) as info:
        codec().encode(request(params))
    assert info.value.path == path
    assert message in str(info.value)


def test_json_refusals_name_their_place() -> None:
    for params, path, text in [
        ({"b": [b"x"]}, "$.params.b[0]", "data channel"),
        ({"f": math.nan}, "$.params.f", "NaN"),
        ({"s": "\ud800"}, "$.params.s", "lone surrogate"),
    ]:
        with pytest.raises(CodecError, match=text) as info:
            JsonCodec().encode(request(params))
        assert info.value.path == path


def test_a_refusal_of_the_whole_message_has_the_root_path() -> None:
    with pytest.raises(CodecError) as info:
        MessagePackCodec().encode({1, 2})
    assert info.value.path == "$"
    assert str(info.value).startswith("cannot encode set as MessagePack")


def test_decoding_errors_have_no_path() -> None:
    with pytest.raises(CodecError) as info:
        MessagePackCodec().decode(b"\xc1")
    assert info.value.path is None


# -- encode hooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_an_encode_hook_converts_what_the_wire_cannot_carry(
    codec: type[JsonCodec | MessagePackCodec],
) -> None:
    when = datetime.datetime(2026, 11, 29, 1, 2, 3)
    seen: list[Any] = []

    def hook(value: Any) -> Any:
        seen.append(value)
        if isinstance(value, set):
            return sorted(value)
        if isinstance(value, frozenset):  # a value that needs the hook again
            return [set(value), when]
        return encode_ndarray(value)

    value = request({"when": when, "tags": {"b", "a"}, "both": frozenset({1}), "n": 1})
    encoded = codec(encode_hook=hook).encode(value)
    expected = request(
        {"when": when.isoformat(), "tags": ["a", "b"], "both": [[1], when.isoformat()], "n": 1}
    )
    assert encoded == codec().encode(expected)
    assert len(seen) == 5  # once per value the wire cannot carry, never for the others
    assert value["params"]["tags"] == {"b", "a"}  # the caller's value is not changed


@pytest.mark.parametrize("codec", CODECS)
def test_an_encode_hook_gets_a_map_whose_keys_are_not_all_strings(
    codec: type[JsonCodec | MessagePackCodec],
) -> None:
    # Node's hook gets such a map (a Map) and Go's (a map[int]T); Python's was never asked.
    def keys_to_text(value: Any) -> Any:
        return {str(key): item for key, item in value.items()}

    value = request({"counts": {1: "a", "b": {2: 3}}})
    encoded = codec(encode_hook=keys_to_text).encode(value)
    assert encoded == codec().encode(request({"counts": {"1": "a", "b": {"2": 3}}}))
    with pytest.raises(CodecError, match=r"map key 1 at \$\.params\.counts is int"):
        codec().encode(value)  # without a hook: refused, as before


def test_a_json_encode_hook_gets_the_binaries_json_cannot_carry() -> None:
    # JSON has no binary: bytes, bytearray and memoryview go to the hook like any value it
    # cannot carry, as in the Node and Go SDKs (they were refused without asking the hook).
    def to_hex(value: Any) -> Any:
        return {"$hex": bytes(value).hex()}

    value = {"b": b"\x00\xff", "a": [bytearray(b"x")], "m": memoryview(b"y")}
    assert JsonCodec(encode_hook=to_hex).encode(value) == JsonCodec().encode(
        {"b": {"$hex": "00ff"}, "a": [{"$hex": "78"}], "m": {"$hex": "79"}}
    )
    with pytest.raises(CodecError, match=r"bytes cannot be sent on a JSON channel at \$\.b"):
        JsonCodec().encode(value)  # without a hook: refused, as before
    with pytest.raises(CodecError, match=r"returned a value it cannot encode: bytes at \$\.b"):
        JsonCodec(encode_hook=lambda v: v).encode(value)  # a hook that gives bytes back


@pytest.mark.parametrize("codec", CODECS)
def test_what_an_encode_hook_returns_is_checked(codec: type[JsonCodec | MessagePackCodec]) -> None:
    cases: list[tuple[Any, str]] = [
        # A map with a key that is not a string goes to the hook again, which gives it back.
        ({1: "a"}, "cannot encode: dict at $.params.x[1] is still not a value the wire carries"),
        (2**64, "cannot encode integer 18446744073709551616 at $.params.x[1]"),
        (object(), "encode hook returned a value it cannot encode: object at $.params.x[1]"),
    ]
    for result, message in cases:
        encode = codec(encode_hook=lambda value, result=result: result).encode
        with pytest.raises(CodecError) as info:
            encode(request({"x": [1, {2}]}))
        assert message in str(info.value)
        assert info.value.path == "$.params.x[1]"


def test_an_encode_hook_that_never_converges_is_stopped() -> None:
    class Node:
        pass

    codec = MessagePackCodec(encode_hook=lambda value: [value])  # nests a Node forever
    with pytest.raises(CodecError, match="after 64 applications") as info:
        codec.encode(request({"n": Node()}))
    assert info.value.path == "$.params.n" + "[0]" * 64


@pytest.mark.parametrize("codec", CODECS)
def test_an_encode_hook_that_raises_names_the_place_and_its_error(
    codec: type[JsonCodec | MessagePackCodec],
) -> None:
    def hook(value: Any) -> Any:
        raise ValueError("not this one")

    with pytest.raises(CodecError) as info:
        codec(encode_hook=hook).encode(request({"rows": [{}, {"when": datetime.date.today()}]}))
    assert info.value.path == "$.params.rows[1].when"
    assert "encode hook failed on date at $.params.rows[1].when" in str(info.value)
    assert "ValueError: not this one" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_a_non_contiguous_buffer_from_a_hook_is_refused() -> None:
    codec = MessagePackCodec(encode_hook=lambda value: memoryview(np.arange(8.0))[::2])
    for encode in (codec.encode, codec.encode_parts):
        with pytest.raises(CodecError, match="not C-contiguous") as info:
            encode(request({"a": object()}))
        assert info.value.path == "$.params.a"


# -- the numpy recipe: large buffers uncopied ----------------------------------------------------


def test_a_large_array_from_the_hook_is_a_part_of_its_own_uncopied() -> None:
    array = np.arange(64 * 1024, dtype="<f8").reshape(256, 256)  # 512 KiB
    blob = bytes(70_000)
    value = request({"array": array, "blob": blob, "small": np.arange(3, dtype="<i4")})
    codec = recipe()
    parts = codec.encode_parts(value)
    assert [part for part in parts if isinstance(part, memoryview) and part.obj is array]
    assert any(part is blob for part in parts)
    joined = b"".join(bytes(part) for part in parts)
    assert joined == codec.encode(value)
    decoded = codec.decode(joined)
    assert (decoded["params"]["array"] == array).all()
    assert decoded["params"]["array"].shape == (256, 256)
    assert decoded["params"]["small"].dtype == np.dtype("<i4")


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4).T,  # not contiguous: copied by the hook, then sent
        np.array(2.5),  # 0-d
        np.zeros((0, 4)),
        np.arange(6, dtype=">i2"),  # byte order kept in the dtype
        np.ones((300, 300), dtype=np.float32)[::2],
    ],
)
def test_the_recipe_round_trips_arrays(array: np.ndarray[Any, Any]) -> None:
    codec = recipe()
    value = request([array])
    for encoded in (codec.encode(value), b"".join(map(bytes, codec.encode_parts(value)))):
        out = codec.decode(encoded)["params"][0]
        assert out.dtype == array.dtype and out.shape == array.shape
        assert (out == array).all()


blobs = st.sampled_from(["small", "large", "hook-small", "hook-large"])
shapes = st.recursive(
    blobs | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


class Big:
    """Stands in for an application type the hook turns into a buffer."""

    def __init__(self, size: int, seed: int) -> None:
        self.array = np.full(size, seed % 251, dtype=np.uint8)


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_parts_are_the_encoding_whatever_the_mix_of_binaries(shape: Any) -> None:
    """Large bytes in the value and large buffers from the hook, in any order: the parts join to
    the bytes of encode(), and decode to the same value."""
    seeds = iter(range(1, 10_000))

    def build(node: Any) -> Any:
        if node == "small":
            return bytes([next(seeds) % 251]) * 10
        if node == "large":
            return bytes([next(seeds) % 251]) * 70_000
        if node in ("hook-small", "hook-large"):
            return Big(10 if node == "hook-small" else 70_000, next(seeds))
        if isinstance(node, list):
            return [build(v) for v in node]
        if isinstance(node, dict):
            return {k: build(v) for k, v in node.items()}
        return node

    def plain(node: Any) -> Any:
        if isinstance(node, Big):
            return node.array.tobytes()
        if isinstance(node, list):
            return [plain(v) for v in node]
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        return node

    value = build(shape)
    codec = MessagePackCodec(encode_hook=lambda big: memoryview(big.array))
    parts = codec.encode_parts(value)
    joined = b"".join(bytes(part) for part in parts)
    assert joined == codec.encode(value) == MessagePackCodec().encode(plain(value))
    assert sum(map(len, parts)) == len(joined)  # every part's len() is its size in bytes


wire_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(wire_values)
def test_a_hook_is_never_called_for_values_the_wire_carries(value: Any) -> None:
    def hook(value: Any) -> Any:
        raise AssertionError(f"hook called with {value!r}")

    for codec in CODECS:
        assert codec(encode_hook=hook).encode(value) == codec().encode(value)


@settings(max_examples=100, deadline=None)
@given(wire_values, st.data())
def test_the_path_leads_to_the_refused_value(value: Any, data: st.DataObject) -> None:
    """Put a set somewhere in a value: the error's path, followed from the top, reaches it."""
    marker = {"refused"}
    holders = [value] if isinstance(value, (list, dict)) else []
    for holder in holders:  # every container, growing the list while going through it
        children = holder.values() if isinstance(holder, dict) else holder
        holders.extend(child for child in children if isinstance(child, (list, dict)))
    if holders:
        holder = data.draw(st.sampled_from(holders))
        if isinstance(holder, dict):
            holder[data.draw(st.text(max_size=4))] = marker
        else:
            holder.append(marker)
    else:
        value = [value, marker]
    for codec in CODECS:
        with pytest.raises(CodecError) as info:
            codec().encode(value)
        assert info.value.path is not None
        assert _at(value, info.value.path) is marker


def _at(value: Any, path: str) -> Any:
    """The value at ``path``: the one place in ``value`` whose steps format_path writes so."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        steps, node = stack.pop()
        if format_path(steps) == path:
            return node
        if isinstance(node, (dict, list)):
            children = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(((*steps, key), child) for key, child in children)
    raise AssertionError(f"{path} leads nowhere in {value!r}")


# -- decode hooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_a_decode_hook_sees_every_map_innermost_first(
    codec: type[JsonCodec | MessagePackCodec],
) -> None:
    seen: list[list[str]] = []

    def hook(value: dict[str, Any]) -> Any:
        seen.append(sorted(value))
        if "x" in value:
            return ("point", value["x"])
        return value

    encoded = codec().encode(request({"a": [{"x": 1}, {"b": {"x": 2}}], "c": 3}))
    decoded = codec(decode_hook=hook).decode(encoded)
    assert decoded == request({"a": [("point", 1), {"b": ("point", 2)}], "c": 3})
    assert seen[-1] == ["id", "jsonrpc", "method", "params"]  # the message itself, last
    assert seen.index(["x"]) < seen.index(["b"]) < seen.index(["a", "c"])


@pytest.mark.parametrize("codec", CODECS)
def test_a_decode_hook_that_raises_names_the_map(
    codec: type[JsonCodec | MessagePackCodec],
) -> None:
    def hook(value: dict[str, Any]) -> Any:
        if "bad" in value:
            raise KeyError("bad")
        return value

    encoded = codec().encode(request({"rows": [{}, {"bad": 1}]}))
    with pytest.raises(CodecError) as info:
        codec(decode_hook=hook).decode(encoded)
    assert info.value.path == "$.params.rows[1]"
    assert "decode hook failed on the map at $.params.rows[1]" in str(info.value)


def test_a_decode_hook_failing_in_a_row_of_records_names_the_row() -> None:
    def hook(value: dict[str, Any]) -> Any:
        if value.get("id") == 2:
            raise ValueError("row 2")
        return value

    rows = [{"id": n, "value": n / 2} for n in range(5)]
    encoded = MessagePackCodec().encode(request({"items": rows}))
    with pytest.raises(CodecError) as info:
        MessagePackCodec(decode_hook=hook).decode(encoded)
    assert info.value.path == "$.params.items[2]"


@settings(max_examples=100, deadline=None)
@given(wire_values)
def test_a_decode_hook_does_what_a_recursive_object_hook_does(value: Any) -> None:
    def hook(value: dict[str, Any]) -> Any:
        return ("map", sorted(value.items()))

    def reference(value: Any) -> Any:
        if isinstance(value, dict):
            return hook({key: reference(item) for key, item in value.items()})
        if isinstance(value, list):
            return [reference(item) for item in value]
        return value

    for codec in CODECS:
        encoded = codec().encode(request(value))
        expected = reference(codec().decode(encoded))
        assert codec(decode_hook=hook).decode(encoded) == expected


def test_a_decode_hook_gets_only_checked_maps() -> None:
    """A frame the codec refuses never reaches the hook (bin keys here)."""

    def hook(value: dict[str, Any]) -> Any:
        raise AssertionError("called")

    with pytest.raises(CodecError, match="map keys must be strings"):
        MessagePackCodec(decode_hook=hook).decode(b"\x81\xc4\x01k\x01")


# -- through a channel ----------------------------------------------------------------------------


class RecordingTransport(SocketTransport):
    """A socket transport that keeps the buffers it was asked to write."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, name="recording")
        self.parts: list[bytes | bytearray | memoryview] = []

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        self.parts.extend(parts)
        await super().send_all(parts)


@asynccontextmanager
async def recipe_pair() -> AsyncIterator[tuple[Channel, Channel, RecordingTransport]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    recording = RecordingTransport(a)
    left = ChannelBuilder().with_transport(recording).with_codec(recipe()).build()
    right = ChannelBuilder().with_transport(SocketTransport(b)).with_codec(recipe()).build()
    async with left, right:
        yield left, right, recording


@pytest.mark.anyio
async def test_an_array_crosses_a_channel_and_its_buffer_is_written_uncopied() -> None:
    array = np.random.default_rng(1).standard_normal((512, 512))  # 2 MiB
    async with recipe_pair() as (left, right, recording):
        right.on_request("stats", lambda p: {"sum": float(p["a"].sum()), "back": p["a"]})
        result = await left.request("stats", {"a": array})
        assert result["sum"] == float(array.sum())
        assert (result["back"] == array).all() and result["back"].shape == (512, 512)
        assert [p for p in recording.parts if isinstance(p, memoryview) and p.obj is array]


@pytest.mark.anyio
async def test_a_request_that_cannot_be_encoded_is_not_sent() -> None:
    async with recipe_pair() as (left, right, recording):
        right.on_request("echo", lambda p: p)
        with pytest.raises(CodecError) as info:
            await left.request("echo", {"rows": [{}, {"x": {1, 2}}]})
        assert info.value.path == "$.params.rows[1].x"
        assert "TypeError: no conversion for set" in str(info.value)
        assert recording.parts == []
        assert await left.request("echo", {"ok": [1]}) == {"ok": [1]}
