"""Large frames reuse their receive buffer once decoded, and nothing a caller holds changes.

The decoder lends a large payload's buffer with the frame and takes it back when the channel
has decoded it (``recycle``); these tests check, from the outside, that a recycled buffer never
shows through: every frame and every decoded value stays what was sent, whatever the sizes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from aspect_ipc import ChannelBuilder, CodecError, MessagePackCodec, SocketTransport
from aspect_ipc.channel import Channel
from aspect_ipc.framing import LengthPrefixedDecoder, LengthPrefixedFraming

MiB = 1024 * 1024


def _stream(payloads: list[bytes]) -> bytes:
    framing = LengthPrefixedFraming(max_frame_size=64 * MiB)
    return b"".join(framing.encode(payload) for payload in payloads)


def _decode_all(decoder: LengthPrefixedDecoder, data: bytes, chunk: int, *, recycle: bool) -> list:
    frames = []
    for offset in range(0, len(data), chunk):
        decoder.feed(data[offset : offset + chunk])
        while (frame := decoder.next_frame()) is not None:
            frames.append(bytes(frame))
            if recycle:
                decoder.recycle(frame)
    return frames


@pytest.mark.parametrize("chunk", [4096, 256 * 1024, 3 * MiB])
def test_recycled_buffers_carry_every_frame_exactly(chunk: int) -> None:
    # Large, then smaller (a slice of the recycled buffer), then larger again (a new buffer),
    # with small frames in between that never touch it.
    sizes = [2 * MiB, 300_000, 10, 2 * MiB, 5 * MiB, 70_000, 5 * MiB - 1]
    payloads = [os.urandom(size) for size in sizes]
    decoder = LengthPrefixedDecoder(max_frame_size=64 * MiB)
    assert _decode_all(decoder, _stream(payloads), chunk, recycle=True) == payloads


def test_a_frame_that_is_not_given_back_is_never_overwritten() -> None:
    first, second = os.urandom(MiB), os.urandom(MiB)
    decoder = LengthPrefixedDecoder()
    kept = _arrive_in_parts(decoder, first)
    assert isinstance(kept, bytearray) and kept == first
    # Not given back: the next frame gets a buffer of its own.
    other = _arrive_in_parts(decoder, second)
    assert other is not None and bytes(other) == second
    assert bytes(kept) == first


def _arrive_in_parts(decoder: LengthPrefixedDecoder, payload: bytes) -> object:
    # A large frame that arrives in parts is assembled in a buffer of its own, and lent.
    data = _stream([payload])
    decoder.feed(data[: len(data) // 2])
    assert decoder.next_frame() is None
    decoder.feed(data[len(data) // 2 :])
    return decoder.next_frame()


def test_a_recycled_view_can_no_longer_be_read() -> None:
    # A smaller frame in a recycled buffer is a view: once given back it is released, so code
    # that kept it by mistake gets an error instead of another frame's bytes.
    decoder = LengthPrefixedDecoder()
    big = _arrive_in_parts(decoder, os.urandom(2 * MiB))
    assert isinstance(big, bytearray)
    decoder.recycle(big)
    small = _arrive_in_parts(decoder, os.urandom(MiB))
    assert isinstance(small, memoryview) and len(small) == MiB
    decoder.recycle(small)
    with pytest.raises(ValueError, match="released"):
        bytes(small)


def test_recycling_something_else_changes_nothing() -> None:
    payload = os.urandom(MiB)
    decoder = LengthPrefixedDecoder()
    decoder.recycle(bytearray(2 * MiB))  # never lent by this decoder: ignored
    decoder.recycle(b"small")
    frame = _arrive_in_parts(decoder, payload)
    assert isinstance(frame, bytearray) and frame == payload


def _channel(sock: socket.socket, name: str) -> Channel:
    return ChannelBuilder().with_transport(SocketTransport(sock)).with_options(name=name).build()


@asynccontextmanager
async def socket_pair() -> AsyncIterator[tuple[Channel, Channel]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with _channel(a, "left") as left, _channel(b, "right") as right:
        yield left, right


@pytest.mark.anyio
async def test_answers_of_every_size_stay_intact_while_buffers_are_reused() -> None:
    sizes = [3 * MiB, 100_000, 3 * MiB, 2 * MiB + 7, 65_537, 4 * MiB, 17]
    async with socket_pair() as (left, right):
        right.on_request("echo", lambda params: params)
        answers = []
        for size in sizes:
            payload = os.urandom(size)
            answers.append((payload, await left.request("echo", [payload])))
        for payload, answer in answers:  # earlier answers did not change later
            assert answer == [payload]


@pytest.mark.anyio
async def test_concurrent_large_and_small_requests_keep_their_answers() -> None:
    async with socket_pair() as (left, right):
        right.on_request("echo", lambda params: params)
        results: dict[int, object] = {}
        sent: dict[int, bytes] = {}

        async def call(n: int) -> None:
            sent[n] = payload = os.urandom(MiB + n * 4099 if n % 3 == 0 else n)
            results[n] = await left.request("echo", {"n": n, "data": payload})

        async with anyio.create_task_group() as tasks:
            for n in range(48):
                tasks.start_soon(call, n)
        assert results == {n: {"n": n, "data": sent[n]} for n in range(48)}


@pytest.mark.parametrize("size", [10, 5000, MiB])
def test_a_frame_viewed_in_a_larger_buffer_is_checked_like_any_other(size: int) -> None:
    # A frame in a recycled buffer is a view of a larger one: the codec must still find what it
    # refuses (a map with a binary key, hidden behind a bin marker), and accept the rest.
    codec = MessagePackCodec()
    bad = b"\x81\xc4\x01k\x01"  # {b"k": 1}: a map with a binary key
    good = codec.encode({"pad": bytes(size)})
    for payload, ok in ((good, True), (b"\x92" + bad + codec.encode(bytes(size)), False)):
        buffer = bytearray(len(payload) + 4096)
        buffer[: len(payload)] = payload
        view = memoryview(buffer)[: len(payload)]
        if ok:
            assert codec.decode(view) == {"pad": bytes(size)}
        else:
            with pytest.raises(CodecError):
                codec.decode(view)
