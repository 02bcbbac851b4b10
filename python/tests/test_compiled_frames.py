"""The compiled core's frame functions give what the Python path gives (spec 2, 3.2, 4.2).

A data channel asks the core for two things beyond packing and unpacking values:

- ``pack_frame(limit, message)``: the whole frame of a plain message, its 4-byte length first,
  where the Python path packs the message and puts the framing's header before it;
- ``take_answers(...)``: the successful responses at the front of the receive buffer, cut,
  decoded and classified in one call, where the Python path cuts each frame, decodes it and
  classifies the value; it stops at the first frame that is anything else, and hands back that
  frame's value when it decoded it.

Both are held here to the Python path frame by frame, on random messages and random streams of
frames, malformed ones included.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, FramingError, MessagePackCodec
from aspect_ipc.framing import LengthPrefixedDecoder, LengthPrefixedFraming
from aspect_ipc.jsonrpc import JsonRpcProtocol, Response
from compiled_kit import plain_values, python_path, same

aspect_ipc_core = pytest.importorskip(
    "aspect_ipc_core", reason="the compiled core (python/core) is not installed"
)
codec = MessagePackCodec()
DECLINED = object()
LIMIT = 64 * 1024  # what a channel's reader passes: larger frames are assembled on their own


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


@settings(max_examples=300, deadline=None)
@given(plain_values, st.integers(1, 2000))
def test_a_plain_message_is_framed_as_the_python_path_frames_it(value: Any, limit: int) -> None:
    framing = LengthPrefixedFraming(limit)
    with python_path():
        try:
            expected: Any = framing.encode(codec.encode(value))
        except FramingError:
            expected = None  # too large for the limit: the Python path raises, naming it
    assert aspect_ipc_core.pack_frame(limit, value) == expected


def test_what_pack_declines_pack_frame_declines_too() -> None:
    for value in ({1: "int key"}, [bytearray(b"x")], "\ud800", 2**64, bytes(64 * 1024)):
        assert aspect_ipc_core.pack(value) is None
        assert aspect_ipc_core.pack_frame(1 << 30, value) is None


ids = st.integers(-(2**63), 2**64 - 1) | st.text(max_size=12)
answers = st.builds(
    lambda i, r, order: {k: {"jsonrpc": "2.0", "id": i, "result": r}[k] for k in order},
    ids,
    plain_values,
    st.permutations(["jsonrpc", "id", "result"]),
).map(lambda m: msgpack.packb(m, use_bin_type=True))
others = st.sampled_from(
    [
        {"jsonrpc": "2.0", "method": "tick", "params": [1]},  # a notification
        {"jsonrpc": "2.0", "id": 7, "method": "echo", "params": {}},  # a request
        {"jsonrpc": "2.0", "id": 7, "error": {"code": -32000, "message": "no"}},
        {"jsonrpc": "2.0", "id": None, "result": 1},  # null id: invalid
        {"jsonrpc": "2.0", "id": 1.5, "result": 1},  # float id: invalid
        {"jsonrpc": "2.0", "id": True, "result": 1},  # bool id: invalid
        {"jsonrpc": "1.0", "id": 1, "result": 1},
        {"jsonrpc": "2.0", "id": 1, "result": 1, "extra": 0},
        {"jsonrpc": "2.0", "result": 1, "x": 1},
        [{"jsonrpc": "2.0", "id": 1, "result": 1}],  # a batch
        "2.0",
    ]
).map(lambda m: msgpack.packb(m, use_bin_type=True))
malformed = st.sampled_from(
    [
        b"\x83\xa7jsonrpc\xa32.0\xa2id\x01\xa6result",  # cut short
        b"\x83\xa7jsonrpc\xa32.0\xa2id\x01\xa6result\x01\x00",  # a byte after it
        b"\x83\xa7jsonrpc\xa32.0\xa2id\x01\xa6result\xd4\x01\x00",  # an ext type
        b"\x83\xa7jsonrpc\xa32.0\xa2id\x01\x01\x02",  # an int key
        b"\x83\xa7jsonrpc\xa32.0\xa2id\xa2\xff\xfe\xa6result\x01",  # invalid UTF-8
        b"\x83\xa7jsonrpc\xd9\x032.0\xa2id\x01\xa6result\x01",  # "2.0" as a str 8: valid
        b"\x83\xa7jsonrpc\xa32.0\xa2id\x01\xa2id\x02",  # id twice: valid MessagePack
        b"\xc1",
    ]
)
payloads = answers | others | malformed | st.binary(min_size=1, max_size=20)
streams = st.lists(
    st.one_of(
        payloads.map(framed),
        st.just(b"\x00\x00\x00\x00"),  # an empty frame: the Python path fails the stream
        st.just(framed(msgpack.packb({"jsonrpc": "2.0", "id": 1, "result": bytes(LIMIT)}))),
    ),
    max_size=8,
).flatmap(lambda frames: st.tuples(st.just(b"".join(frames)), st.integers(0, 6)))


def python_reading(stream: bytes) -> tuple[list[Any], int, Any]:
    """What the Python path makes of ``stream``: the answers at its front (flat, as the core
    gives them), where they end, and the next frame's decoded value or DECLINED."""
    decoder = LengthPrefixedDecoder(1 << 26)
    decoder.feed(stream)
    taken: list[Any] = []
    offset = 0
    with python_path():
        while True:
            try:
                frame = decoder.next_frame()
            except FramingError:
                return taken, offset, DECLINED
            if frame is None or len(frame) > LIMIT:
                return taken, offset, DECLINED
            try:
                value = codec.decode(frame)
            except CodecError:
                return taken, offset, DECLINED
            message = JsonRpcProtocol.parse(value)
            if type(message) is not Response:
                return taken, offset, value
            taken += [message.id, message.result]
            offset += 4 + len(frame)


