"""In-memory transports for channel logic tests (no sockets: the logic is what is tested)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aspect_ipc import TransportError


class MemoryTransport:
    def __init__(
        self, tx: MemoryObjectSendStream[bytes], rx: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._tx, self._rx = tx, rx

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return b""

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._tx.send(bytes(data))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise TransportError("memory transport: peer gone") from exc

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        for part in parts:
            await self.send(part)

    async def aclose(self) -> None:
        await self._tx.aclose()
        await self._rx.aclose()

    def __del__(self) -> None:
        # A test's own end of a pair is often never closed: unclosed streams warn when freed.
        self._tx.close()
        self._rx.close()


def transport_pair(buffer: int = 64) -> tuple[MemoryTransport, MemoryTransport]:
    a_tx, b_rx = anyio.create_memory_object_stream[bytes](buffer)
    b_tx, a_rx = anyio.create_memory_object_stream[bytes](buffer)
    return MemoryTransport(a_tx, a_rx), MemoryTransport(b_tx, b_rx)
