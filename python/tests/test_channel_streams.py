"""Streams between two in-memory channels (spec 13): output, input, both, credit, cancel,
close, limits, and the -32602 answers of a handler that needs a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from aspect_ipc import ChannelClosed, RemoteError
from aspect_ipc.channel import Channel, current_streams
from test_channel import _transport_kind, pair  # noqa: F401  (the fixture: both transports)

pytestmark = pytest.mark.anyio


def _serve(channel: Channel, log: list[Any] | None = None) -> anyio.Event:
    """countTo / sumStream / echoStream / numbers (a generator) on ``channel``."""
    cancelled = anyio.Event()

    async def count_to(params: dict[str, Any]) -> dict[str, int]:
        out = current_streams().output
        try:
            for i in range(params["n"]):
                await out.send(i)
                if log is not None:
                    log.append(i)
        except BaseException:
            cancelled.set()
            raise
        return {"count": params["n"]}

    async def sum_stream(params: dict[str, Any]) -> int:
        return sum([item async for item in current_streams().input])

    async def echo_stream(params: dict[str, Any]) -> dict[str, int]:
        streams, count = current_streams(), 0
        async for item in streams.input:
            await streams.output.send(item)
            count += 1
        return {"count": count}

    async def numbers(params: Any) -> AsyncIterator[int]:
        for i in range(3):
            yield i * 10

    channel.on_request("countTo", count_to)
    channel.on_request("sumStream", sum_stream)
    channel.on_request("echoStream", echo_stream)
    channel.on_request("numbers", numbers)
    return cancelled


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_output_stream_items_then_final_value(codec: str) -> None:
    async with pair(codec) as (left, right):
        _serve(right)
        for window in (1, 2, 16):
            call = left.stream("countTo", {"n": 40}, window=window)
            assert [item async for item in call] == list(range(40))
            assert call.result == {"count": 40}


async def test_async_generator_handler_streams_its_yields() -> None:
    async with pair() as (left, right):
        _serve(right)
        call = left.stream("numbers")
        assert [item async for item in call] == [0, 10, 20]
        assert call.result is None


@pytest.mark.parametrize("source", ["list", "async"])
async def test_input_stream_result_after_consumed(source: str) -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(100):
            yield i

    async with pair() as (left, right):
        _serve(right)
        items = list(range(100)) if source == "list" else agen()
        assert await left.request_streaming("sumStream", {}, input=items) == sum(range(100))
        assert await left.request_streaming("sumStream", {}, input=[]) == 0


async def test_both_directions_echo() -> None:
    async with pair() as (left, right):
        _serve(right)
        call = left.stream("echoStream", {}, window=2, input=[b"a", 1, "x", None] * 10)
        assert [item async for item in call] == [b"a", 1, "x", None] * 10
        assert call.result == {"count": 40}


async def test_a_second_task_reading_the_same_stream_is_refused_not_left_hanging() -> None:
    # Two readers of one stream: the second would wait for a wake-up the first takes, forever.
    async with pair() as (left, right):
        _serve(right)
        more = anyio.Event()

        async def source() -> AsyncIterator[int]:
            yield 1
            await more.wait()
            yield 2

        call = left.stream("echoStream", {}, input=source())
        got_first, items = anyio.Event(), []

        async def first_reader() -> None:
            async for item in call:
                items.append(item)
                got_first.set()  # no await between this and the next __anext__

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(first_reader)
            with anyio.fail_after(10):  # a hang guard
                await got_first.wait()
            # The first reader is inside __anext__, waiting for item 2.
            with anyio.fail_after(10), pytest.raises(RuntimeError, match="already being read"):
                await call.__anext__()
            more.set()
        assert items == [1, 2] and call.result == {"count": 2}


async def test_stopped_consumer_blocks_the_producer_at_the_window() -> None:
    log: list[int] = []
    async with pair() as (left, right):
        cancelled = _serve(right, log)
        async for item in left.stream("countTo", {"n": 1000}, window=4):
            assert item == 0
            await anyio.sleep(0.2)  # the producer fills the window, then waits
            assert len(log) <= 4
            break
        with anyio.fail_after(2):  # breaking out cancels the producer ($/cancelRequest)
            await cancelled.wait()


async def test_missing_stream_answers_invalid_params() -> None:
    async with pair() as (left, right):
        _serve(right)
        with pytest.raises(RemoteError) as info:
            await left.request("countTo", {"n": 2})
        assert info.value.code == -32602
        assert "needs an output stream ($/stream.out)" in info.value.message
        with pytest.raises(RemoteError) as info:
            await left.request("sumStream", {})
        assert info.value.code == -32602


async def test_bad_descriptor_and_unknown_method() -> None:
    async with pair() as (left, right):
        _serve(right)
        with pytest.raises(RemoteError) as info:
            await left.request("countTo", {"n": 1, "$/stream": {"out": {"window": 0}}})
        assert info.value.code == -32602
        with pytest.raises(RemoteError) as info:
            async for _ in left.stream("nope"):
                pass
        assert info.value.code == -32601


async def test_handler_error_mid_stream_after_items() -> None:
    async with pair() as (left, right):

        async def fail_after_two(params: Any) -> None:
            await current_streams().output.send(1)
            await current_streams().output.send(2)
            raise RemoteError(4001, "disk gone")

        right.on_request("failing", fail_after_two)
        got = []
        with pytest.raises(RemoteError) as info:
            async for item in left.stream("failing"):
                got.append(item)
        assert (got, info.value.code, info.value.message) == ([1, 2], 4001, "disk gone")


async def test_input_source_error_reaches_the_handler() -> None:
    def source() -> Any:
        yield 1
        raise ValueError("source broke")

    async with pair() as (left, right):
        _serve(right)
        with pytest.raises(RemoteError) as info:
            await left.request_streaming("sumStream", {}, input=source())
        assert info.value.code == -32000
        assert "source broke" in info.value.message


async def test_too_many_open_streams() -> None:
    async with pair() as (left, right):
        release = anyio.Event()

        async def hold(params: Any) -> None:
            await release.wait()

        right.on_request("hold", hold)
        calls = [left.stream("hold") for _ in range(64)]
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(anext, call, None)
            await anyio.sleep(0.1)
            with pytest.raises(RemoteError) as info:
                async for _ in left.stream("hold"):
                    pass
            assert info.value.code == -32009 and info.value.data == {"limit": 64}
            # Spec 13.8's words, whatever the channel's name ("right" here).
            assert info.value.message == "too many open streams on data: 64 open, limit 64"
            release.set()


async def test_channel_close_fails_a_waiting_consumer() -> None:
    async with pair() as (left, right):

        async def stall(params: Any) -> None:
            await current_streams().output.send(1)
            await anyio.sleep_forever()

        right.on_request("stall", stall)
        with pytest.raises(ChannelClosed):
            async for _ in left.stream("stall"):
                right.close()


_BUFFERS: dict[int, bytearray] = {}


async def _read_json(raw: Any) -> Any:
    """The next line-delimited JSON message from a raw memory transport."""
    import json

    buffer = _BUFFERS.setdefault(id(raw), bytearray())
    while b"\n" not in buffer:
        buffer += await raw.receive()
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


async def test_item_over_the_window_fails_the_stream_and_cancels() -> None:
    """A misbehaving responder (a raw peer): an item with no credit left is -32010 (13.5)."""
    import json

    from aspect_ipc._streams import StreamError
    from memory import transport_pair
    from test_channel import _channel

    a, raw = transport_pair()
    async with _channel(a, "json", "left") as left:
        call = left.stream("countTo", {"n": 3}, window=1)
        got: list[Any] = []

        async def peer() -> None:
            request = await _read_json(raw)
            assert request["params"]["$/stream"] == {"out": {"window": 1}}
            chunk = b""
            for seq in (0, 1):  # the second has no credit: the window is 1
                item = {"stream": request["id"], "dir": "out", "seq": seq, "value": seq}
                note = {"jsonrpc": "2.0", "method": "$/stream/item", "params": item}
                chunk += json.dumps(note).encode() + b"\n"
            await raw.send(chunk)  # one read: both arrive before the application takes one
            cancel = await _read_json(raw)
            got.append(cancel)

        async with anyio.create_task_group() as tg:
            tg.start_soon(peer)
            with pytest.raises(StreamError) as info:
                async for _ in call:
                    await anyio.sleep(0.1)
        assert info.value.code == -32010 and "window of 1" in info.value.message
        assert got[0]["method"] == "$/cancelRequest"
    await raw.aclose()


async def test_responder_answers_protocol_error_and_drops_the_handler_answer() -> None:
    import json

    from memory import transport_pair
    from test_channel import _channel

    raw, b = transport_pair()
    async with _channel(b, "json", "right") as right:
        _serve(right)
        opening = {"$/stream": {"in": {}}}
        request = {"jsonrpc": "2.0", "id": 5, "method": "sumStream", "params": opening}
        await raw.send(json.dumps(request).encode() + b"\n")
        grant = await _read_json(raw)
        assert grant["params"] == {"stream": 5, "dir": "in", "add": 16}
        bad = {"stream": 5, "dir": "in", "seq": 3, "value": 1}  # a gap: seq 0 expected
        note = {"jsonrpc": "2.0", "method": "$/stream/item", "params": bad}
        await raw.send(json.dumps(note).encode() + b"\n")
        answer = await _read_json(raw)
        assert answer["error"]["code"] == -32010
        assert answer["error"]["data"] == {"stream": 5, "dir": "in"}
        ping = {"jsonrpc": "2.0", "id": 6, "method": "$/ping"}
        await raw.send(json.dumps(ping).encode() + b"\n")
        assert await _read_json(raw) == {"jsonrpc": "2.0", "id": 6, "result": {}}  # no 2nd answer
    await raw.aclose()


async def test_handlers_waiting_for_input_items_do_not_hold_the_dispatch_bound() -> None:
    # Six requests with input streams against a bound of 3 handlers: the items come after all
    # six openings. A handler waiting for items counted against the bound, so the three running
    # ones stopped the reader before the items they waited for, for ever (spec 4.5).
    async with pair(max_concurrent_handlers=3) as (left, right):
        _serve(right)

        async def items() -> AsyncIterator[int]:
            await anyio.sleep(0.2)  # the openings first
            for k in range(5):
                yield k

        sums: dict[int, Any] = {}

        async def call(n: int) -> None:
            sums[n] = await left.request_streaming("sumStream", input=items())

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for n in range(6):
                    group.start_soon(call, n)
        assert sums == {n: 10 for n in range(6)}
