"""``manager.events()`` for code without an event loop: a plain, blocking iterator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType

from .._events import EventStream
from ..options import ProcessEvent
from ._caller import Caller

__all__ = ["EventIterator"]


class EventIterator(Iterator[ProcessEvent]):
    """The events of the blocking :meth:`ProcessManager.events`, one per ``next()``, which waits
    for the next event.

    The iteration ends when the manager closes (after the events buffered by then), or at
    :meth:`close` (also ``with manager.events() as events:``, or dropping the iterator).
    """

    def __init__(self, caller: Caller, stream: EventStream, is_open: Callable[[], bool]) -> None:
        self._caller = caller
        self.aio = stream
        """The async event stream underneath (use it only on the loop thread)."""
        self._stream = stream
        self._is_open = is_open  # whether the blocking manager (and its loop thread) still runs
        self._done = False

    def __iter__(self) -> EventIterator:
        return self

    def __next__(self) -> ProcessEvent:
        if self._done:
            raise StopIteration
        event: ProcessEvent | None = None
        # Once the stream has ended (the manager closed) nothing more is put in it: what it
        # holds is taken here, without crossing to a loop thread that may be gone.
        if not self._stream._ended and self._is_open():
            try:
                event = self._caller.call(_next_or_none, self._stream)
            except RuntimeError:
                if self._is_open():
                    raise  # not the loop closing under us: a real error
        if event is None and self._stream._ended and self._stream._buffer:
            event = self._stream._buffer.popleft()
        if event is None:  # the manager closed and everything buffered was taken
            self._done = True
            raise StopIteration
        return event

    def close(self) -> None:
        """Stop receiving events (what is buffered is dropped); idempotent."""
        if not self._done:
            self._done = True
            if self._is_open():
                self._caller.call(self._stream.aclose)

    def __enter__(self) -> EventIterator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


async def _next_or_none(stream: EventStream) -> ProcessEvent | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
