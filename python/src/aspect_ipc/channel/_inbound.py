"""The read loop: bytes into frames, frames to :meth:`Dispatch._dispatch`, until the end."""

from __future__ import annotations

import asyncio

from ..codecs import decodes_split_frames
from ..errors import ChannelClosed, FramingError, IpcError, TransportError
from ..framing import InPlaceDecoder
from ..transports import NowIO, ReceivesInto
from ._dispatch import Dispatch
from ._fast_reader import FastReader

__all__ = ["Inbound"]


class Inbound(Dispatch):
    """Reading: one task turns the transport's bytes into frames and dispatches them in order."""

    async def _read_loop(self) -> None:
        transport = self.transport
        if isinstance(transport, NowIO) and _on_asyncio():
            reason: IpcError = ChannelClosed(f"{self.name}: the channel was closed")
            try:
                reason = await FastReader(self, transport).run()
            finally:
                self.close(reason)
            return
        await self._read_loop_portable()

    async def _read_loop_portable(self) -> None:
        decoder = self._decoder
        transport = self.transport
        # Large frames are received straight into their own buffer where both sides allow it: a
        # decoder with writable() and a transport with receive_into() (no copy of a 1 MiB frame).
        in_place: tuple[InPlaceDecoder, ReceivesInto] | None = None
        if isinstance(decoder, InPlaceDecoder) and isinstance(transport, ReceivesInto):
            in_place = (decoder, transport)
            split_binaries = getattr(decoder, "split_binaries", None)
            if split_binaries is not None and decodes_split_frames(self.codec):
                split_binaries()  # a large binary goes straight into the bytes decoded
        metrics = self.metrics  # set before the channel runs; counted per read, not per frame
        reason: IpcError = ChannelClosed(f"{self.name}: the peer closed the channel")
        try:
            at_eof = False
            while True:  # frames fed to the decoder before the channel started go first
                while True:
                    try:
                        frame = decoder.next_frame()
                    except FramingError as exc:
                        await self._bad_input(None, exc)
                        if exc.fatal:
                            reason = ChannelClosed(f"{self.name}: {exc}")
                            return
                        continue
                    if frame is None:
                        break
                    await self._dispatch(frame)
                if at_eof:
                    return
                space = in_place[0].writable() if in_place is not None else None
                if in_place is not None and space is not None:
                    with space:
                        received = await in_place[1].receive_into(space)
                    if received:
                        if metrics is not None:
                            metrics.bytes_in += received
                        in_place[0].wrote(received)
                        continue
                else:
                    data = await transport.receive()
                    if data:
                        if metrics is not None:
                            metrics.bytes_in += len(data)
                        decoder.feed(data)
                        continue
                decoder.feed_eof()
                at_eof = True
        except TransportError as exc:
            reason = ChannelClosed(f"{self.name}: {exc}")
        finally:
            self.close(reason)


def _on_asyncio() -> bool:
    """Whether this runs on asyncio (an asyncio loop runs in this thread; under trio, none)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
