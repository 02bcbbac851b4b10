"""Blocking pools, and the plain iterator of their ``map``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterable, Iterable, Iterator
from types import TracebackType
from typing import Any, Unpack

from .. import pool as _pool
from .._pool_map import PoolMap
from .._pool_streams import PoolStream
from .._stream_messages import DEFAULT_WINDOW
from ..option_types import MapOptions
from ._caller import Caller
from ._direct import NOT_SENT, direct_pool_call
from ._handles import ProcessHandle, call_sync, open_stream
from ._streams import StreamIterator, check_input, request_with_input

__all__ = ["MapIterator", "PoolStreamIterator", "WorkerPool"]

_BATCH = 256  # results fetched per crossing of threads, at most (only those already in)


class MapIterator(Iterator[Any]):
    """The results of the blocking :meth:`WorkerPool.map`: a plain iterator.

    ``close()`` (or ``with pool.map(...) as results:``, or dropping it after a ``break``)
    cancels what is still in flight.
    """

    def __init__(self, caller: Caller, mapped: PoolMap, batch: int) -> None:
        self._caller = caller
        self.aio = mapped
        """The async map underneath (use it only on the loop thread)."""
        self._mapped = mapped
        self._batch = batch
        self._results: list[Any] = []
        self._done = False

    def __iter__(self) -> MapIterator:
        return self

    def __next__(self) -> Any:
        if not self._results:
            if self._done:
                raise StopIteration
            try:
                self._results = self._caller.call(self._mapped.next_batch, self._batch)
            except BaseException:
                self.close()
                raise
            if not self._results:
                self.close()
                raise StopIteration
            self._results.reverse()
        return self._results.pop()

    def close(self) -> None:
        """Cancel what is in flight and wait until it has ended; idempotent."""
        if not self._done:
            self._done = True
            self._results = []
            self._caller.call(self._mapped.aclose)

    def __enter__(self) -> MapIterator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            # RuntimeError: the portal is gone (its manager closed): nothing is left to cancel.
            with contextlib.suppress(RuntimeError):
                self.close()


class PoolStreamIterator(StreamIterator):
    """The items of a blocking pool stream (:meth:`WorkerPool.stream`), as
    :class:`StreamIterator`, and the worker serving it."""

    @property
    def worker(self) -> ProcessHandle | None:
        """The worker serving the stream; None before the first step."""
        stream = self.aio
        assert isinstance(stream, PoolStream)
        handle = stream.worker
        return None if handle is None else ProcessHandle(self._caller, handle)


class WorkerPool:
    """The blocking twin of :class:`aspect_ipc.WorkerPool`; from
    :meth:`ProcessManager.spawn_pool`. Safe to call from several threads at once."""

    def __init__(self, caller: Caller, pool: _pool.WorkerPool) -> None:
        self._caller = caller
        self._portal = caller.portal
        self.aio = pool
        """The async pool underneath (use it only on the loop thread)."""

    def __repr__(self) -> str:
        return repr(self.aio)

    @property
    def size(self) -> int:
        """The number of slots."""
        return self.aio.size

    @property
    def handles(self) -> list[ProcessHandle]:
        """The current worker of every slot (blocking handles)."""
        return [ProcessHandle(self._caller, h) for h in self.aio.handles]

    @property
    def failed(self) -> list[ProcessHandle]:
        """The workers that have failed for good."""
        return [ProcessHandle(self._caller, h) for h in self.aio.failed]

    def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.WorkerPool.request` (``input`` as in
        :meth:`ProcessHandle.request`: read on the calling thread)."""
        return self._request("control", method, params, timeout, retries, input)

    def request_via_data(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Iterable[Any] | None = None,
    ) -> Any:
        """Blocking :meth:`aspect_ipc.WorkerPool.request_via_data`."""
        return self._request("data", method, params, timeout, retries, input)

    def _request(
        self,
        via: str,
        method: str,
        params: Any,
        timeout: float | None,
        retries: int,
        input: Iterable[Any] | None,
    ) -> Any:
        call = self.aio.request if via == "control" else self.aio.request_via_data
        send = functools.partial(call, method, params, timeout=timeout, retries=retries)
        if input is None:
            self._caller.on_other_thread()
            caller, pool = self._caller, self.aio
            result = direct_pool_call(caller, pool, via, method, params, timeout, retries)
            if result is not NOT_SENT:
                return result
            return self._caller.call(send)
        check_input(input)
        if retries:  # checked before any item is read
            raise ValueError(
                f"{method!r}: retries cannot be used with input: an input stream is read once "
                "and cannot be sent again; retry the whole call with a fresh input instead"
            )
        return request_with_input(self._caller, lambda items: send(input=items), input)

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> PoolStreamIterator:
        """Blocking :meth:`aspect_ipc.WorkerPool.stream`: a plain iterator, as
        :meth:`ProcessHandle.stream`, on the least-loaded live worker; never retried."""
        return open_stream(
            self._caller, self.aio.stream, method, params, window, input, PoolStreamIterator
        )

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Iterable[Any] | None = None,
    ) -> PoolStreamIterator:
        """Like :meth:`stream`, on the data channel."""
        return open_stream(
            self._caller,
            self.aio.stream_via_data,
            method,
            params,
            window,
            input,
            PoolStreamIterator,
        )

    def map(
        self,
        method: str,
        iterable: Iterable[Any] | AsyncIterable[Any],
        **options: Unpack[MapOptions],
    ) -> MapIterator:
        """Blocking :meth:`aspect_ipc.WorkerPool.map` (same options): a plain iterator.

        The input is read on the loop thread, lazily: a generator that blocks delays every
        worker's traffic while it does.
        """
        mapped = self._caller.call(
            call_sync, functools.partial(self.aio.map, method, iterable, **options)
        )
        return MapIterator(self._caller, mapped, _BATCH)

    def resize(self, size: int) -> None:
        """Blocking :meth:`aspect_ipc.WorkerPool.resize`."""
        self._caller.call(self.aio.resize, size)

    def stop(self, *, grace: float | None = None) -> None:
        """Blocking :meth:`aspect_ipc.WorkerPool.stop`."""
        self._caller.call(functools.partial(self.aio.stop, grace=grace))
