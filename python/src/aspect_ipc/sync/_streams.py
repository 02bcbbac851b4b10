"""Streams for code without an event loop: plain iterators over a worker's output stream, and
plain iterables sent as input streams.

Theory of operation. An output stream is read on the loop thread by a *pump* task (in the
blocking manager's task group) that moves its items into a :class:`Pipe` of ``window`` items;
the iterator takes them from the pipe in the caller's thread. The pump holds the pipe, never the
iterator, so an iterator dropped after a ``break`` is collected and its finalizer closes the
pipe, which cancels the pump, which cancels the request (``$/cancelRequest``).

An input stream goes the other way: a plain iterable is read on an ordinary thread into a pipe,
and the async request reads the pipe as its async iterable. For ``request(..., input=)`` that
thread is the caller's own (it would be waiting anyway); for ``stream(..., input=)``, whose
caller is busy reading the output, it is a thread of the stream's own, named
:data:`INPUT_THREAD`. Either way the loop never runs the iterable's code.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeVar

import anyio

from .._stream_messages import DEFAULT_WINDOW
from ..errors import WorkerUnavailable
from ._caller import Caller
from ._pipe import Pipe, PipeClosed

__all__ = ["INPUT_THREAD", "StreamIterator", "check_input", "request_with_input"]

T = TypeVar("T")

INPUT_THREAD = "aspect-ipc-input"
"""The name of the thread that reads the ``input`` of a blocking ``stream(..., input=...)``."""


class AsyncStream(Protocol):
    """What the pump reads: :class:`aspect_ipc.WorkerStream` or :class:`aspect_ipc.PoolStream`."""

    result: Any

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


class PipeItems:
    """A pipe's items as the async iterable an async stream call takes as ``input``."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe

    def __aiter__(self) -> PipeItems:
        return self

    def want(self, count: int) -> None:
        """The input pump can send ``count`` items now (the worker's credit): the reading
        thread may read that many ahead (see Pipe.wait_for_demand)."""
        self._pipe.want(count)

    async def __anext__(self) -> Any:
        try:
            return await self._pipe.aget()
        except PipeClosed:
            raise StopAsyncIteration from None


def check_input(input: Iterable[Any] | None) -> None:
    """The blocking API reads plain iterables (on a thread of its own, not the loop's)."""
    if input is not None and (isinstance(input, AsyncIterable) or not isinstance(input, Iterable)):
        raise TypeError(
            f"input must be a plain iterable (a list, a generator...), not {type(input).__name__}"
            ": the blocking API reads it on an ordinary thread; an async iterable goes to the "
            "async object, '.aio'"
        )


def feed(iterable: Iterable[Any], pipe: Pipe) -> None:
    """Read ``iterable`` into ``pipe`` until it ends or the pipe is closed (the request ended).
    An exception raised by the iterable ends the input stream with ``$/stream/error``.

    Each item is read only once the stream asks for it, as the async API reads an async
    iterable: an item taken from the iterable and never sent would be lost to the caller.
    """
    try:
        items = iter(iterable)
        while pipe.wait_for_demand():
            try:
                item = next(items)
            except StopIteration:
                break
            if not pipe.put(item):
                return
    except Exception as exc:
        pipe.fail(exc)
    else:
        if not pipe.closed:
            pipe.finish()


def request_with_input(
    caller: Caller, call: Callable[[PipeItems], Awaitable[T]], input: Iterable[Any]
) -> T:
    """Run ``call(items)`` on the loop while this thread reads ``input`` into ``items``."""
    pipe = Pipe(DEFAULT_WINDOW, caller.call_soon, caller.ended)

    async def run() -> T:
        try:
            return await call(PipeItems(pipe))
        finally:
            pipe.close()  # answered, failed or timed out: the reading below stops

    started = caller.start(run)
    try:
        feed(input, pipe)
        return started.result()
    except BaseException:  # KeyboardInterrupt: cancel the request, as a blocking call does
        started.cancel()
        pipe.close()
        raise


