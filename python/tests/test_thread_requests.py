"""Requests sent by a thread other than the loop's (``Channel.request_from_thread``), over a
real socket pair: what the blocking API's direct requests rest on.

The thread writes its own frame when nothing is queued; a frame the socket cannot take whole is
finished by the loop's writer before anything else. The loop's reader completes the request and
sets the thread's flag; a close fails it; a request the thread gives up on is taken back, and
the peer is told.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal

from aspect_ipc import (
    ChannelBuilder,
    ChannelClosed,
    CodecError,
    LengthPrefixedFraming,
    MessagePackCodec,
    SocketTransport,
)
from aspect_ipc.channel import Channel
from aspect_ipc.channel._outbox import THREAD_WRITE_LIMIT
from aspect_ipc.channel._pending import Pending
from aspect_ipc.metrics import ChannelMetrics


def _from_thread(channel: Any, method: str, params: Any, flag: Any, on_loop: Any) -> Any:
    """The request as the blocking API sends it: its Pending, or None when it was not sent."""
    waiter = Pending(flag)
    return waiter if channel.request_from_thread(method, params, waiter, on_loop) else None


pytestmark = pytest.mark.anyio


class Flag:
    """A thread's answer flag, as the blocking API makes one."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        self.event.set()


def _channel(sock: socket.socket, name: str) -> Channel:
    return (
        ChannelBuilder()
        .with_transport(SocketTransport(sock))
        .with_framing(LengthPrefixedFraming(64 * 1024 * 1024))
        .with_codec(MessagePackCodec())
        .with_options(name=name)
        .build()
    )


