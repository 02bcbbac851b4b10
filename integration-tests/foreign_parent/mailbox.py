"""What arrived on a channel, in arrival order, for tests to wait on and take from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Item", "Mailbox", "is_notification", "is_response"]


@dataclass
class Item:
    """One received line or frame: the raw bytes, the decoded message (or the decode error) and
    the monotonic time it was read."""

    raw: bytes
    message: Any
    error: str | None
    at: float

    def __repr__(self) -> str:
        shown = self.raw if len(self.raw) <= 300 else self.raw[:300] + b"..."
        return f"Item({shown!r})"


class Mailbox:
    """A list of items filled by a reader, and read by a test: ``next`` takes the oldest item
    not yet taken, ``take`` the oldest one that matches. ``close`` marks the end of the stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Item] = []
        self._taken: set[int] = set()
        self.closed_at: float | None = None
        self._changed = threading.Condition()

    def put(self, item: Item) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.closed_at = time.monotonic()
            self._changed.notify_all()

    def take(self, match: Callable[[Item], bool], timeout: float = 5.0) -> Item:
        """The oldest untaken item for which ``match`` is true; AssertionError after
        ``timeout`` seconds or at the end of the stream."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, item in enumerate(self.items):
                    if index not in self._taken and match(item):
                        self._taken.add(index)
                        return item
                left = deadline - time.monotonic()
                if self.closed_at is not None or left <= 0:
                    ended = (
                        "the stream ended" if self.closed_at else f"{timeout} s passed"
                    )
                    raise AssertionError(
                        f"{self.name}: {ended} without the expected message; "
                        f"untaken: {self.untaken()}"
                    )
                self._changed.wait(left)

    def next(self, timeout: float = 5.0) -> Item:
        """The oldest item not taken yet."""
        return self.take(lambda item: True, timeout)

    def find(self, match: Callable[[Item], bool]) -> Item | None:
        """The oldest untaken item for which ``match`` is true, taken; None if there is none."""
        with self._changed:
            for index, item in enumerate(self.items):
                if index not in self._taken and match(item):
                    self._taken.add(index)
                    return item
            return None

    def response(self, request_id: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The response (or error response) whose id is ``request_id``, of the same type."""
        message: dict[str, Any] = self.take(is_response(request_id), timeout).message
        return message

    def notification(self, method: str, timeout: float = 5.0) -> dict[str, Any]:
        """The oldest untaken notification (no id) of ``method``."""
        message: dict[str, Any] = self.take(is_notification(method), timeout).message
        return message

    def untaken(self) -> list[Item]:
        with self._changed:
            return [item for i, item in enumerate(self.items) if i not in self._taken]

    def quiet_for(self, seconds: float) -> list[Item]:
        """Waits ``seconds`` and returns what arrived untaken meanwhile (expected: nothing)."""
        time.sleep(seconds)
        return self.untaken()

    def wait_closed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.closed_at is None and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self.closed_at is not None


def is_response(request_id: Any) -> Callable[[Item], bool]:
    """Matches the response or error response carrying exactly ``request_id`` (type included)."""

    def match(item: Item) -> bool:
        message = item.message
        return (
            isinstance(message, dict)
            and "method" not in message
            and "id" in message
            and message["id"] == request_id
            and type(message["id"]) is type(request_id)
        )

    return match


def is_notification(method: str) -> Callable[[Item], bool]:
    """Matches a notification (a message without id) of ``method``."""

    def match(item: Item) -> bool:
        message = item.message
        return (
            isinstance(message, dict)
            and message.get("method") == method
            and ("id" not in message)
        )

    return match
