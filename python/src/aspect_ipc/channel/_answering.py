"""Answering the peer's requests: the response to what a handler did, and its sending, from a
task (which may wait for room in the write queue) or from the reader (which may not wait)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import anyio

from .._handler_errors import handler_error, handler_failed
from ..errors import ChannelClosed, CodecError, IpcError, SizeLimitError
from ..jsonrpc import ErrorCode, Request
from ._handlers import Handler
from ._outbox import Buffer
from ._outgoing import borrows
from ._stream_ends import send_yields
from ._stream_io import StreamIO

__all__ = ["Answering"]


class Answering(StreamIO):
    """The responses to the peer's requests, and how they are sent."""

    send_tracebacks: bool = True
    """Whether a ``-32000`` handler error carries ``data.traceback`` (spec 4.10, 5.3)."""
    on_handler_error: Callable[[str, BaseException], None] | None = None
    """Called with the method and the error when a request handler fails without a JSON-RPC
    error of its own, answered ``-32000`` (a worker writes it to stderr)."""

    async def _handled(
        self, request: Request, handler: Handler, is_async: bool, scope: anyio.CancelScope
    ) -> dict[str, Any] | None:
        """The response to ``request``, from its handler, run in ``scope``; None if the scope
        caught its cancellation ($/cancelRequest or the drain)."""
        with scope:
            try:
                result = await handler(request.params) if is_async else handler(request.params)
                if not is_async:
                    if inspect.isawaitable(result):
                        result = await result
                    elif inspect.isasyncgen(result):  # its yields are an output stream
                        await send_yields(result)
                        result = None
                return self.protocol.response(request.id, result)
            except BaseException as exc:
                if not handler_failed(exc, scope):
                    raise
                return self._failed_response(request, exc)
        return None

    def _failed_response(self, request: Request, exc: BaseException) -> dict[str, Any]:
        """The error response to a request whose handler raised ``exc``."""
        code, text, data = handler_error(exc, send_traceback=self.send_tracebacks)
        if self.on_handler_error is not None and code == ErrorCode.HANDLER_ERROR:
            self.on_handler_error(request.method, exc)  # not a typed error: a bug
        return self.protocol.error_response(request.id, code, text, data)

    def _unsendable(self, request: Request, exc: IpcError) -> dict[str, Any]:
        """The error response sent instead of a response that cannot be sent: too large
        (any response, result or error: the caller is answered), or not encodable."""
        if isinstance(exc, SizeLimitError):
            limit = "max_frame_size" if exc.kind == "frame_too_large" else "max_line_length"
            text = f"response of {exc.size} bytes exceeds {limit} of {exc.limit} bytes"
            return self.protocol.error_response(
                request.id, ErrorCode.MESSAGE_TOO_LARGE, text, exc.data
            )
        text = f"the result of {request.method!r} cannot be sent: {exc}"
        return self.protocol.error_response(request.id, ErrorCode.INTERNAL_ERROR, text)

    async def _send_response(self, request: Request, response: dict[str, Any]) -> None:
        """Send ``response`` from a task, waiting while the write queue is over its limit."""
        try:
            await self._send(response)
        except (SizeLimitError, CodecError) as exc:
            await self._send_quietly(self._unsendable(request, exc))
        except ChannelClosed:
            pass
        except (SystemExit, KeyboardInterrupt) as exc:  # an encode hook's sys.exit()
            if not self._handler_exited(exc):
                raise

    def _answer_now(self, request: Request, response: dict[str, Any]) -> None:
        """Send ``response`` without waiting: written now or queued (the caller looked at the
        queue's size first); an answer that holds a buffer of the handler's (from an encode
        hook) goes through a task, which waits until it is written, as :meth:`_send` does."""
        try:
            try:
                parts = self._prepare(response)
            except (SizeLimitError, CodecError) as exc:
                parts = self._prepare(self._unsendable(request, exc))
            if borrows(parts):
                assert self._task_group is not None
                self._task_group.start_soon(self._put_borrowed, parts)
            else:
                self._outbox.offer(parts)  # False: closed, and the answer goes nowhere
        except IpcError as exc:
            self._log.debug("%s: could not answer %r: %s", self.name, request.id, exc)
        except (SystemExit, KeyboardInterrupt) as exc:  # as in _send_response
            if not self._handler_exited(exc):
                raise

    async def _put_borrowed(self, parts: list[Buffer]) -> None:
        with suppress(ChannelClosed):
            await self._outbox.put(parts, borrowed=True)
