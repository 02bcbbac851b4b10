"""A frame's large binary is received straight into the ``bytes`` it decodes to (issue 19).

With ``split_binaries()``, the length-prefixed decoder receives a large MessagePack ``bin`` near
the start of a frame into a ``bytes`` object of its own and returns a split frame (the other
bytes, a placeholder in the binary's place); the MessagePack codec decodes it to the same value
as the whole frame, with that very ``bytes`` inside: one copy of a 16 MiB binary, not two. These
tests check that the values are the same as from whole frames whatever the cuts, that nothing a
caller holds is ever written again, and that the checks and hooks see what they saw before.
"""

from __future__ import annotations

import os
import socket
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspect_ipc import ChannelBuilder, CodecError, JsonCodec, MessagePackCodec, SocketTransport
from aspect_ipc import _framing_split as split_module
from aspect_ipc._framing_split import SplitFrame, new_bytes
from aspect_ipc.channel import Channel
from aspect_ipc.codecs import decodes_split_frames
from aspect_ipc.errors import FramingError
from aspect_ipc.framing import LengthPrefixedDecoder

MiB = 1024 * 1024
pytestmark = pytest.mark.skipif(new_bytes is None, reason="split frames need CPython's C API")


def _frame(value: Any) -> bytes:
    payload = msgpack.packb(value, use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


def _decoder(max_frame_size: int = 64 * MiB) -> LengthPrefixedDecoder:
    decoder = LengthPrefixedDecoder(max_frame_size)
    assert decoder.split_binaries()
    return decoder


def _receive(decoder: LengthPrefixedDecoder, data: bytes, cuts: list[int], fed: list[bool]) -> list:
    """Give ``data`` to the decoder in pieces, received in place or fed, as a channel does."""
    frames, offset, turn = [], 0, 0
    while True:
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
        if offset == len(data):
            return frames
        size = max(1, cuts[turn % len(cuts)] if cuts else len(data))
        space = decoder.writable() if fed[turn % len(fed)] else None
        turn += 1
        if space is not None:
            with space:
                count = min(size, len(space), len(data) - offset)
                space[:count] = data[offset : offset + count]
            decoder.wrote(count)
        else:
            count = min(size, len(data) - offset)
            decoder.feed(data[offset : offset + count])
        offset += count


def _response(blob: bytes, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": [blob]}


def test_a_large_binary_is_decoded_into_the_bytes_it_was_received_into() -> None:
    blob = os.urandom(3 * MiB)
    data = _frame(_response(blob))
    [frame] = _receive(_decoder(), data, [256 * 1024], [True])
    assert type(frame) is SplitFrame
    assert len(frame) == len(data) - 4  # the frame's size on the wire
    assert frame.whole() == data[4:]
    value = MessagePackCodec().decode(frame)
    assert value == _response(blob)
    assert value["result"][0] is frame.blob and type(frame.blob) is bytes  # no copy made


def test_a_decoded_binary_stays_intact_after_the_next_large_frames_arrive() -> None:
    decoder, codec = _decoder(), MessagePackCodec()
    blobs = [os.urandom(2 * MiB) for _ in range(3)]
    values = []
    for number, blob in enumerate(blobs):
        [frame] = _receive(decoder, _frame(_response(blob, number)), [100_000, 7], [True, False])
        values.append(codec.decode(frame))
    for number, blob in enumerate(blobs):
        assert values[number] == _response(blob, number)


def test_receiving_a_large_binary_holds_one_copy_of_it() -> None:
    # While a frame is received and decoded, the caller still holds the previous value: two
    # copies of the binary at the peak (three when the frame's buffer and its decoded bytes were
    # two copies of the new one).
    payload = os.urandom(4 * MiB)
    data = _frame(_response(payload))
    decoder, codec = _decoder(), MessagePackCodec()
    value: Any = None
    tracemalloc.start()
    try:
        for _ in range(4):
            [frame] = _receive(decoder, data, [256 * 1024], [True])
            value = codec.decode(frame)
            del frame
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value == _response(payload)
    assert peak < 2.5 * len(payload), f"{peak / len(payload):.2f} payloads at the peak"


def test_the_heap_is_trimmed_when_binaries_move_to_a_new_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # glibc only; elsewhere there is nothing to trim. Binaries that take turns in two places
    # trim nothing; one in a third place trims now and for the next two binaries, at most one
    # such series a second.
    places = iter([100, 200, 105, 200, 300, 100, 300, 100, 400, 100])  # 105: shifted, not new
    trims: list[int] = []

    def fake_new_bytes(size: int) -> tuple[bytes, memoryview, int]:
        return bytes(size), memoryview(bytearray(size)), next(places)

    monkeypatch.setattr(split_module, "new_bytes", fake_new_bytes)
    monkeypatch.setattr(split_module, "_trim", lambda: trims.append(len(seen)))
    monkeypatch.setattr(split_module, "_trims", [-10.0, 0])
    splitter, seen = split_module.Splitter(), []
    for number in range(10):
        seen.append(number)
        splitter.start(b"", 10, 15)
    assert trims == [5, 6, 7]  # from the binary in place 3; place 4 came within the second


large = st.integers(min_value=64 * 1024, max_value=300_000).map(os.urandom)
small = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=20),
    st.binary(max_size=100),
    st.none(),
)
messages = st.one_of(
    st.builds(_response, large),
    st.builds(
        lambda b, s: {"jsonrpc": "2.0", "method": "m", "params": {"s": s, "b": b}}, large, small
    ),
    st.builds(lambda b, s: [s, [b, s], s], large, small),  # the binary nested, things after it
    st.builds(lambda b: b, large),  # the frame is the binary
    st.builds(lambda b, c: [b, c], large, large),  # a second large binary after it
    st.builds(lambda s: {"small": s, "pad": "x" * 70_000}, small),  # large, no binary
    st.builds(lambda s: [s], small),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(messages, min_size=1, max_size=4),
    st.lists(st.integers(min_value=0, max_value=200_000), max_size=20),
    st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_split_frames_decode_to_the_values_of_whole_frames(
    values: list[Any], cuts: list[int], fed: list[bool]
) -> None:
    data = b"".join(_frame(value) for value in values)
    frames = _receive(_decoder(), data, cuts, fed)
    codec = MessagePackCodec()
    assert [codec.decode(frame) for frame in frames] == values
    whole = [frame.whole() if type(frame) is SplitFrame else bytes(frame) for frame in frames]
    assert whole == [_frame(value)[4:] for value in values]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({os.urandom(70_000): 1}, "map keys must be strings"),  # the binary as a map key
        ([msgpack.ExtType(0, os.urandom(16)), os.urandom(70_000)], "ext type 0"),  # forged
        ([msgpack.ExtType(5, b"x"), os.urandom(70_000)], "ext type 5"),
        ([msgpack.Timestamp(1), os.urandom(70_000)], "ext type -1"),
    ],
)
def test_a_split_frame_is_refused_where_the_whole_frame_is(value: Any, reason: str) -> None:
    data = _frame(value)
    [frame] = _receive(_decoder(), data, [1000], [True])
    assert type(frame) is SplitFrame
    with pytest.raises(CodecError, match=reason):
        MessagePackCodec().decode(frame)
    with pytest.raises(CodecError, match=reason):
        MessagePackCodec().decode(data[4:])


