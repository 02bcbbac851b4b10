"""The async iterator of :meth:`WorkerPool.map`.

Theory of operation: a *runner* task, started in the manager's task group on the first
``__anext__``, runs ``max_in_flight`` *lanes*; each lane takes a slot of the window (a semaphore
of ``max_in_flight``), reads the next item, calls the pool and sends the outcome (result or
exception) through a memory object stream. A slot is given back only when its result has been
handed to the consumer, so items sent, answered and buffered never exceed ``max_in_flight`` and
the stream's buffer can never fill. The consumer reorders by input index when ``ordered``.

The iterator is an object, not an async generator: an async generator cannot yield from inside
the task group or cancel scope the work needs (it breaks cancellation on trio and asyncio).
The runner holds only the shared :class:`_Run`, never the :class:`PoolMap`, so that a consumer
dropping the iterator (``break`` without ``async with``) lets it be collected, and its
finalizer cancels what is in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import anyio

from .errors import WorkerUnavailable

__all__ = ["PoolMap"]

# (index, succeeded, value): an item's outcome; (-1, False, (count, input error or None)): the end
Message = tuple[int, bool, Any]


_END = object()


class _Run:
    """What the runner task and the consumer share."""

    def __init__(
        self,
        call: Callable[[Any], Awaitable[Any]],
        iterable: Iterable[Any] | AsyncIterable[Any],
        max_in_flight: int,
    ) -> None:
        self.call = call
        self.lanes = max_in_flight
        self.send, self.receive = anyio.create_memory_object_stream[Message](max_in_flight + 1)
        self.window = anyio.Semaphore(max_in_flight)
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.count = 0  # items read so far
        self.error: Exception | None = None  # the input's own failure
        self.exhausted = False
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        if isinstance(iterable, AsyncIterable):
            self._async = aiter(iterable)
            self._reading = anyio.Lock()  # an async iterator must not be entered twice at once
        else:
            self._sync = iter(iterable)

    async def run(self) -> None:
        try:
            with self.scope:
                async with self.send:
                    async with anyio.create_task_group() as task_group:
                        for _ in range(self.lanes):
                            task_group.start_soon(self._lane)
                    await self.send.send((-1, False, (self.count, self.error)))
        finally:
            self.send.close()
            self.done.set()

    async def _lane(self) -> None:
        # One of max_in_flight lanes: a long-lived task per slot of the window costs far less
        # than a task per item. An item is read only once a window slot is taken.
        while not self.exhausted:
            try:
                self.window.acquire_nowait()  # no checkpoint: lanes woken together start together
            except anyio.WouldBlock:
                await self.window.acquire()
            try:
                index, item = await self._next()
            except Exception as exc:  # the input itself failed: raised after what it gave
                self.error, self.exhausted = exc, True
            if self.exhausted:
                self.window.release()
                return
            try:
                message: Message = (index, True, await self.call(item))
            except Exception as exc:
                # Which item failed, for a caller that gets the failures out of order.
                exc.map_index = index  # type: ignore[attr-defined]
                exc.add_note(f"(pool.map: item {index} of the input, counting from 0)")
                message = (index, False, exc)
            await self.send.send(message)

    async def _next(self) -> tuple[int, Any]:
        if self._sync is not None:
            item = next(self._sync, _END)
        else:
            assert self._async is not None
            async with self._reading:
                if self.exhausted:
                    return -1, _END
                item = await anext(self._async, _END)
        if item is _END:
            self.exhausted = True
            return -1, _END
        self.count += 1
        return self.count - 1, item


class PoolMap:
    """The results of :meth:`WorkerPool.map`: ``async for result in pool.map(...)``.

    Also an async context manager (``async with pool.map(...) as results:``), which cancels
    what is still in flight when the block ends, and has :meth:`aclose` for the same.
    """

    def __init__(
        self,
        start: Callable[[Callable[[], Awaitable[None]]], None],
        call: Callable[[Any], Awaitable[Any]],
        iterable: Iterable[Any] | AsyncIterable[Any],
        ordered: bool,
        max_in_flight: int,
        return_exceptions: bool,
    ) -> None:
        self._run = _Run(call, iterable, max_in_flight)
        self._start = start
        self._ordered = ordered
        self._return_exceptions = return_exceptions
        self._started = False
        self._closed = False
        self._buffer: dict[int, tuple[bool, Any]] = {}
        self._next = 0  # ordered: the index to hand out next
        self._yielded = 0
        self._end: tuple[int, Exception | None] | None = None

    def __aiter__(self) -> PoolMap:
        return self

    async def __aenter__(self) -> PoolMap:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Any:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            try:
                self._start(self._run.run)
            except BaseException:  # a stopped pool, a closed manager: no runner to wait for
                self._closed = True
                self._close_streams()
                raise
            self._started = True
        while True:
            ready = self._ready()
            if ready is not None:
                return await self._deliver(*ready)
            if self._end is not None and self._yielded == self._end[0]:
                error = self._end[1]
                await self.aclose()
                if error is not None:
                    raise error
                raise StopAsyncIteration
            try:
                try:  # without a checkpoint while outcomes are waiting (see _Run._slot)
                    index, ok, value = self._run.receive.receive_nowait()
                except anyio.WouldBlock:
                    index, ok, value = await self._run.receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                await self.aclose()
                raise WorkerUnavailable(
                    "pool map ended before its input did: the pool was stopped or its "
                    "manager closed"
                ) from None
            if index < 0:
                self._end = value
            else:
                self._buffer[index] = (ok, value)

    async def next_batch(self, limit: int) -> list[Any]:
        """The next result and up to ``limit - 1`` more that are already in, without waiting
        for them; ``[]`` at the end. (The blocking API crosses threads once per batch.)"""
        try:
            batch = [await self.__anext__()]
        except StopAsyncIteration:
            return []
        while len(batch) < limit and not self._closed:
            key = self._peek()
            if key is None:
                try:
                    index, ok, value = self._run.receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                if index < 0:
                    self._end = value
                else:
                    self._buffer[index] = (ok, value)
                continue
            ok, value = self._buffer[key]
            if not ok and not self._return_exceptions:
                break  # raised by the next call, after the results before it
            batch.append(await self._deliver(*self._take(key)))
        return batch

    def _peek(self) -> int | None:
        if self._ordered:
            return self._next if self._next in self._buffer else None
        return next(iter(self._buffer), None)

    def _take(self, key: int) -> tuple[bool, Any]:
        if self._ordered:
            self._next += 1
        return self._buffer.pop(key)

    def _ready(self) -> tuple[bool, Any] | None:
        key = self._peek()
        return None if key is None else self._take(key)

    async def _deliver(self, ok: bool, value: Any) -> Any:
        self._run.window.release()
        self._yielded += 1
        if ok or self._return_exceptions:
            return value
        await self.aclose()
        raise value

    async def aclose(self) -> None:
        """Cancel what is in flight and wait until it has ended; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._run.scope.cancel()
        self._close_streams()
        if self._started:
            with anyio.CancelScope(shield=True):
                await self._run.done.wait()

    def _close_streams(self) -> None:
        self._run.receive.close()
        if not self._started:
            self._run.send.close()  # the runner, which closes it otherwise, never ran

    def __del__(self) -> None:
        # A bare ``async for`` left by ``break``: cancel the runner (it holds no reference to
        # this object, so this runs as soon as the loop drops it).
        if not getattr(self, "_closed", True):
            self._closed = True
            self._run.scope.cancel()
            self._close_streams()
