"""The calls of a :class:`WorkerPool`: requests (with retries, with input streams) and streams.

A request goes to the least-loaded live worker and, after a crash, with ``retries``, to another
one; a request with an input stream is never sent again (its input is read once).

A pool stream picks its worker at the first step, as a request does, and counts as one request
in flight on it until the stream ends: its last item, an error, ``aclose()`` / leaving
``async with``, or the object being dropped after a ``break``. It is never retried: items
already consumed cannot be taken back.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ._handle_streams import Items, WorkerStream
from ._loggers import library_logger
from ._stream_messages import check_output_window
from .errors import WorkerCrashed, WorkerUnavailable

if TYPE_CHECKING:
    from ._pool_members import Member
    from .handle import ProcessHandle
    from .pool import WorkerPool

__all__ = ["PoolStream", "pool_call"]

logger = library_logger("aspect_ipc.pool")


async def pool_call(
    pool: WorkerPool,
    via: str,
    method: str,
    params: Any,
    timeout: float | None,
    retries: int,
    input: Items | None = None,
    failed: ProcessHandle | None = None,
) -> Any:
    """One request through ``pool`` (see :meth:`WorkerPool.request`). ``failed``: the worker
    whose crash failed a first attempt made elsewhere (a blocking caller's direct request);
    this is then its first retry."""
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, not {retries!r}")
    if input is not None and retries:
        raise ValueError(
            f"{method!r}: retries cannot be used with input: an input stream is read once "
            "and cannot be sent again; retry the whole call with a fresh input instead"
        )
    tried: set[ProcessHandle] = set()
    attempt = 0
    if failed is not None:
        attempt = _retry(pool, method, failed, tried, attempt, retries)
    while True:
        member = await pool._acquire(tried)
        handle = member.handle
        try:
            if via == "data":
                return await handle.request_via_data(method, params, timeout=timeout, input=input)
            return await handle.request(method, params, timeout=timeout, input=input)
        except (WorkerCrashed, WorkerUnavailable):
            if attempt >= retries or pool._closed:
                raise
            attempt = _retry(pool, method, handle, tried, attempt, retries)
        finally:
            pool._release(member)


def _retry(
    pool: WorkerPool,
    method: str,
    handle: ProcessHandle,
    tried: set[ProcessHandle],
    attempt: int,
    retries: int,
) -> int:
    """Count a retry after ``handle``'s crash, and avoid ``handle`` from now on."""
    tried.add(handle)
    logger.info(
        "pool %s: %r failed on %s; retry %d of %d",
        pool.name,
        method,
        handle.id,
        attempt + 1,
        retries,
        extra={"worker_id": handle.id},
    )
    return attempt + 1


class PoolStream:
    """The items of a pool stream (see :meth:`WorkerPool.stream`); then :attr:`result`.

    Leaving the loop early cancels the request, as for :class:`WorkerStream`: at once with
    ``async with pool.stream(...) as items:`` or :meth:`aclose`, else when the object is
    dropped. A worker that dies mid-stream fails the next step with ``WorkerCrashed``.
    """

    def __init__(
        self,
        pool: WorkerPool,
        via: str,
        method: str,
        params: dict[str, Any] | None,
        window: int,
        input: Items | None,
    ) -> None:
        check_output_window(window)
        self._pool, self._via, self._method = pool, via, method
        self._params, self._window, self._input = params, window, input
        self._member: Member | None = None
        self._stream: WorkerStream | None = None
        self._ended = False
        self.result: Any = None
        """The final value of the stream (the request's result), once the loop has ended."""

    @property
    def worker(self) -> ProcessHandle | None:
        """The worker serving the stream; None before the first step."""
        return None if self._member is None else self._member.handle

    def __aiter__(self) -> PoolStream:
        return self

    async def __anext__(self) -> Any:
        if self._ended:
            raise StopAsyncIteration
        if self._stream is None:
            member = await self._pool._acquire(set())
            self._member = member
            handle = member.handle
            opener = handle.stream if self._via == "control" else handle.stream_via_data
            try:
                self._stream = opener(
                    self._method, self._params, window=self._window, input=self._input
                )
            except BaseException:
                self._end()
                raise
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            self.result = self._stream.result
            self._end()
            raise
        except BaseException:
            # An error end, a crash, or our caller cancelled: the worker stream has already
            # finished its request (cancelling it when it had not ended).
            await self._close_stream()
            self._end()
            raise

    async def aclose(self) -> None:
        """Stop reading: the request is cancelled unless its stream has ended; idempotent."""
        await self._close_stream()
        self._end()

    async def __aenter__(self) -> PoolStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _close_stream(self) -> None:
        if self._stream is not None and not self._ended:
            await self._stream.aclose()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._member is not None:
                self._pool._release(self._member)

    def __del__(self) -> None:
        # A bare ``async for ... break``: the worker stream cancels its request when it is
        # collected with us; the pool's count goes down here. The pool's wake-up of a retiring
        # worker needs an event loop, which a finalizer may not be running in.
        if not getattr(self, "_ended", True):
            self._ended = True
            member = self._member
            if member is not None:
                member.in_flight -= 1
                if member.retiring and member.in_flight == 0:
                    with contextlib.suppress(Exception):
                        self._pool._notify()