class StreamIterator(Iterator[Any]):
    """The items of a blocking ``stream(...)``: ``for item in handle.stream_via_data(...)``;
    then :attr:`result` is the final value.

    Leaving the loop early cancels the request (the worker is sent ``$/cancelRequest``): at once
    with ``with handle.stream(...) as items:`` or :meth:`close`, else when the iterator is
    garbage-collected (CPython: as soon as a ``for ... break`` drops it). Several threads may
    take items from one iterator; each item goes to one of them.
    """

    def __init__(
        self,
        caller: Caller,
        stream: AsyncStream,
        window: int,
        input_pipe: Pipe | None = None,
        input: Iterable[Any] | None = None,
    ) -> None:
        self._caller = caller
        self.aio = stream
        """The async stream underneath (use it only on the loop thread)."""
        self._stream: AsyncStream | None = stream  # handed to the pump at the first step
        self._pipe = Pipe(window, caller.call_soon, caller.ended)
        self._input_pipe, self._input = input_pipe, input
        self._finished = threading.Event()  # set when the pump has ended
        self._lock = threading.Lock()
        self._started = False
        self._done = False
        self.result: Any = None
        """The final value of the stream (the request's result), once the loop has ended."""

    def __iter__(self) -> StreamIterator:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        if not self._started:
            self._start()
        try:
            return self._pipe.get()
        except StopIteration as end:
            self.result = end.value
            self._done = True
            raise StopIteration from None
        except PipeClosed:  # closed by another thread meanwhile
            raise StopIteration from None
        except BaseException:  # the stream's error (it has ended), or a Ctrl-C here
            self.close()
            raise

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            if self._stream is None:  # closed meanwhile (by another thread)
                raise StopIteration
            self._caller.call(
                _start_pump, self._caller, self._stream, self._pipe, self._input_pipe,
                self._finished,
            )  # fmt: skip
            self._stream = None  # the pump's now
            self._started = True
            if self._input_pipe is not None and self._input is not None:
                threading.Thread(
                    target=feed, args=(self._input, self._input_pipe), name=INPUT_THREAD,
                    daemon=True,  # an input that blocks forever must not keep the process
                ).start()  # fmt: skip
                self._input = None

    def close(self) -> None:
        """Stop reading: cancel the request unless its stream has ended, and wait until the
        cancellation is sent (not when called on the loop thread). Idempotent."""
        self._done = True
        self._stream = self._input = None
        self._pipe.close()
        if self._input_pipe is not None:
            self._input_pipe.close()
        if self._started and not self._caller.on_loop_thread():
            # The pump ends soon after the close reaches the loop; a loop that has ended has
            # ended the pump too (the check guards against waiting for a loop that is gone).
            while not self._finished.wait(0.5) and self._caller.call_soon(_nothing):
                pass

    def __enter__(self) -> StreamIterator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Never waits: a finalizer may run on any thread, the loop's included.
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            pipe.close()
            if self._input_pipe is not None:
                self._input_pipe.close()


def _nothing() -> None:
    pass


async def _start_pump(
    caller: Caller,
    stream: AsyncStream,
    pipe: Pipe,
    input_pipe: Pipe | None,
    finished: threading.Event,
) -> None:
    task_group = caller.task_group
    if task_group is None:
        raise WorkerUnavailable("the blocking ProcessManager is closed: streams need it open")
    task_group.start_soon(_pump, stream, pipe, input_pipe, finished, name="blocking stream")


async def _pump(
    stream: AsyncStream, pipe: Pipe, input_pipe: Pipe | None, finished: threading.Event
) -> None:
    """Move the stream's items into ``pipe`` until it ends, fails, or the pipe is closed."""
    scope = anyio.CancelScope()
    pipe.on_close = scope.cancel
    try:
        with scope:
            if pipe.closed:  # closed before on_close was set
                return
            try:
                async for item in stream:
                    if not await pipe.aput(item):
                        break
                else:
                    pipe.finish(stream.result)
            except Exception as exc:
                pipe.fail(exc)
    except anyio.get_cancelled_exc_class():
        pipe.fail(
            WorkerUnavailable(
                "the stream ended because its blocking ProcessManager closed (the 'with' block "
                "was left)"
            )
        )
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()  # cancels the request unless the stream has ended
        if input_pipe is not None:
            input_pipe.close()  # the input thread stops reading
        finished.set()
