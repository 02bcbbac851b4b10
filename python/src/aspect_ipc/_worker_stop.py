"""Stopping a worker's handlers before its control channel closes (spec 8.3, 8.4).

On a signal, stdin EOF or parent death the worker cancels its running handlers first and gives
them a moment to run their cancellation path (a handler may send a notification then, such as
the test worker's ``cancelObserved``, and its ``-32002`` response is written); only then does
the control channel close. After stdin EOF the control channel's output, stdout, still works,
so what they send reaches the parent. The moment is short: the loop has to exit within the
:class:`~aspect_ipc.worker_exit.ExitGuard` budget, and a handler that ignores its cancellation
is not waited for past it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio

from .channel import Channel
from .transports import FdTransport

__all__ = ["CANCEL_GRACE", "EofFirst", "cancel_handlers"]

CANCEL_GRACE = 0.06
"""Seconds cancelled handlers get to answer, well inside the exit budget (0.15 s of 0.2 s)."""


async def cancel_handlers(channels: Iterable[Channel | None], grace: float = CANCEL_GRACE) -> None:
    """Refuse new requests on ``channels`` (``-32004``), cancel the running handlers, and wait up
    to ``grace`` seconds for them to end (their ``-32002`` responses and whatever they send on
    cancellation are queued by then)."""
    live = [channel for channel in channels if channel is not None and not channel.closed]
    for channel in live:
        channel.refuse_new_requests()
        for scope in list(channel._running.values()):
            scope.cancel()
    with anyio.move_on_after(grace):
        for channel in live:
            await channel.wait_requests(functools.partial(_idle, channel))


def _idle(channel: Channel) -> bool:
    return not channel._running


class EofFirst:
    """The worker's stdio transport, which tells the worker of stdin EOF before the channel.

    The channel closes when its reader sees EOF, and a closed channel sends nothing more; so
    :meth:`receive` awaits ``at_eof()`` (which cancels the handlers and gives them their moment)
    before it returns the EOF to the channel.
    """

    prefers_lines = True

    def __init__(self, inner: FdTransport, at_eof: Callable[[], Awaitable[None]]) -> None:
        self.name = inner.name
        self._inner = inner
        self._at_eof = at_eof

    async def receive(self, max_bytes: int = 256 * 1024) -> bytes:
        """The next bytes of stdin; at its end, ``at_eof()`` first, then ``b""``."""
        data = await self._inner.receive(max_bytes)
        if not data:
            await self._at_eof()
        return data

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write to stdout."""
        await self._inner.send(data)

    async def send_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """Write several buffers to stdout."""
        await self._inner.send_all(parts)

    async def aclose(self) -> None:
        """Close stdin and stdout (the duplicates the channel owns)."""
        await self._inner.aclose()
