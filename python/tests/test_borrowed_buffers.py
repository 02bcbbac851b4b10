"""A buffer an encode hook lends (written uncopied, docs/codec-hooks.md) is the caller's again
when the call that sends it returns: a notification or a stream item returns only once its
bytes are written, however long the peer takes to read them."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import msgpack
import pytest

from aspect_ipc import ChannelBuilder, MessagePackCodec, SocketTransport

pytestmark = pytest.mark.anyio

SIZE = 8 * 1024 * 1024  # far more than a socket buffer holds


class Block:
    """An application's own buffer, sent through the hook without a copy."""

    def __init__(self, data: bytearray) -> None:
        self.data = data


def _lend(value: Any) -> Any:
    if isinstance(value, Block):
        return memoryview(value.data)
    raise TypeError(f"no conversion for {type(value).__name__}")


def _read_frame(sock: socket.socket) -> Any:
    def exactly(count: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            chunk = sock.recv(count - len(chunks))
            assert chunk, "the channel closed"
            chunks += chunk
        return bytes(chunks)

    return msgpack.unpackb(exactly(int.from_bytes(exactly(4), "big")))


async def test_a_notification_returns_once_its_lent_buffer_is_written() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    builder = ChannelBuilder().with_transport(SocketTransport(ours))
    channel = builder.with_codec(MessagePackCodec(encode_hook=_lend)).build()
    block = Block(bytearray(b"a" * SIZE))
    returned = anyio.Event()
    with theirs:
        async with channel, anyio.create_task_group() as tasks:

            async def send() -> None:
                await channel.notify("block", {"data": block})
                block.data[:] = b"b" * SIZE  # the caller's again: changing it changes nothing sent
                returned.set()

            tasks.start_soon(send)
            await anyio.sleep(0.2)
            # Not returned: most of the 8 MiB is still waiting for the peer to read it.
            assert not returned.is_set()
            message = await anyio.to_thread.run_sync(_read_frame, theirs)
            with anyio.fail_after(5):
                await returned.wait()
    assert message["method"] == "block"
    assert message["params"]["data"] == b"a" * SIZE