@settings(max_examples=500, deadline=None)
@given(streams)
@example((framed(b"\x83\xa7jsonrpc\xd9\x032.0\xa2id\x01\xa6result\x01"), 0))
@example((framed(msgpack.packb({"jsonrpc": "2.0", "id": 3, "result": float("nan")})), 0))
def test_the_answers_taken_are_those_the_python_path_finds(case: tuple[bytes, int]) -> None:
    stream, cut = case
    stream = stream[: len(stream) - cut] if cut < len(stream) else stream  # maybe end mid-frame
    buffer = bytearray(b"junk" + stream)
    taken: list[Any] = []
    end, value = aspect_ipc_core.take_answers(taken, DECLINED, buffer, 4, LIMIT)
    expected, offset, next_value = python_reading(stream)
    # The core may leave an answer to the Python path only when it is not written as every SDK
    # writes one (fixstr keys and version): then it stops there, with the frame's value.
    assert len(taken) <= len(expected) and same(taken, expected[: len(taken)])
    if len(taken) < len(expected):
        assert value is not DECLINED
        assert type(JsonRpcProtocol.parse(value)) is Response
        return
    assert end == 4 + offset
    if value is not DECLINED:  # the core decoded the next frame: as the Python path does
        assert same(value, next_value)
    else:
        assert next_value is DECLINED or type(next_value) is not Response


def test_answers_are_taken_in_order_up_to_the_first_other_frame() -> None:
    frames = [framed(msgpack.packb({"jsonrpc": "2.0", "id": n, "result": [n]})) for n in range(3)]
    note = {"jsonrpc": "2.0", "method": "tick", "params": {}}
    buffer = bytearray(b"".join(frames) + framed(msgpack.packb(note)) + frames[0])
    taken: list[Any] = []
    end, value = aspect_ipc_core.take_answers(taken, DECLINED, buffer, 0, LIMIT)
    assert taken == [0, [0], 1, [1], 2, [2]]
    assert end == sum(map(len, frames)) and value == note


def test_a_frame_over_the_limit_is_left_to_the_python_path() -> None:
    big = framed(msgpack.packb({"jsonrpc": "2.0", "id": 1, "result": "x" * 100}))
    taken: list[Any] = []
    assert aspect_ipc_core.take_answers(taken, DECLINED, bytearray(big), 0, 50) == (0, DECLINED)
    assert taken == []


def _events(decoder: LengthPrefixedDecoder, frame: Any, known: Any) -> tuple[str, Any]:
    """What a reader makes of one frame the Python path cut: an answer, another message, or
    bytes it cannot decode (``known``: the value the core decoded already, or DECLINED)."""
    try:
        value = codec.decode(frame) if known is DECLINED else known
    except CodecError:
        return ("undecodable", bytes(frame))
    message = JsonRpcProtocol.parse(value)
    if type(message) is Response:
        return ("answer", [message.id, message.result])
    return ("other", value)


_INNER = framed(msgpack.packb({"jsonrpc": "2.0", "id": 2, "result": [2]}))
_OUTER = framed(msgpack.packb({"jsonrpc": "2.0", "id": 1, "result": _INNER}))


@settings(max_examples=300, deadline=None)
@given(streams, st.lists(st.integers(1, 80), min_size=1, max_size=40))
# A read that ends where a frame's payload holds what looks like a whole answer: the next read
# starts there, and must not be taken for a frame of its own.
@example((_OUTER, 0), [_OUTER.index(_INNER), 1000])
def test_bytes_taken_as_they_are_received_come_out_as_from_one_buffer(
    case: tuple[bytes, int], sizes: list[int]
) -> None:
    # A reader whose decoder is idle (holds nothing) lets the core take the answers from the
    # bytes it just received, where they lie, and feeds the decoder only the rest; otherwise it
    # feeds them all and lets the core take from the buffer. Then it cuts what is left as
    # usual: however the stream is cut into reads, it sees what one buffer of it all shows.
    stream, _ = case
    expected: list[tuple[str, Any]] = []
    whole = LengthPrefixedDecoder(1 << 26)
    whole.feed(stream)
    with python_path():
        while True:
            try:
                frame = whole.next_frame()
            except FramingError:
                expected.append(("failed", None))
                break
            if frame is None:
                break
            expected.append(_events(whole, frame, DECLINED))

    seen: list[tuple[str, Any]] = []
    decoder = LengthPrefixedDecoder(1 << 26)
    taken: list[Any] = []

    def take(buffer: Any, start: int, limit: int) -> tuple[int, Any]:
        end, said = aspect_ipc_core.take_answers(taken, DECLINED, buffer, start, limit)
        return end, said

    def answers() -> None:
        seen.extend(("answer", taken[i : i + 2]) for i in range(0, len(taken), 2))
        taken.clear()

    offset, index = 0, 0
    failed = False
    while offset < len(stream) and not failed:
        size = sizes[index % len(sizes)]
        index += 1
        received = memoryview(stream[offset : offset + size])
        offset += size
        if decoder.idle():  # the reader's way: take the answers where they lie, keep the rest
            end, known = take(received, 0, LIMIT)
            left = end < len(received)
            if left:
                decoder.feed(received[end:])
        else:
            decoder.feed(received)
            known, left = decoder.take_small(take, DECLINED), True
        answers()
        while left:
            try:
                frame = decoder.next_frame()
            except FramingError:
                seen.append(("failed", None))
                failed = True
                break
            if frame is None:
                break
            seen.append(_events(decoder, frame, known))
            known = decoder.take_small(take, DECLINED)
            answers()
    assert same(seen, expected)
