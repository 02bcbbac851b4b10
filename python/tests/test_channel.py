"""Channel logic, on in-memory transports, on asyncio and trio."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aspect_ipc import (
    ChannelBuilder,
    ChannelClosed,
    CodecError,
    ErrorCode,
    FramingError,
    JsonCodec,
    LengthPrefixedFraming,
    LineDelimitedFraming,
    MessagePackCodec,
    RemoteError,
    RequestTimeout,
    SocketTransport,
)
from aspect_ipc.channel import Channel
from memory import MemoryTransport, transport_pair

pytestmark = pytest.mark.anyio


def _channel(
    transport: MemoryTransport | SocketTransport, codec: str, name: str, **options: Any
) -> Channel:
    max_frame_size = options.pop("max_frame_size", 64 * 1024 * 1024)
    builder = ChannelBuilder().with_transport(transport).with_options(name=name, **options)
    if codec == "json":
        return builder.with_framing(LineDelimitedFraming()).with_codec(JsonCodec()).build()
    framing = LengthPrefixedFraming(max_frame_size)
    return builder.with_framing(framing).with_codec(MessagePackCodec()).build()


# Every pair() test runs over a memory transport (the portable read loop) and over a real Unix
# socket pair, which on asyncio takes the fast reader (channel/_fast_reader.py): requests started
# and answers completed in the readiness callback, everything else handed to the read task.
_KIND = ["memory"]


@pytest.fixture(autouse=True, params=["memory", "socket"])
def _transport_kind(request: pytest.FixtureRequest) -> None:
    _KIND[0] = request.param


def _transports() -> tuple[Any, Any]:
    if _KIND[0] == "memory":
        return transport_pair()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return SocketTransport(a), SocketTransport(b)


@asynccontextmanager
async def pair(codec: str = "msgpack", **options: Any) -> AsyncIterator[tuple[Channel, Channel]]:
    a, b = _transports()
    async with (
        _channel(a, codec, "left", **options) as left,
        _channel(b, codec, "right", **options) as right,
    ):
        yield left, right


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_request_response(codec: str) -> None:
    async with pair(codec) as (left, right):
        right.on_request("add", lambda p: p["a"] + p["b"])

        async def mul(p: list[int]) -> int:
            await anyio.lowlevel.checkpoint()
            return p[0] * p[1]

        right.on_request("mul", mul)
        assert await left.request("add", {"a": 2, "b": 3}) == 5
        assert await left.request("mul", [6, 7]) == 42
        assert await left.request("$/ping") == {}


async def test_binary_payloads_travel_as_bytes() -> None:
    async with pair() as (left, right):
        right.on_request("echo", lambda p: p)
        blob = bytes(range(256)) * 1000
        for kind in (bytes, bytearray, memoryview):
            assert await left.request("echo", [kind(blob)]) == [blob]


async def test_thousand_concurrent_requests_are_matched() -> None:
    async with pair() as (left, right):

        async def slow_double(p: dict[str, int]) -> int:
            await anyio.sleep((p["n"] % 7) / 1000)  # answers come back out of order
            return p["n"] * 2

        right.on_request("double", slow_double)
        results: dict[int, Any] = {}

        async def call(n: int) -> None:
            results[n] = await left.request("double", {"n": n})

        async with anyio.create_task_group() as tg:
            for n in range(1000):
                tg.start_soon(call, n)
        assert results == {n: n * 2 for n in range(1000)}


async def test_handler_can_call_back_into_the_peer() -> None:
    async with pair() as (left, right):
        left.on_request("base", lambda p: 10)

        async def derived(p: Any) -> int:
            return int(await right.request("base")) + 1

        right.on_request("derived", derived)
        assert await left.request("derived") == 11


async def test_unknown_method_gets_method_not_found() -> None:
    async with pair() as (left, _right):
        with pytest.raises(RemoteError) as info:
            await left.request("nope")
        assert info.value.code == ErrorCode.METHOD_NOT_FOUND
        assert "nope" in info.value.message


async def test_handler_exception_becomes_error_and_channel_stays_up() -> None:
    async with pair() as (left, right):

        def boom(p: Any) -> None:
            raise ValueError("bad value")

        def coded(p: Any) -> None:
            raise RemoteError(42, "custom", {"why": "because"})

        right.on_request("boom", boom)
        right.on_request("coded", coded)
        right.on_request("ok", lambda p: "ok")
        with pytest.raises(RemoteError) as info:
            await left.request("boom")
        assert (info.value.code, info.value.message) == (-32000, "bad value")
        assert info.value.data["type"] == "ValueError"
        assert "ValueError: bad value" in info.value.data["traceback"]  # spec 4.10
        with pytest.raises(RemoteError) as info:
            await left.request("coded")
        assert (info.value.code, info.value.data) == (42, {"why": "because"})
        assert await left.request("ok") == "ok"


async def test_timeout_cancels_the_remote_handler() -> None:
    cancelled = anyio.Event()
    async with pair() as (left, right):

        async def forever(p: Any) -> None:
            try:
                await anyio.sleep(math.inf)
            finally:
                cancelled.set()

        right.on_request("forever", forever)
        with pytest.raises(RequestTimeout, match="forever"):
            await left.request("forever", timeout=0.05)
        with anyio.fail_after(5):
            await cancelled.wait()


async def test_cancelled_caller_cancels_the_remote_handler() -> None:
    started, cancelled = anyio.Event(), anyio.Event()
    async with pair() as (left, right):

        async def forever(p: Any) -> None:
            started.set()
            try:
                await anyio.sleep(math.inf)
            finally:
                cancelled.set()

        right.on_request("forever", forever)
        async with anyio.create_task_group() as tg:
            tg.start_soon(left.request, "forever")
            await started.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(5):
            await cancelled.wait()
        assert await left.request("$/ping") == {}


async def test_cancel_request_answers_cancelled() -> None:
    async with pair() as (left, right):
        started = anyio.Event()

        async def forever(p: Any) -> None:
            started.set()
            await anyio.sleep(math.inf)

        right.on_request("forever", forever)
        outcome: list[Any] = []

        async def call() -> None:
            try:
                await left.request("forever")
            except RemoteError as exc:
                outcome.append(exc.code)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await started.wait()
            # The peer-side view: cancel by id, as a remote $/cancelRequest would.
            await left.notify("$/cancelRequest", {"id": 1})
        assert outcome == [ErrorCode.REQUEST_CANCELLED]


async def test_peer_close_fails_pending_requests_at_once() -> None:
    a, b = transport_pair()
    started, stop_peer = anyio.Event(), anyio.Event()
    failures: list[BaseException] = []

    async def run_peer() -> None:
        async with _channel(b, "msgpack", "right") as right:

            async def forever(p: Any) -> None:
                started.set()
                await anyio.sleep(math.inf)

            right.on_request("forever", forever)
            await stop_peer.wait()

    async def call(left: Channel) -> None:
        try:
            await left.request("forever", timeout=math.inf)
        except ChannelClosed as exc:
            failures.append(exc)

    async with _channel(a, "msgpack", "left") as left, anyio.create_task_group() as tg:
        tg.start_soon(run_peer)
        for _ in range(3):
            tg.start_soon(call, left)
        await started.wait()
        await anyio.sleep(0.01)
        stop_peer.set()  # the peer goes away with three requests pending
        with anyio.fail_after(5):  # a hang guard, not a timing assertion
            await _wait_for(lambda: len(failures) == 3)
        with pytest.raises(ChannelClosed):
            await left.request("anything")


async def _wait_for(predicate: Any) -> None:
    while not predicate():
        await anyio.sleep(0.005)


async def test_undecodable_frame_gets_parse_error_and_channel_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = transport_pair()
    async with _channel(b, "json", "right") as right:
        right.on_request("ok", lambda p: "ok")
        await a.send(b"this is not json\n")
        await a.send(b'{"jsonrpc":"2.0","id":7,"method":"ok"}\n')
        replies = [JsonCodec().decode((await a.receive()).rstrip(b"\n")) for _ in range(2)]
    assert replies[0]["id"] is None and replies[0]["error"]["code"] == -32700
    assert replies[1] == {"jsonrpc": "2.0", "id": 7, "result": "ok"}
    # The receiving side says so too, not only the peer it answered.
    assert [r.levelname for r in caplog.records if "undecodable" in r.getMessage()] == ["WARNING"]


async def test_invalid_request_and_batch_get_invalid_request() -> None:
    a, b = transport_pair()
    async with _channel(b, "json", "right"):
        await a.send(b'{"jsonrpc":"2.0","id":3,"method":5}\n')
        await a.send(b"[]\n")
        replies = [JsonCodec().decode((await a.receive()).rstrip(b"\n")) for _ in range(2)]
    assert [(r["id"], r["error"]["code"]) for r in replies] == [(3, -32600), (None, -32600)]


async def test_oversized_frame_closes_the_connection() -> None:
    a, b = transport_pair()
    async with _channel(b, "msgpack", "right", max_frame_size=1024) as right:
        await a.send((1 << 20).to_bytes(4, "big"))
        reply = await a.receive()  # the courtesy error, then the close
        assert MessagePackCodec().decode(reply[4:])["error"]["code"] == -32005
        assert await a.receive() == b""
        with pytest.raises(ChannelClosed, match="max_frame_size"):
            await right.request("x")


async def test_response_to_unknown_id_is_dropped() -> None:
    a, b = transport_pair()
    async with _channel(b, "json", "right") as right:
        right.on_request("ok", lambda p: "ok")
        await a.send(b'{"jsonrpc":"2.0","id":999,"result":1}\n')
        await a.send(b'{"jsonrpc":"2.0","id":1,"method":"ok"}\n')
        reply = JsonCodec().decode((await a.receive()).rstrip(b"\n"))
    assert reply == {"jsonrpc": "2.0", "id": 1, "result": "ok"}


async def test_notifications_arrive_in_order_and_may_call_the_peer() -> None:
    seen: list[int] = []
    done = anyio.Event()
    async with pair() as (left, right):
        left.on_request("ack", lambda p: p[0])

        async def note(p: dict[str, int]) -> None:
            seen.append(await right.request("ack", [p["n"]]))
            if len(seen) == 50:
                done.set()

        right.on_notification("note", note)
        for n in range(50):
            await left.notify("note", {"n": n})
        with anyio.fail_after(5):
            await done.wait()
    assert seen == list(range(50))


async def test_concurrent_handlers_are_bounded() -> None:
    running = peak = 0
    async with pair(max_concurrent_handlers=3) as (left, right):

        async def work(p: Any) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await anyio.sleep(0.005)
            running -= 1

        right.on_request("work", work)
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(left.request, "work")
    assert peak == 3


async def test_reserved_methods_cannot_be_registered() -> None:
    async with pair() as (left, _right):
        with pytest.raises(ValueError, match="reserved"):
            left.on_request("$/shutdown", lambda p: None)


async def test_unencodable_or_oversized_request_is_not_sent() -> None:
    async with pair("json") as (left, right):
        right.on_request("echo", lambda p: p)
        with pytest.raises(CodecError, match="data channel"):
            await left.request("echo", [b"bytes"])
        with pytest.raises(CodecError, match="NaN"):
            await left.request("echo", [math.nan])
        assert await left.request("echo", [1]) == [1]
    async with pair(max_frame_size=4096) as (left, right):
        right.on_request("echo", lambda p: p)
        with pytest.raises(FramingError, match="max_frame_size"):
            await left.request("echo", [b"x" * 8192])
        assert await left.request("echo", [b"x"]) == [b"x"]


async def test_oversized_result_becomes_message_too_large() -> None:
    async with pair(max_frame_size=4096) as (left, right):
        right.on_request("big", lambda p: b"x" * 8192)
        with pytest.raises(RemoteError) as info:
            await left.request("big")
        assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE


async def test_drain_refuses_new_requests() -> None:
    async with pair() as (left, right):
        right.on_request("ok", lambda p: "ok")
        await right.drain(0)
        with pytest.raises(RemoteError) as info:
            await left.request("ok")
        assert info.value.code == ErrorCode.SHUTTING_DOWN


async def test_a_short_timeout_after_long_ones_fires_on_time() -> None:
    # The deadline timer sleeps until the earliest deadline it knows; one that comes later but
    # is earlier must wake it, and deadlines that are later must not hold it up.
    async with pair() as (left, right):
        right.on_request("forever", lambda p: anyio.sleep(math.inf))
        outcomes: dict[str, BaseException] = {}

        async def ask(name: str, timeout: float) -> None:
            try:
                await left.request("forever", timeout=timeout)
            except RequestTimeout as exc:
                outcomes[name] = exc

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ask, "long", 60.0)
                await anyio.wait_all_tasks_blocked()
                tasks.start_soon(ask, "short", 0.05)
                await anyio.wait_all_tasks_blocked()
                start = anyio.current_time()
                while "short" not in outcomes:
                    await anyio.sleep(0.01)
                assert anyio.current_time() - start < 5  # not the long one's 60 s
                tasks.cancel_scope.cancel()
        assert set(outcomes) == {"short"}


async def test_answered_requests_leave_nothing_behind_whatever_their_timeout() -> None:
    # Each request with a deadline is entered in the channel's deadline heap; the entries of
    # answered requests must go long before their deadlines pass (here: 10 minutes), or the
    # heap would grow with the request rate times the timeout.
    import tracemalloc

    async with pair() as (left, right):
        right.on_request("echo", lambda p: p)
        for _ in range(500):
            await left.request("echo", [1], timeout=600)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(4000):
                await left.request("echo", [1], timeout=600)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 100_000, f"{grown} bytes kept after 4,000 answered requests"
