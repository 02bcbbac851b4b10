"""Plain-function handlers over real Unix sockets: each runs in a context of its own, one that
returns an awaitable is awaited, and a peer that stops reading still stops the reader (a plain
function's request is answered without a task of its own: the channel must not lose what made
tasks safe)."""

from __future__ import annotations

import contextlib
import socket
from contextvars import ContextVar
from typing import Any

import anyio
import anyio.lowlevel
import msgpack
import pytest

from aspect_ipc import ChannelBuilder, SocketTransport
from aspect_ipc.channel import Channel, current_request

pytestmark = pytest.mark.anyio

_seen: ContextVar[str] = ContextVar("_seen", default="unset")


def _channel(sock: socket.socket, name: str, **options: Any) -> Channel:
    builder = ChannelBuilder().with_transport(SocketTransport(sock))
    return builder.with_options(name=name, **options).build()


async def test_plain_handlers_see_their_own_request_and_keep_their_context_to_themselves() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    seen: list[tuple[Any, Any, str]] = []

    def probe(params: Any) -> Any:
        request = current_request.get()
        assert request is not None
        seen.append((request.id, params["n"], _seen.get()))
        _seen.set(f"set by {params['n']}")  # must not reach the next handler
        return params["n"]

    async with _channel(a, "left") as left, _channel(b, "right") as right:
        right.on_request("probe", probe)
        answers: dict[int, Any] = {}

        async def call(n: int) -> None:
            answers[n] = await left.request("probe", {"n": n})

        async with anyio.create_task_group() as tasks:
            for n in range(200):
                tasks.start_soon(call, n)
    assert answers == {n: n for n in range(200)}
    assert sorted(n for _, n, _ in seen) == list(range(200))
    assert {value for _, _, value in seen} == {"unset"}
    assert len({request_id for request_id, _, _ in seen}) == 200


async def _later(value: Any) -> Any:
    await anyio.sleep(0.01)
    return {"later": value}


async def test_a_plain_function_that_returns_a_coroutine_is_answered_with_its_result() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with _channel(a, "left") as left, _channel(b, "right") as right:
        right.on_request("later", lambda params: _later(params))
        right.on_request("fails", lambda params: 1 / 0)
        assert await left.request("later", [1, 2]) == {"later": [1, 2]}
        with pytest.raises(Exception, match="division by zero"):
            await left.request("fails")


async def test_a_peer_that_stops_reading_stops_plain_handlers_and_loses_no_answer() -> None:
    """A foreign client pipelines 3,000 requests whose answers are 64 KiB and reads nothing:
    the worker runs a bounded number of them (the kernel's buffers, the write queue's limit and
    the handler slots), then stops reading; once the client reads, every answer arrives."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    calls = 0

    def big(params: Any) -> bytes:
        nonlocal calls
        calls += 1
        return bytes(64 * 1024)

    total = 3000
    frames = b"".join(
        len(body).to_bytes(4, "big") + body
        for body in (
            msgpack.packb({"jsonrpc": "2.0", "id": n, "method": "big", "params": [n]})
            for n in range(total)
        )
    )
    async with _channel(ours, "worker", max_concurrent_handlers=8) as worker:
        worker.on_request("big", big)
        theirs.setblocking(False)
        sent = 0
        while sent < len(frames):  # write what the worker takes, never read
            try:
                sent += theirs.send(frames[sent : sent + 65536])
            except BlockingIOError:
                break
            await anyio.lowlevel.checkpoint()
        while True:  # until the worker stops calling the handler
            before = calls
            await anyio.sleep(0.3)
            if calls == before:
                break
        # Kernel buffers (a few MiB), 256 KiB queued, 8 handlers waiting: far fewer than sent.
        assert 0 < calls < 200, calls

        answers: dict[int, int] = {}
        received = bytearray()
        unpacker = msgpack.Unpacker()
        while len(answers) < total:
            if sent < len(frames):
                with contextlib.suppress(BlockingIOError):
                    sent += theirs.send(frames[sent : sent + 65536])
            try:
                chunk = theirs.recv(1 << 20)
            except BlockingIOError:
                await anyio.sleep(0.001)
                continue
            assert chunk, "the worker closed the connection"
            received += chunk
            while len(received) >= 4:
                size = int.from_bytes(received[:4], "big")
                if len(received) < 4 + size:
                    break
                unpacker.feed(bytes(received[4 : 4 + size]))
                del received[: 4 + size]
                answer = next(unpacker)
                answers[answer["id"]] = len(answer["result"])
        assert answers == {n: 64 * 1024 for n in range(total)}
        assert calls == total
    theirs.close()
