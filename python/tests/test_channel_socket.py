"""Channels over real Unix sockets: the write queue, backpressure, large frames in place."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgpack
import pytest

from aspect_ipc import (
    ChannelBuilder,
    ChannelClosed,
    CodecError,
    RequestTimeout,
    SocketTransport,
)
from aspect_ipc._transport_impl import SEND_BUFFER
from aspect_ipc.channel import Channel
from aspect_ipc.channel._outbox import OUTBOX_LIMIT

pytestmark = pytest.mark.anyio


def _channel(sock: socket.socket, name: str) -> Channel:
    return ChannelBuilder().with_transport(SocketTransport(sock)).with_options(name=name).build()


@asynccontextmanager
async def socket_pair() -> AsyncIterator[tuple[Channel, Channel]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with _channel(a, "left") as left, _channel(b, "right") as right:
        yield left, right


def _frames(data: bytes) -> list[object]:
    frames, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        frames.append(msgpack.unpackb(data[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    assert offset == len(data)
    return frames


async def _read_requests(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    """Read ``count`` frames from ``sock`` (made non-blocking), without blocking the loop."""
    sock.setblocking(False)
    received = b""
    requests: list[dict[str, Any]] = []
    with anyio.fail_after(10):
        while len(requests) < count:
            try:
                received += sock.recv(1 << 20)
            except BlockingIOError:
                await anyio.sleep(0.001)
                continue
            whole = 0
            while len(received) - whole >= 4:
                length = int.from_bytes(received[whole : whole + 4], "big")
                if len(received) - whole - 4 < length:
                    break
                whole += 4 + length
            requests += _frames(received[:whole])  # type: ignore[arg-type]
            received = received[whole:]
    return requests


async def test_large_binary_payloads_round_trip_byte_exact() -> None:
    async with socket_pair() as (left, right):
        right.on_request("echo", lambda params: params)
        for size in (65_537, 3 * 1024 * 1024 + 1):
            payload = os.urandom(size)
            assert await left.request("echo", [payload, b"tail"]) == [payload, b"tail"]


async def test_many_concurrent_requests_share_writes_and_keep_their_answers() -> None:
    async with socket_pair() as (left, right):
        right.on_request("echo", lambda params: params)
        results: dict[int, object] = {}

        async def call(n: int) -> None:
            results[n] = await left.request("echo", {"n": n, "pad": bytes(n % 300)})

        async with anyio.create_task_group() as tasks:
            for n in range(2000):
                tasks.start_soon(call, n)
        assert results == {n: {"n": n, "pad": bytes(n % 300)} for n in range(2000)}


async def test_a_peer_that_stops_reading_makes_senders_wait() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sent = 0
    chunk = bytes(64 * 1024)

    async def flood(channel: Channel) -> None:
        nonlocal sent
        for _ in range(1000):
            await channel.notify("data", [chunk])
            sent += 1

    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            tasks.start_soon(flood, left)
            await anyio.wait_all_tasks_blocked()
            # The queue and the socket's buffers are full; the sender waits, memory does not grow.
            blocked_at = sent
            assert blocked_at < 100
            assert left._outbox.size <= OUTBOX_LIMIT + len(chunk) + 64
            # The peer reads a little: the sender goes on.
            theirs.setblocking(False)
            drained = 0
            while drained < 4 * 1024 * 1024:
                try:
                    drained += len(theirs.recv(1 << 20))
                except BlockingIOError:
                    await anyio.wait_all_tasks_blocked()
                    if sent == 1000:
                        break
            assert sent > blocked_at
            tasks.cancel_scope.cancel()
    finally:
        theirs.close()


def _rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


async def test_many_senders_to_a_peer_that_does_not_read_hold_one_frame_not_one_each() -> None:
    # A hundred senders of one shared 1 MB string (encoded, a copy each) to a peer that reads
    # nothing: each had encoded and queued its copy, and the writer had taken them all, so
    # the parent grew by 100 MB with queued_bytes at 0. Now they wait before encoding.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    text = "a" * (1 << 20)
    sent = 0

    async def send(channel: Channel) -> None:
        nonlocal sent
        await channel.notify("data", {"text": text})
        sent += 1

    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            before = _rss()
            for _ in range(100):
                tasks.start_soon(send, left)
            await anyio.wait_all_tasks_blocked()
            grown = _rss() - before
            assert sent < 10, sent  # what the socket's buffers took
            assert left._outbox.size <= OUTBOX_LIMIT + len(text) + 64
            assert grown < 20 * len(text), f"the parent grew by {grown} bytes"
            tasks.cancel_scope.cancel()
    finally:
        theirs.close()


async def test_a_large_frame_is_not_kept_once_written() -> None:
    # The writer kept its last batch (here a 32 MB frame's only copy) until its next one.
    import ctypes
    import gc

    trim = ctypes.CDLL("libc.so.6").malloc_trim
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    size = 32 << 20

    envelope = {"jsonrpc": "2.0", "method": "data", "params": {"text": ""}}
    frame = 4 + len(msgpack.packb(envelope)) + size + 4  # a str of `size` takes a 5-byte header
    drained = anyio.Event()

    async def drain() -> None:
        theirs.setblocking(False)
        got = 0
        while got < frame:
            try:
                got += len(theirs.recv(1 << 22))
            except BlockingIOError:
                await anyio.sleep(0.01)
        drained.set()

    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            gc.collect()
            trim(0)
            before = _rss()
            tasks.start_soon(drain)
            await left.notify("data", {"text": "a" * size})  # the text is dropped at once
            await drained.wait()  # every byte is read: the writer has written it all
            await anyio.wait_all_tasks_blocked()
            gc.collect()
            trim(0)
            assert _rss() - before < size // 4, "the written frame is still held"
            tasks.cancel_scope.cancel()
    finally:
        theirs.close()


async def test_requests_that_time_out_waiting_for_room_are_never_sent() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    big = bytes(1 << 20)
    outcomes: list[str] = []

    async def call(channel: Channel) -> None:
        try:
            await channel.request("m", [big], timeout=0.5)
        except RequestTimeout as exc:
            if "was not sent" in str(exc):  # no room before it was encoded
                outcomes.append("not sent")
            elif "it was never sent" in str(exc):  # queued, then taken back unsent
                outcomes.append("taken back")
            else:
                assert "the peer was sent $/cancelRequest" in str(exc), str(exc)
                outcomes.append("timed out")

    try:
        async with _channel(ours, "left") as left:
            async with anyio.create_task_group() as tasks:
                for _ in range(30):
                    tasks.start_soon(call, left)
            assert len(outcomes) == 30 and outcomes.count("not sent") > 20, outcomes
            # What reached the peer: the requests that were written before the queue filled,
            # and a $/cancelRequest for each of them; nothing of those never sent, neither the
            # request nor a $/cancelRequest (one queued and not yet taken is taken back).
            theirs.setblocking(False)
            data = b""
            with anyio.move_on_after(2):  # a hang guard, not a timing assertion
                while True:
                    try:
                        chunk = theirs.recv(1 << 22)
                    except BlockingIOError:
                        await anyio.sleep(0.05)
                        continue
                    data += chunk
            messages = []
            while data:
                size = int.from_bytes(data[:4], "big")
                messages.append(msgpack.unpackb(data[4 : 4 + size]))
                data = data[4 + size :]
            sent = [m["id"] for m in messages if m.get("method") == "m"]
            told = [m["params"]["id"] for m in messages if m.get("method") == "$/cancelRequest"]
            assert 0 < len(sent) == outcomes.count("timed out"), (len(sent), outcomes)
            assert sorted(told) == sorted(sent), (told, sent)
    finally:
        theirs.close()


async def test_notifications_waiting_for_their_handler_are_bounded_in_bytes() -> None:
    # Spec 4.5: 1,024 notifications or 16 MiB. A hundred of 2 MB each, sent faster than their
    # handler runs, were all read and queued (200 MB); now the reader stops at the bound and the
    # sender is held back by the socket, and none is dropped.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    text = "n" * (2 << 20)
    frame = msgpack.packb({"jsonrpc": "2.0", "method": "note", "params": {"text": text}})
    data = b"".join([len(frame).to_bytes(4, "big") + frame] * 100)
    release, handled, written = anyio.Event(), [0], [0]

    async def note(params: object) -> None:
        await release.wait()
        handled[0] += 1

    async def send_all() -> None:
        theirs.setblocking(False)
        view = memoryview(data)
        while written[0] < len(data):
            try:
                written[0] += theirs.send(view[written[0] :])
            except BlockingIOError:
                await anyio.sleep(0.01)

    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            left.on_notification("note", note)
            tasks.start_soon(send_all)
            with anyio.move_on_after(2):  # the sender is held back: it stops progressing
                while written[0] < len(data):
                    before = written[0]
                    await anyio.sleep(0.3)
                    if written[0] == before:
                        break
            assert written[0] < 28 << 20, f"{written[0] >> 20} MiB taken by a blocked handler"
            release.set()
            with anyio.fail_after(30):  # a hang guard, not a timing assertion
                while handled[0] < 100:
                    await anyio.sleep(0.05)
            assert written[0] == len(data)
    finally:
        theirs.close()


async def test_what_was_queued_before_the_close_is_sent() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with theirs:
        async with _channel(ours, "left") as left:
            for n in range(50):
                await left.notify("n", [n])
        received = b""
        while chunk := theirs.recv(65536):
            received += chunk
    frames = _frames(received)
    assert [frame["params"] for frame in frames] == [[n] for n in range(50)]  # type: ignore[index]


async def test_a_closed_channel_refuses_to_queue() -> None:
    async with socket_pair() as (left, _right):
        left.close()
        with pytest.raises(ChannelClosed):
            await left.notify("late")


def _send_buffer(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def test_a_socket_transport_widens_the_send_buffer_and_never_narrows_it() -> None:
    # A 1 MiB message then leaves in one write instead of five waits for room (Linux's default
    # is about 208 KiB); the kernel caps the size at net.core.wmem_max, and reports it doubled.
    with open("/proc/sys/net/core/wmem_max") as limit:
        want = 2 * min(SEND_BUFFER, int(limit.read()))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        default = _send_buffer(theirs)
        SocketTransport(ours)
        assert _send_buffer(ours) >= want
        assert _send_buffer(theirs) == default  # only the transport's own socket
    big, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with big, peer:
        big.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * SEND_BUFFER)
        wider = _send_buffer(big)
        SocketTransport(big)
        assert _send_buffer(big) == wider


async def test_requests_the_socket_takes_only_part_of_arrive_whole_and_in_order() -> None:
    # A request is written at once by its sender where nothing is queued before it. Here the
    # peer reads nothing at first, so the socket takes only part of the first requests: the
    # rest of each waits in the queue, and everything sent after it queues behind it.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    text = "x" * 40_000  # more than the socket holds; packed whole by the compiled core
    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # narrowed again
            answers: dict[int, object] = {}

            async def ask(n: int) -> None:
                answers[n] = await left.request("echo", {"n": n, "text": text})

            for n in range(6):
                tasks.start_soon(ask, n)
                await anyio.wait_all_tasks_blocked()  # each one written or queued in turn
            requests = await _read_requests(theirs, 6)
            assert [r["params"]["n"] for r in requests] == list(range(6))
            assert all(r["params"]["text"] == text for r in requests)
            theirs.setblocking(True)
            for r in requests:
                result = r["params"]["n"]
                body = msgpack.packb({"jsonrpc": "2.0", "id": r["id"], "result": result})
                theirs.sendall(len(body).to_bytes(4, "big") + body)
        assert answers == {n: n for n in range(6)}
    finally:
        theirs.close()


async def test_a_request_that_cannot_be_encoded_sends_nothing() -> None:
    # CodecError before anything is written: the peer never saw the request, so it must not be
    # sent a $/cancelRequest for it either. The next thing on the wire is the next message.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        async with _channel(ours, "left") as left:
            with pytest.raises(CodecError):
                await left.request("echo", {"value": object()})
            await anyio.wait_all_tasks_blocked()
            await left.notify("after", {"n": 1})
            theirs.settimeout(5)
            header = theirs.recv(4, socket.MSG_WAITALL)
            first = msgpack.unpackb(theirs.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL))
            assert first == {"jsonrpc": "2.0", "method": "after", "params": {"n": 1}}
    finally:
        theirs.close()


async def test_requests_queued_one_after_another_arrive_whole_in_order_and_once() -> None:
    # While the peer reads nothing, what is sent queues: small requests queued one after another
    # share one buffer (Outbox.write_frame), up to a limit; larger ones, a request partly written,
    # and one that times out waiting for room (taken back out of the queue) are among them.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sizes = [0, 7, 300, 4_000, 8_100, 9_000, 20, 60_000, 1, 2_000, 100, 8_192, 3]
    try:
        async with _channel(ours, "left") as left, anyio.create_task_group() as tasks:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            answers: dict[int, object] = {}
            timed_out: list[int] = []

            async def ask(n: int, pad: bytes, timeout: float | None = None) -> None:
                try:
                    answers[n] = await left.request("echo", {"n": n, "pad": pad}, timeout=timeout)
                except RequestTimeout:
                    timed_out.append(n)

            sent: list[int] = []
            for n in range(150):
                if n == 100:  # over the queue's limit: it waits for room, and times out there
                    tasks.start_soon(ask, n, bytes(OUTBOX_LIMIT), 0.2)
                else:
                    tasks.start_soon(ask, n, bytes(sizes[n % len(sizes)]))
                    sent.append(n)
                await anyio.wait_all_tasks_blocked()  # each one written or queued in turn
            with anyio.fail_after(10):
                while not timed_out:
                    await anyio.sleep(0.01)
            assert timed_out == [100]
            requests = await _read_requests(theirs, len(sent))
            ns = [r["params"]["n"] for r in requests if r["method"] == "echo"]
            # Once each, and not the one taken back. In order, those sent before the queue was
            # ever over its limit (about 190 KB for the first 30): the senders that wait for room
            # go on in the order the backend wakes them (trio: any order).
            assert sorted(ns) == sent
            assert ns[:30] == sent[:30]
            for r in requests:
                if r["method"] != "echo":
                    continue
                n = r["params"]["n"]
                assert r["params"]["pad"] == bytes(sizes[n % len(sizes)])
                body = msgpack.packb({"jsonrpc": "2.0", "id": r["id"], "result": n})
                theirs.setblocking(True)
                theirs.sendall(len(body).to_bytes(4, "big") + body)
        assert answers == {n: n for n in sent}
    finally:
        theirs.close()
