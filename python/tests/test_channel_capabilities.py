"""The channel's fast paths are capabilities of the interfaces, not of concrete classes: any
transport with ``receive_into``, any codec with ``encode_parts`` and any framing with ``header``
get them; the ``prefers_lines`` attribute picks the builder's default framing."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

import pytest

from aspect_ipc import (
    ChannelBuilder,
    JsonCodec,
    LengthPrefixedFraming,
    LineDelimitedFraming,
    MessagePackCodec,
    SocketTransport,
)
from aspect_ipc.codecs import PartsCodec
from aspect_ipc.framing import HeaderFraming, InPlaceDecoder
from aspect_ipc.transports import FdTransport, ReceivesInto

pytestmark = pytest.mark.anyio


class Wrapped:
    """A transport of the user's own (not a SocketTransport) that counts its calls."""

    def __init__(self, sock: socket.socket, *, offer_receive_into: bool) -> None:
        self.inner = SocketTransport(sock)
        self.calls = {"receive": 0, "receive_into": 0}
        if offer_receive_into:
            self.receive_into = self._receive_into

    async def receive(self, max_bytes: int = 256 * 1024) -> bytes:
        self.calls["receive"] += 1
        return await self.inner.receive(max_bytes)

    async def _receive_into(self, buffer: memoryview) -> int:
        self.calls["receive_into"] += 1
        return await self.inner.receive_into(buffer)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send(data)

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        await self.inner.send_all(parts)

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountingCodec(MessagePackCodec):
    """A codec of the user's own that offers encode_parts (a subclass: ``type(c) is`` fails)."""

    parts_calls = 0

    def encode_parts(self, value: Any) -> list[Any]:
        CountingCodec.parts_calls += 1
        return super().encode_parts(value)


def test_the_built_in_classes_declare_their_capabilities() -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        assert isinstance(SocketTransport(sock), ReceivesInto)
    assert isinstance(MessagePackCodec(), PartsCodec) and not isinstance(JsonCodec(), PartsCodec)
    assert isinstance(LengthPrefixedFraming(), HeaderFraming)
    assert not isinstance(LineDelimitedFraming(), HeaderFraming)
    assert isinstance(LengthPrefixedFraming().decoder(), InPlaceDecoder)
    assert FdTransport.prefers_lines is True


@pytest.mark.parametrize("offer", [True, False])
async def test_any_transport_with_receive_into_gets_the_in_place_reads(offer: bool) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs = Wrapped(b, offer_receive_into=offer)
    CountingCodec.parts_calls = 0
    left = ChannelBuilder().with_transport(SocketTransport(a)).with_codec(CountingCodec()).build()
    right = ChannelBuilder().with_transport(theirs).build()
    payload = os.urandom(3 * 1024 * 1024)
    async with left, right:
        right.on_request("size", lambda params: len(params[0]))
        assert await left.request("size", [payload]) == len(payload)
    assert CountingCodec.parts_calls >= 1  # the large binary went out through encode_parts
    if offer:
        assert theirs.calls["receive_into"] > 0
    else:
        assert theirs.calls["receive_into"] == 0 and theirs.calls["receive"] > 0


async def test_the_builder_default_follows_prefers_lines() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    on_socket = ChannelBuilder().with_transport(SocketTransport(a)).build()
    lines = Wrapped(b, offer_receive_into=False)
    lines.prefers_lines = True  # type: ignore[attr-defined]
    on_lines = ChannelBuilder().with_transport(lines).build()
    async with on_socket, on_lines:  # leaving closes the sockets
        assert isinstance(on_socket.framing, LengthPrefixedFraming)
        assert isinstance(on_socket.codec, MessagePackCodec)
        assert isinstance(on_lines.framing, LineDelimitedFraming)
        assert isinstance(on_lines.codec, JsonCodec)
