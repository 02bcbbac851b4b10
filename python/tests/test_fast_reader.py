"""The read loop on asyncio over a real socket (channel/_fast_reader.py), driven by a raw peer
that writes several messages in one system call, so that one read holds them all: whatever the
reader does at once and whatever it hands to its task, it acts on them in arrival order."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgpack
import pytest

from aspect_ipc import ChannelBuilder, ChannelClosed, RemoteError, SocketTransport
from aspect_ipc.channel import Channel

pytestmark = pytest.mark.anyio


def _frame(message: dict[str, Any]) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


def _request(msg_id: int, method: str, params: Any = None) -> bytes:
    return _frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}})


def _note(method: str, params: Any) -> bytes:
    return _frame({"jsonrpc": "2.0", "method": method, "params": params})


class _Peer:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    async def send(self, *frames: bytes) -> None:
        await anyio.to_thread.run_sync(self.sock.sendall, b"".join(frames))

    async def read(self) -> Any:
        while len(self.buffer) < 4 or len(self.buffer) < 4 + int.from_bytes(self.buffer[:4]):
            self.buffer += await anyio.to_thread.run_sync(self.sock.recv, 65536)
        length = int.from_bytes(self.buffer[:4], "big")
        body, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
        return msgpack.unpackb(body)


@asynccontextmanager
async def _channel(**options: Any) -> AsyncIterator[tuple[Channel, _Peer]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    channel = ChannelBuilder().with_transport(SocketTransport(ours)).with_options(**options)
    with theirs:
        async with channel.build() as built:
            yield built, _Peer(theirs)


async def test_a_cancel_in_the_same_read_as_its_request_cancels_it() -> None:
    started = anyio.Event()
    async with _channel() as (channel, peer):

        async def wait(params: Any) -> str:
            started.set()
            await anyio.sleep(30)
            return "not cancelled"

        channel.on_request("wait", wait)
        await peer.send(_request(1, "wait"), _note("$/cancelRequest", {"id": 1}))
        with anyio.fail_after(5):
            answer = await peer.read()
        assert answer["id"] == 1 and answer["error"]["code"] == -32002


async def test_notifications_keep_their_order_when_their_queue_is_full() -> None:
    seen: list[int] = []
    async with _channel(max_queued_notifications=2, max_concurrent_handlers=2) as (channel, peer):

        async def note(params: Any) -> None:
            await anyio.sleep(0.001)  # slower than the peer: the queue fills, the reader waits
            seen.append(params["n"])

        channel.on_notification("note", note)
        channel.on_request("seen", lambda params: list(seen))
        frames = [_note("note", {"n": n}) for n in range(100)]
        frames += [_request(n, "seen") for n in range(1, 6)]  # more than the handler slots
        await peer.send(*frames)
        with anyio.fail_after(10):
            answers = [await peer.read() for _ in range(5)]
        assert sorted(a["id"] for a in answers) == [1, 2, 3, 4, 5]
        with anyio.fail_after(10):
            while len(seen) < 100:
                await anyio.sleep(0.01)
        assert seen == list(range(100))


async def test_stream_items_read_with_their_response_all_arrive_before_the_end() -> None:
    async with _channel() as (channel, peer):
        async with anyio.create_task_group() as tasks:
            items: list[int] = []
            result: list[Any] = []

            async def consume() -> None:
                async with channel.stream("countTo", {}, window=64) as stream:
                    async for item in stream:
                        items.append(item)
                    result.append(stream.result)

            tasks.start_soon(consume)
            request = await peer.read()
            msg_id = request["id"]
            frames = [
                _note("$/stream/item", {"stream": msg_id, "dir": "out", "seq": n, "value": n})
                for n in range(40)
            ]
            frames.append(_frame({"jsonrpc": "2.0", "id": msg_id, "result": {"count": 40}}))
            await peer.send(*frames)  # items and the end in one write
        assert items == list(range(40)) and result == [{"count": 40}]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"seq": 3, "value": 3}, "item seq 3 is not the next one (2)"),
        ({"seq": 2}, "malformed $/stream/item"),  # no value
        ({"seq": True, "value": 2}, "malformed $/stream/item"),  # a bool is not a seq
        ({"seq": 2, "value": 2, "extra": 1}, "exceeds the window of 2"),  # the credit is spent
    ],
)
async def test_a_bad_item_after_good_ones_in_one_read_fails_the_stream(
    bad: dict[str, Any], reason: str
) -> None:
    """The reader's short way takes only the next item in the window (the good ones: the reasons
    count them); whatever else comes in the same read fails the stream as spec 13.5 says."""
    from aspect_ipc._streams import StreamError

    window = 2 if "extra" in bad else 16
    async with _channel() as (channel, peer):
        items: list[Any] = []
        failure: list[StreamError] = []

        async def consume() -> None:
            try:
                async with channel.stream("countTo", {}, window=window) as stream:
                    async for item in stream:
                        items.append(item)
            except StreamError as exc:
                failure.append(exc)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            request = await peer.read()
            msg_id = request["id"]
            named = {"stream": msg_id, "dir": "out"}
            frames = [_note("$/stream/item", {**named, "seq": n, "value": n}) for n in range(2)]
            frames.insert(1, _note("$/stream/item", {**named, "stream": msg_id + 1, "seq": 0}))
            if "extra" in bad:
                bad = {"seq": 2, "value": 2}
            frames.append(_note("$/stream/item", {**named, **bad}))
            # One write: good items, one for no stream (dropped), then the bad one.
            await peer.send(*frames)
            with anyio.fail_after(5):
                cancel = await peer.read()
        assert items == []  # failing a stream discards its buffered items (13.5)
        assert failure and failure[0].code == -32010 and reason in failure[0].message
        assert cancel == {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": msg_id}}


async def test_a_request_named_like_an_item_is_a_request_not_an_item() -> None:
    """Only a notification is a stream message: a request with an id and the method
    ``$/stream/item`` is answered (method not found), and the stream's items go on."""
    async with _channel() as (channel, peer):
        items: list[Any] = []

        async def consume() -> None:
            async with channel.stream("countTo", {}) as stream:
                async for item in stream:
                    items.append(item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            msg_id = (await peer.read())["id"]
            named = {"stream": msg_id, "dir": "out"}
            await peer.send(
                _note("$/stream/item", {**named, "seq": 0, "value": "a"}),
                _request(99, "$/stream/item", {**named, "seq": 1, "value": "not an item"}),
                _note("$/stream/item", {**named, "seq": 1, "value": "b"}),
                _frame({"jsonrpc": "2.0", "id": msg_id, "result": None}),
            )
            with anyio.fail_after(5):
                answer = await peer.read()
        assert answer["id"] == 99 and answer["error"]["code"] == -32601
        assert items == ["a", "b"]


async def test_answers_and_requests_interleaved_in_one_read_all_go_through() -> None:
    async with _channel() as (channel, peer):
        channel.on_request("double", lambda params: params["n"] * 2)
        async with anyio.create_task_group() as tasks:
            answers: dict[int, Any] = {}

            async def ask(n: int) -> None:
                answers[n] = await channel.request("peer_echo", {"n": n})

            for n in range(10):
                tasks.start_soon(ask, n)
            requests = [await peer.read() for _ in range(10)]
            frames = []
            for r in requests:  # each answer followed by a request of the peer's own
                frames.append(_frame({"jsonrpc": "2.0", "id": r["id"], "result": r["params"]}))
                frames.append(_request(1000 + r["params"]["n"], "double", {"n": r["params"]["n"]}))
            await peer.send(*frames)
            replies = {}
            with anyio.fail_after(5):
                for _ in range(10):
                    reply = await peer.read()
                    replies[reply["id"]] = reply["result"]
        assert answers == {n: {"n": n} for n in range(10)}
        assert replies == {1000 + n: 2 * n for n in range(10)}


_PLAIN_ASYNCIO = """
import asyncio, socket, sys
import msgpack
from aspect_ipc import ChannelBuilder, ChannelClosed, RemoteError, SocketTransport

def frame(message):
    body = msgpack.packb(message)
    return len(body).to_bytes(4, "big") + body

async def main():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    channel = ChannelBuilder().with_transport(SocketTransport(ours)).build()
    channel.on_request("double", lambda params: params["n"] * 2)
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    async with channel:
        request = {"jsonrpc": "2.0", "id": 1, "method": "double", "params": {"n": 21}}
        await loop.sock_sendall(theirs, frame(request))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            data += await loop.sock_recv(theirs, 65536)
        print(msgpack.unpackb(data[4:]))
    theirs.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("without_sniffio", [False, True])
def test_a_plain_asyncio_program_gets_its_requests_answered(without_sniffio: bool) -> None:
    # asyncio.run (not anyio.run) sets no async-library context: the reader's callback, which
    # starts the request's handler, must still let anyio find asyncio. anyio needs no sniffio,
    # so neither may the library.
    import subprocess
    import sys

    prelude = "import sys; sys.modules['sniffio'] = None\n" if without_sniffio else ""
    result = subprocess.run(
        [sys.executable, "-c", prelude + _PLAIN_ASYNCIO],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'jsonrpc': '2.0', 'id': 1, 'result': 42}"
    assert "reader failed" not in result.stderr


async def test_answers_read_with_other_frames_between_them_keep_their_order() -> None:
    # One read: answers, which the reader takes straight from its buffer (with the compiled
    # core), with everything that stops it between them: a notification, an error response, a
    # frame that is not MessagePack, a large answer, an answer written unlike the SDKs write it.
    async with _channel() as (channel, peer):
        heard: list[Any] = []
        channel.on_notification("tick", heard.append)
        outcomes: dict[int, Any] = {}

        async def ask(n: int) -> None:
            try:
                outcomes[n] = await channel.request("peer_echo", {"n": n})
            except Exception as exc:
                outcomes[n] = exc

        async with anyio.create_task_group() as tasks:
            for n in range(7):
                tasks.start_soon(ask, n)
            ids = {(r := await peer.read())["params"]["n"]: r["id"] for _ in range(7)}

            def answer(n: int, result: Any) -> bytes:
                return _frame({"jsonrpc": "2.0", "id": ids[n], "result": result})

            str8_version = b"\x83\xa7jsonrpc\xd9\x032.0\xa2id" + msgpack.packb(ids[6])
            await peer.send(
                answer(0, [0]),
                _note("tick", {"i": 1}),
                answer(1, [1]),
                _frame({"jsonrpc": "2.0", "id": ids[2], "error": {"code": 7, "message": "no"}}),
                answer(3, [3]),
                answer(4, bytes(100_000)),
                answer(5, [5]),
                _frame({"jsonrpc": "2.0", "method": "tick", "params": {"i": 2}}),
                _framed(str8_version + b"\xa6result\x91\x06"),
                _framed(b"\xc1"),
            )
            with anyio.fail_after(10):
                complaint = await peer.read()  # the frame that is not MessagePack
        assert complaint["error"]["code"] == -32700 and complaint["id"] is None
        assert [outcomes[n] for n in (0, 1, 3, 5, 6)] == [[0], [1], [3], [5], [6]]
        assert outcomes[4] == bytes(100_000)
        assert isinstance(outcomes[2], RemoteError) and outcomes[2].code == 7
        assert heard == [{"i": 1}, {"i": 2}]


def _framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


async def test_answers_that_arrive_a_few_bytes_at_a_time_are_all_taken() -> None:
    # Chunks of 1 to 150 bytes: a header cut short, a payload cut short, a frame's end with whole
    # frames after it in one chunk. Each read takes what is whole (with the compiled core, the
    # answers straight from the buffer) and keeps the rest for the next.
    async with _channel() as (channel, peer):
        outcomes: dict[int, Any] = {}

        async def ask(n: int) -> None:
            outcomes[n] = await channel.request("peer_echo", {"n": n})

        async with anyio.create_task_group() as tasks:
            for n in range(30):
                tasks.start_soon(ask, n)
            requests = [await peer.read() for _ in range(30)]
            stream = b"".join(
                _frame({"jsonrpc": "2.0", "id": r["id"], "result": ["x" * r["params"]["n"]]})
                for r in requests
            )
            sizes = [1, 2, 3, 5, 7, 11, 90, 150]
            offset = step = 0
            while offset < len(stream):  # one write at a time: the reader runs between them
                size = sizes[step % len(sizes)]
                await anyio.to_thread.run_sync(peer.sock.sendall, stream[offset : offset + size])
                offset, step = offset + size, step + 1
        assert outcomes == {n: ["x" * n] for n in range(30)}


async def test_a_connection_reset_fails_the_pending_requests_and_says_so() -> None:
    # The peer closes with our request still unread in its buffer: the next read is refused
    # (ECONNRESET), and every request waiting for an answer fails with the reason.
    async with _channel() as (channel, peer):
        outcome: list[BaseException] = []

        async def ask() -> None:
            try:
                await channel.request("peer_echo", {"n": 1})
            except Exception as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            peer.sock.close()  # the request is still in its receive buffer, unread
        assert len(outcome) == 1 and isinstance(outcome[0], ChannelClosed)
        assert "receive failed" in str(outcome[0]) and "reset" in str(outcome[0]).lower()
        assert channel.closed
