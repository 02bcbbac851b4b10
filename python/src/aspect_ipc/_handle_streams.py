"""Streams on a worker's channels, as a :class:`ProcessHandle` offers them (spec 13): errors
name the worker, the channel and the method, and a channel closed by a dying worker raises
WorkerCrashed, as for a request."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from ._calls import annotated
from ._handle_core import HandleCore
from ._stream_messages import DEFAULT_WINDOW, check_output_window
from .channel import check_request_method, check_user_method
from .errors import ChannelClosed, IpcError, RemoteError, RequestTimeout, WorkerCrashed, fresh

if TYPE_CHECKING:
    from .channel import Channel, StreamCall

__all__ = ["StreamCalls", "WorkerStream", "translate_call_error"]

Items = AsyncIterable[Any] | Iterable[Any]


async def translate_call_error(
    exc: BaseException, worker_id: str, via: str, method: str, crash: Callable[[], Awaitable[Any]]
) -> BaseException:
    """The error a request or a stream step raises: annotated if remote; for a closed channel,
    what the worker's end says (``crash()`` waits for it and returns WorkerCrashed, or None)."""
    if isinstance(exc, RemoteError):
        return annotated(exc, worker_id, via, method)
    if isinstance(exc, ChannelClosed) and not isinstance(exc, WorkerCrashed):
        crashed: BaseException | None = await crash()
        if crashed is not None:
            return fresh(crashed)
    return exc


class WorkerStream:
    """``async for item in handle.stream_via_data(method, params)``: the items of the worker's
    output stream; then :attr:`result` is the final value (the request's result).

    Breaking out of the loop cancels the request (the worker is sent ``$/cancelRequest``), at
    once when the stream object is not kept, or on :meth:`aclose` / leaving ``async with``.
    A worker that dies fails the next step with WorkerCrashed.
    """

    def __init__(
        self,
        open_channel: Callable[[], Awaitable[Channel]],
        translate: Callable[[BaseException], Awaitable[BaseException]],
        method: str,
        params: dict[str, Any] | None,
        window: int,
        input: Items | None,
    ) -> None:
        check_output_window(window)
        self._open_channel, self._translate = open_channel, translate
        self._method, self._params, self._window, self._input = method, params, window, input
        self._call: StreamCall | None = None
        self._closed = False  # aclose() before the first step: nothing is ever sent
        self.result: Any = None
        """The final value of the stream, once the loop has ended normally."""

    def __aiter__(self) -> WorkerStream:
        return self

    async def __anext__(self) -> Any:
        if self._closed and self._call is None:
            raise StopAsyncIteration  # closed before it started, as a finished one ends
        try:
            if self._call is None:
                channel = await self._open_channel()
                self._call = channel.stream(
                    self._method, self._params, window=self._window, input=self._input
                )
            try:
                return await self._call.__anext__()
            except StopAsyncIteration:
                self.result = self._call.result
                raise
        except (RemoteError, ChannelClosed) as exc:
            with anyio.CancelScope(shield=True):
                error = await self._translate(exc)
            if error is exc:
                raise
            raise error from error.__cause__

    async def aclose(self) -> None:
        """Stop reading: the request is cancelled unless its stream has ended (or, if the
        stream has not started, it never is: iterating it afterwards ends at once)."""
        self._closed = True
        if self._call is not None:
            await self._call.aclose()

    async def __aenter__(self) -> WorkerStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class StreamCalls(HandleCore):
    """The stream calls of a :class:`ProcessHandle`."""

    async def _channel_when_running(self, via: str) -> Channel:
        raise NotImplementedError  # ProcessHandle's

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Items | None = None,
    ) -> WorkerStream:
        """Call ``method`` on the control channel with an output stream (spec 13):
        ``async for item in handle.stream("countTo", {"n": 3})``; then ``.result``.

        ``window`` (1..1024, default 16) is how many items may be in flight or buffered here: a
        loop that stops reading stops the worker after that many. ``input`` (an iterable or
        async iterable) opens an input stream too. Items on control are JSON values; binary
        items need :meth:`stream_via_data`. There is no deadline: use ``anyio.fail_after``.
        """
        return self._stream("control", method, params, window, input)

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Items | None = None,
    ) -> WorkerStream:
        """Like :meth:`stream`, on the data channel (MessagePack: binary items travel as is)."""
        return self._stream("data", method, params, window, input)

    def _stream(
        self, via: str, method: str, params: Any, window: int, input: Items | None
    ) -> WorkerStream:
        check_user_method(method)
        done = [self._incarnation_done]

        async def open_channel() -> Channel:
            channel = await self._channel_when_running(via)
            done[0] = self._incarnation_done
            return channel

        async def translate(exc: BaseException) -> BaseException:
            return await translate_call_error(
                exc, self.id, via, method, lambda: self._crash(done[0])
            )

        return WorkerStream(open_channel, translate, method, params, window, input)

    async def _crash(self, incarnation_done: anyio.Event) -> IpcError | None:
        """The verdict of the incarnation whose channel closed, once its exit status is in."""
        # A channel often sees the end (EOF) before the exit status is in, and the status says
        # what happened (WorkerCrashed, or a clean exit). The supervisor ends every incarnation
        # whose channel closed within the shutdown grace (then SIGKILL), so this wait is
        # bounded; the cap is a safety net for a busy event loop.
        with anyio.move_on_after(self._settings.shutdown_grace + 10.0):
            await incarnation_done.wait()
        return self._last_error

    async def _request_streaming(
        self, via: str, method: str, params: Any, input: Items, timeout: float | None
    ) -> Any:
        check_request_method(method)
        limit = self._settings.request_timeout if timeout is None else timeout
        finite = limit is not None and limit != float("inf")
        channel = None
        try:
            with anyio.fail_after(limit if finite else None):
                channel = await self._channel_when_running(via)
                done = self._incarnation_done
                try:
                    return await channel.request_streaming(method, params, input=input)
                except (RemoteError, ChannelClosed) as exc:
                    error = await translate_call_error(
                        exc, self.id, via, method, lambda: self._crash(done)
                    )
                    if error is exc:
                        raise
                    raise error from error.__cause__
        except TimeoutError:
            if channel is not None and channel.metrics is not None:  # sent: counted as any
                channel.metrics.timeouts += 1
            raise RequestTimeout(
                f"worker {self.id}: no response to {method!r} with an input stream on the {via} "
                f"channel within {limit:g} s; the worker was sent $/cancelRequest"
            ) from None