@asynccontextmanager
async def pair() -> AsyncIterator[tuple[Channel, Channel, Callable[[Callable[[], None]], None]]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with (
        BlockingPortal() as portal,
        _channel(a, "left") as left,
        _channel(b, "right") as right,
    ):

        async def run(function: Callable[[], None]) -> None:
            function()

        def on_loop(function: Callable[[], None]) -> None:
            portal.start_task_soon(run, function)

        await anyio.sleep(0.01)  # the writers start
        yield left, right, on_loop


async def test_a_thread_request_is_answered_through_the_loops_reader() -> None:
    async with pair() as (left, right, on_loop):
        right.on_request("add", lambda p: p["a"] + p["b"])
        left.metrics = ChannelMetrics()
        left._outbox.metrics = left.metrics

        def call() -> Any:
            flag = Flag()
            waiter = _from_thread(left, "add", {"a": 2, "b": 3}, flag, on_loop)
            assert waiter is not None
            assert flag.event.wait(10)
            return waiter.result, waiter.error, flag.sets

        assert await anyio.to_thread.run_sync(call) == (5, None, 1)
        assert left.metrics.requests_sent == 1
        assert left.metrics.bytes_out > 0
        assert sum(left.metrics.latency) == 1
        assert left.in_flight == 0


async def test_a_thread_writes_a_message_of_at_most_4_kib_itself_and_no_larger() -> None:
    # A larger one could be cut short, and a Ctrl-C between the write and its count would lose
    # the rest (test_sync_ctrl_c.py): it goes through the loop (None: nothing sent).
    async with pair() as (left, right, on_loop):
        right.on_request("echo", lambda p: p)

        def call(size: int) -> Any:
            flag = Flag()
            waiter = _from_thread(left, "echo", [bytes(size)], flag, on_loop)
            if waiter is not None:
                assert flag.event.wait(10)
            return waiter

        envelope = {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": [bytes(1000)]}
        overhead = 4 + len(MessagePackCodec().encode(envelope)) - 1000  # the same up to 64 KiB
        fits = THREAD_WRITE_LIMIT - overhead  # a frame of exactly 4096 bytes
        assert await anyio.to_thread.run_sync(call, fits) is not None
        assert await anyio.to_thread.run_sync(call, fits + 1) is None
        assert left.in_flight == 0


async def test_a_frame_larger_than_the_socket_takes_is_finished_before_anything_else() -> None:
    blob = bytes(range(256)) * (32 * 1024)  # 8 MiB: a socket takes a few hundred KiB at once
    async with pair() as (left, right, on_loop):
        right.on_request("echo", lambda p: p)
        left._outbox.thread_write_limit = 1 << 40  # as large a message as a thread may write
        gate = threading.Event()

        def call() -> Any:
            flag = Flag()
            waiter = _from_thread(left, "echo", [blob], flag, on_loop)
            gate.set()
            assert waiter is not None
            assert flag.event.wait(30)
            return waiter.result

        results: dict[int, Any] = {}

        async def small(n: int) -> None:
            results[n] = await left.request("echo", [n])

        outcome: list[Any] = []

        async def thread_call() -> None:
            outcome.append(await anyio.to_thread.run_sync(call))

        async with anyio.create_task_group() as tg:
            tg.start_soon(thread_call)
            while not gate.is_set():
                await anyio.sleep(0.001)
            for n in range(50):  # queued behind the rest of the 8 MiB frame
                tg.start_soon(small, n)
        assert outcome == [[blob]]
        assert results == {n: [n] for n in range(50)}


async def test_a_thread_request_pending_when_the_channel_closes_fails() -> None:
    async with pair() as (left, right, on_loop):
        started = anyio.Event()

        async def never(_: Any) -> None:
            started.set()
            await anyio.sleep_forever()

        right.on_request("never", never)
        flag = Flag()
        waiter = await anyio.to_thread.run_sync(
            lambda: _from_thread(left, "never", None, flag, on_loop)
        )
        assert waiter is not None
        await started.wait()
        left.close()
        assert await anyio.to_thread.run_sync(flag.event.wait, 10)
        assert isinstance(waiter.error, ChannelClosed)
        assert flag.sets == 1
        # A closed channel sends nothing from a thread: the caller goes the usual way.
        assert _from_thread(left, "never", None, Flag(), on_loop) is None


async def test_a_request_the_thread_gives_up_on_is_withdrawn_and_cancelled_in_the_peer() -> None:
    async with pair() as (left, right, on_loop):
        started, cancelled = anyio.Event(), anyio.Event()

        async def slow(_: Any) -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                cancelled.set()

        right.on_request("slow", slow)
        flag = Flag()
        waiter = await anyio.to_thread.run_sync(
            lambda: _from_thread(left, "slow", None, flag, on_loop)
        )
        assert waiter is not None
        await started.wait()
        assert left.withdraw_from_thread(waiter) is True
        assert left.withdraw_from_thread(waiter) is False  # taken back once
        await left.cancel_withdrawn(waiter, timed_out=True)
        with anyio.fail_after(10):
            await cancelled.wait()
        assert flag.sets == 0 and left.in_flight == 0
        right.on_request("add", lambda p: p["a"] + p["b"])
        assert await left.request("add", {"a": 1, "b": 1}) == 2


async def test_the_rest_of_a_thread_frame_goes_before_what_the_loop_sends_meanwhile() -> None:
    """The thread's frame is cut short by a full socket; the peer then reads a little, so a
    loop sender could write at once, in the middle of it. It must queue until the rest of the
    frame is out (the rest reaches the loop through ``on_loop``, run here only afterwards)."""
    a, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    blob = bytes(range(256)) * (16 * 1024)  # 4 MiB
    deferred: list[Callable[[], None]] = []
    peer.settimeout(10)  # a recv that never gets its bytes fails the test, never hangs it
    with peer:
        async with _channel(a, "left") as left:
            await anyio.sleep(0.01)  # the writer starts
            left._outbox.thread_write_limit = 1 << 40  # as large a message as a thread may write
            flag = Flag()
            waiter = await anyio.to_thread.run_sync(
                lambda: _from_thread(left, "echo", [blob], flag, deferred.append)
            )
            assert waiter is not None and len(deferred) == 1  # cut short: the rest is deferred
            first = await anyio.to_thread.run_sync(peer.recv, 256 * 1024)  # room again
            with anyio.fail_after(10):
                await left.notify("after", [1])  # must not be written yet
                deferred.pop()()  # now the rest goes first
                frames = await anyio.to_thread.run_sync(_read_frames, peer, first, 2)
            left.close()
    codec = MessagePackCodec()
    request, note = (codec.decode(frame) for frame in frames)
    assert request["method"] == "echo" and request["params"] == [blob]
    assert note == {"jsonrpc": "2.0", "method": "after", "params": [1]}


def _read_frames(sock: socket.socket, data: bytes, count: int) -> list[bytes]:
    """``count`` length-prefixed frames from ``data`` and then ``sock``."""
    buffer, frames = bytearray(data), []
    while len(frames) < count:
        if len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
            size = int.from_bytes(buffer[:4], "big")
            frames.append(bytes(buffer[4 : 4 + size]))
            del buffer[: 4 + size]
            continue
        chunk = sock.recv(1 << 20)
        assert chunk, "the connection ended"
        buffer += chunk
    return frames


def test_one_codec_encodes_for_several_threads_at_once() -> None:
    """Blocking callers encode their own requests, with the codec the loop uses too. A dict
    subclass whose ``items()`` is Python code lets another thread run in the middle of a pack."""

    class Slow(dict[str, Any]):
        def items(self) -> Any:  # type: ignore[override]
            time.sleep(0)  # let another thread in
            return super().items()

    codec = MessagePackCodec()
    failures: list[str] = []

    def encode(n: int) -> None:
        for i in range(300):
            value = Slow(n=n, i=i) if n % 2 else {"n": n, "i": i, "pad": "x" * n}
            try:
                if dict(codec.decode(codec.encode(value))) != dict(value):
                    failures.append(f"thread {n}, value {i}: another value")
            except CodecError as exc:
                failures.append(f"thread {n}, value {i}: {exc}")

    threads = [threading.Thread(target=encode, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


async def test_thread_and_loop_writes_never_interleave_whatever_the_thread_switches() -> None:
    """Three threads and the loop write frames of up to 256 KiB to one socket while the peer
    reads (so writes are often cut short), with the interpreter switching threads as often as
    it can: every frame must arrive whole, each sender's in its order."""
    a, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.settimeout(30)
    blob = bytes(range(256)) * 1024  # 256 KiB
    expected = 3 * 100 + 400
    interval = sys.getswitchinterval()
    with peer:
        async with BlockingPortal() as portal, _channel(a, "left") as left:

            async def run(function: Callable[[], None]) -> None:
                function()

            def on_loop(function: Callable[[], None]) -> None:
                portal.start_task_soon(run, function)

            def send(tag: int) -> None:
                for i in range(100):
                    params = [tag, i, blob[: 1024 * (1 + (i * 37) % 256)]]
                    if _from_thread(left, "blob", params, Flag(), on_loop) is None:
                        portal.call(left.notify, "blob", params)  # as the blocking API falls back

            async def notes() -> None:
                for n in range(400):
                    await left.notify("note", [n, blob[: 1024 * (n % 3) * 50]])

            await anyio.sleep(0.01)  # the writer starts
            sys.setswitchinterval(1e-6)
            try:
                reading = anyio.to_thread.run_sync(_read_frames, peer, b"", expected)
                async with anyio.create_task_group() as tg:
                    for tag in range(3):
                        tg.start_soon(anyio.to_thread.run_sync, send, tag)
                    tg.start_soon(notes)
                    frames = await reading
            finally:
                sys.setswitchinterval(interval)
            left.close()
    codec = MessagePackCodec()
    seen: dict[Any, list[int]] = {}
    for frame in frames:
        message = codec.decode(frame)
        params = message["params"]
        key = "note" if message["method"] == "note" else params[0]
        seen.setdefault(key, []).append(params[1] if key != "note" else params[0])
    assert seen == {
        0: list(range(100)),
        1: list(range(100)),
        2: list(range(100)),
        "note": list(range(400)),
    }
