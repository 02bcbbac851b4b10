"""Handlers: what runs for the peer's requests and notifications, and the table that keeps them
for a worker's channels across the channels' lives."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._stream_messages import check_input_window
from ..constants import METHOD_PING, RESERVED_PREFIX

if TYPE_CHECKING:
    from ._channel import Channel

__all__ = [
    "Handler",
    "HandlerTable",
    "check_handler",
    "check_request_method",
    "check_user_method",
    "ping",
]

Handler = Callable[[Any], Any]
"""A request or notification handler: ``handler(params)``, sync or async."""


class HandlerTable:
    """Handlers declared for a worker's two channels, before and across the channels' lives.

    A parent's handle and a worker both let users declare handlers at any time, while the
    channels they belong on come and go (a restart makes new ones): the table keeps them and
    installs them on each new channel, and on the live one when one is declared late.
    """

    CHANNELS = ("control", "data")

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, bool], dict[str, Handler]] = {
            (via, notification): {} for via in self.CHANNELS for notification in (False, True)
        }
        self._input_windows: dict[tuple[str, str], int] = {}  # (via, method): input_window
        self.on_install: Callable[[Channel, str], None] | None = None
        """Called with each new channel and its name as it is installed on, before it runs
        (a handle gives it its metrics and tracer there)."""

    def add(
        self,
        via: str,
        method: str,
        handler: Handler,
        *,
        notification: bool,
        live: Channel | None,
        input_window: int | None = None,
    ) -> None:
        """Keep ``handler`` for ``method`` on channel ``via``; install it on ``live`` too.

        ``input_window`` (requests only; 1..1024, default 16): the items of an input stream the
        handler's channel buffers for it (spec 13.3). A bad value raises ValueError naming it.
        """
        self.check(via, method)
        check_handler(method, handler)
        if input_window is not None:
            self._input_windows[via, method] = check_input_window(method, input_window)
        else:
            self._input_windows.pop((via, method), None)
        self._handlers[via, notification][method] = handler
        if live is not None:
            if notification:
                live.on_notification(method, handler)
            else:
                live.on_request(method, handler, input_window=input_window)

    def check(self, via: str, method: str) -> None:
        """Raise ValueError unless ``via`` names a channel and ``method`` is not reserved."""
        if via not in self.CHANNELS:
            raise ValueError(f"via must be 'control' or 'data', not {via!r}")
        check_user_method(method)

    def install(self, channel: Channel, via: str) -> None:
        """Register every handler kept for ``via`` on ``channel``."""
        if self.on_install is not None:
            self.on_install(channel, via)
        for method, handler in self._handlers[via, False].items():
            channel.on_request(method, handler, input_window=self._input_windows.get((via, method)))
        for method, handler in self._handlers[via, True].items():
            channel.on_notification(method, handler)


def check_user_method(method: str) -> None:
    """Raise TypeError for a method name that is not a string, ValueError for an empty one or
    a reserved (``$/``) one: those are the SDK's (registered, or sent, by the library)."""
    if not isinstance(method, str):
        raise TypeError(
            f"a method name must be a string, not {type(method).__name__} {method!r:.80}"
        )
    if not method:
        raise ValueError("a method name must not be empty")
    if method.startswith(RESERVED_PREFIX):
        raise ValueError(f"method names starting with {RESERVED_PREFIX!r} are reserved: {method!r}")


def check_request_method(method: str) -> None:
    """:func:`check_user_method` for a request the program sends, which may also be ``$/ping``
    (a read-only check that the peer answers); the other ``$/`` methods are the library's to
    send (``$/shutdown`` behind the supervisor's back would end the worker, say)."""
    if method != METHOD_PING:
        check_user_method(method)


def check_handler(method: str, handler: object) -> None:
    """Raise TypeError unless ``handler`` is a function (a coroutine object, made by calling an
    async function, is not: it would run once, and fail every later call)."""
    if inspect.iscoroutine(handler) or not callable(handler):
        raise TypeError(
            f"the handler of {method!r} must be a function or an async function, not "
            f"{type(handler).__name__} {handler!r:.80}"
            + (
                " (pass the function itself, without calling it)"
                if inspect.iscoroutine(handler)
                else ""
            )
        )


def ping(params: Any) -> dict[str, Any]:
    """The built-in ``$/ping``: an empty result."""
    return {}
