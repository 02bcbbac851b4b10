"""One interface over both channels, so that a case written once runs on control and on data."""

from __future__ import annotations

from typing import Any

from foreign_parent.data import DataConnection
from foreign_parent.mailbox import Item, is_response
from foreign_parent.process import ForeignWorker
from foreign_parent.wire import MISSING, frame, request

__all__ = ["Via"]


class Via:
    """The ``control`` or ``data`` channel of ``worker``; ``data`` is its authenticated data
    connection (needed for ``name == "data"``). ``connection`` is None on control.

    ``send_raw`` takes a control line's text or a data frame's payload, written as it is.
    """

    def __init__(
        self, name: str, worker: ForeignWorker, data: DataConnection | None
    ) -> None:
        assert name == "control" or data is not None
        self.name = name
        self.worker = worker
        self.data = data
        self.connection = data if name == "data" else None
        self._next_id = 1000 if name == "control" else 2000

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def send(self, message: Any) -> None:
        if self.connection is None:
            self.worker.send(message)
        else:
            self.connection.send(message)

    def send_raw(self, raw: bytes) -> None:
        """A control line (``\\n`` added if missing) or a frame's payload, as they are."""
        if self.connection is None:
            self.worker.write(raw if raw.endswith(b"\n") else raw + b"\n")
        else:
            self.connection.send_raw(frame(raw))

    def call(
        self, method: str, params: Any = MISSING, timeout: float = 5.0
    ) -> dict[str, Any]:
        request_id = self.new_id()
        self.send(request(method, params, request_id))
        return self.response(request_id, timeout)

    def response(self, request_id: Any, timeout: float = 5.0) -> dict[str, Any]:
        if self.connection is None:
            return self.worker.control.response(request_id, timeout)
        return self.connection.response(request_id, timeout)

    def next(self, timeout: float = 5.0) -> Item:
        if self.connection is None:
            return self.worker.control.next(timeout)
        return self.connection.next(timeout)

    def forget_earlier(self) -> None:
        """Drops what arrived before (left by earlier cases on a shared worker)."""
        if self.connection is not None:
            self.connection.drain_now()
            inbox = self.connection.inbox
        else:
            inbox = self.worker.control
        while inbox.find(lambda item: True) is not None:
            pass

    def replies_before_ping(self, timeout: float = 5.0) -> list[Item]:
        """Sends ``$/ping`` and returns everything that arrived before its answer (which must
        come, with result ``{}``): after a message that must not be answered, expect []."""
        ping_id = self.new_id()
        self.send(request("$/ping", MISSING, ping_id))
        before: list[Item] = []
        while not is_response(ping_id)(item := self.next(timeout)):
            before.append(item)
        assert item.message.get("result") == {}, (
            f"{self.name}: $/ping answered {item!r}"
        )
        return before

    def __repr__(self) -> str:
        return self.name
