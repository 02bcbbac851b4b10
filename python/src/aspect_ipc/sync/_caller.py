"""How a blocking call crosses to the loop thread, and waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

__all__ = ["Caller"]

T = TypeVar("T")


class Caller:
    """Runs coroutine functions on the loop thread for a blocking caller.

    On asyncio, a call is one ``run_coroutine_threadsafe``: one crossing each way (the portal's
    ``call`` makes two, which doubles the cost of a small request). On trio, the portal.
    """

    def __init__(self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop | None) -> None:
        self.portal = portal
        self._loop = loop
        self._loop_thread = portal.call(threading.get_ident)

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await function(*args)`` on the loop thread; its result, or its exception.

        A KeyboardInterrupt while waiting cancels the call, then propagates.
        """
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "the blocking API cannot be called from its own loop thread (an event callback "
                "or a request handler runs there): use the async object, '.aio', instead"
            )
        if self._loop is None:
            return self.portal.call(function, *args)
        future = asyncio.run_coroutine_threadsafe(_coroutine(function, *args), self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise


async def _coroutine(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await function(*args)