def test_a_split_frame_cut_short_is_truncated_not_returned() -> None:
    decoder = _decoder()
    decoder.feed(_frame(_response(os.urandom(MiB)))[: MiB // 2])
    assert decoder.next_frame() is None
    assert decoder.writable() is not None  # received into the binary's bytes from here on
    decoder.feed_eof()
    with pytest.raises(FramingError, match="ended inside a frame payload"):
        decoder.next_frame()


def test_a_huge_binary_is_not_allocated_before_a_quarter_of_its_frame_arrived() -> None:
    decoder = _decoder(max_frame_size=1 << 30)
    head = msgpack.packb({"jsonrpc": "2.0", "id": 1, "result": []})[:-1]
    start = head + b"\x91\xc6" + ((1 << 30) - len(head) - 6).to_bytes(4, "big")
    decoder.feed((1 << 30).to_bytes(4, "big") + start + b"x" * 1000)
    assert decoder.next_frame() is None
    assert decoder.writable() is None


def test_only_a_codec_that_decodes_split_frames_gets_them() -> None:
    class Custom(MessagePackCodec):
        def decode(self, data: Any) -> Any:
            return msgpack.unpackb(data)

    assert decodes_split_frames(MessagePackCodec())
    assert not decodes_split_frames(Custom())
    assert not decodes_split_frames(JsonCodec())


def _channel(sock: socket.socket, name: str, codec: Any = None) -> Channel:
    builder = ChannelBuilder().with_transport(SocketTransport(sock)).with_options(name=name)
    return (builder.with_codec(codec) if codec is not None else builder).build()


@asynccontextmanager
async def socket_pair(codec: Any = None) -> AsyncIterator[tuple[Channel, Channel]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with _channel(a, "left", codec) as left, _channel(b, "right", codec) as right:
        yield left, right


@pytest.mark.anyio
async def test_large_answers_stay_intact_while_later_ones_arrive() -> None:
    sizes = [16 * MiB, 65_536, 3 * MiB, 16 * MiB, 100_000, 17]
    async with socket_pair() as (left, right):
        right.on_request("echo", lambda params: params)
        answers = []
        for size in sizes:
            payload = os.urandom(size)
            answer = await left.request("echo", [payload, {"after": size}])
            assert type(answer[0]) is bytes
            answers.append((payload, answer))
        for payload, answer in answers:
            assert answer == [payload, {"after": len(payload)}]


@pytest.mark.anyio
async def test_a_subclass_that_decodes_its_own_way_gets_whole_frames() -> None:
    seen: list[bytes] = []

    class Counting(MessagePackCodec):
        def decode(self, data: Any) -> Any:
            seen.append(bytes(data))
            return super().decode(data)

    payload = os.urandom(MiB)
    async with socket_pair(Counting()) as (left, right):
        right.on_request("echo", lambda params: params)
        assert await left.request("echo", [payload]) == [payload]
    assert any(payload in frame for frame in seen)


@pytest.mark.anyio
async def test_a_bad_input_hook_sees_the_frame_as_it_was_sent() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    seen: list[bytes] = []

    def hook(frame: Any, error: Any) -> bool:
        seen.append(bytes(frame))
        return True

    bad = _frame({"jsonrpc": "2.0", "nonsense": [os.urandom(MiB)]})  # not JSON-RPC
    undecodable = _frame([os.urandom(MiB), msgpack.ExtType(3, b"x")])
    async with _channel(a, "reader") as channel:
        channel.bad_input_hook = hook
        with b:
            b.setblocking(False)
            await anyio.wait_writable(b)
            for data in (bad, undecodable):
                view = memoryview(data)
                while view:
                    try:
                        view = view[b.send(view) :]
                    except BlockingIOError:
                        await anyio.wait_writable(b)
            with anyio.fail_after(10):
                while len(seen) < 2:
                    await anyio.sleep(0.01)
    assert seen == [bad[4:], undecodable[4:]]
