"""One connection to a worker's data socket (spec section 2, 7.4), read only when asked.

No reader thread: frames are read when a test waits for one, so that "what the worker had written
by now" is simply what the socket holds (`drain_now`), which makes cross-channel order checks
exact: a frame written before a control line is readable once that line has been read.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from typing import Any, Self

from foreign_parent.mailbox import Item, Mailbox, is_notification, is_response
from foreign_parent.wire import MISSING, frame, request, unpack

__all__ = ["DataConnection", "hello_params"]


def hello_params(token: Any, protocol: Any = 1) -> dict[str, Any]:
    return {"token": token, "protocol": protocol}


class DataConnection:
    """A client connection to ``path``. ``inbox`` holds every frame received, decoded."""

    def __init__(self, path: str, name: str = "data") -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.inbox = Mailbox(name)
        self._buffer = b""
        self.reset = (
            False  # the worker reset the connection (ECONNRESET) rather than EOF
        )
        self._next_id = 100

    # ---- sending ---------------------------------------------------------------------------
    def send(self, message: Any) -> None:
        """Sends one frame (``bytes`` are the payload as they are)."""
        self.send_raw(frame(message))

    def send_raw(self, data: bytes, *, tolerate_close: bool = False) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            if not tolerate_close:
                raise

    def call(
        self, method: str, params: Any = MISSING, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Sends a request with a fresh integer id and returns its response message."""
        self._next_id += 1
        self.send(request(method, params, self._next_id))
        return self.response(self._next_id, timeout)

    def hello(
        self, token: str, request_id: Any = 1, protocol: Any = 1
    ) -> dict[str, Any]:
        self.send(request("$/hello", hello_params(token, protocol), request_id))
        return self.response(request_id)

    def flood(
        self, head: bytes, total: int, timeout: float
    ) -> tuple[int, float | None]:
        """Sends ``head`` then up to ``total`` bytes of zeros as fast as the worker takes them.

        Returns (bytes of zeros the worker took, seconds from ``head`` until the connection was
        seen closed, or None if it was still open after ``timeout``).
        """
        chunk = b"\x00" * 65536
        start = time.monotonic()
        sent = 0
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(head)
            while sent < total:
                self.sock.settimeout(max(0.001, start + timeout - time.monotonic()))
                sent += self.sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return sent, time.monotonic() - start
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(None)
        # Everything was taken, or the send buffer filled up: is the connection closed now?
        left = start + timeout - time.monotonic()
        closed = self.wait_closed(max(0.0, left))
        return sent, (time.monotonic() - start) if closed else None

    # ---- receiving -------------------------------------------------------------------------
    def _pump(self, timeout: float) -> bool:
        """Reads what arrives within ``timeout`` seconds; False when nothing did."""
        if self.inbox.closed_at is not None:
            return False
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.reset, chunk = True, b""
        if not chunk:
            self.inbox.close()
            return True
        self._buffer += chunk
        now = time.monotonic()
        while len(self._buffer) >= 4:
            size = int.from_bytes(self._buffer[:4], "big")
            if len(self._buffer) < 4 + size:
                break
            payload, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
            self.inbox.put(_decoded(payload, now))
        return True

    def drain_now(self) -> list[Item]:
        """Every frame the socket already holds (nothing is waited for)."""
        while self._pump(0):
            pass
        return self.inbox.untaken()

    def take(self, match: Callable[[Item], bool], timeout: float = 5.0) -> Item:
        deadline = time.monotonic() + timeout
        while True:
            item = self.inbox.find(match)
            if item is not None:
                return item
            left = deadline - time.monotonic()
            if self.inbox.closed_at is not None or left <= 0:
                ended = (
                    "the worker closed the connection"
                    if self.inbox.closed_at
                    else "timeout"
                )
                raise AssertionError(
                    f"{self.inbox.name}: {ended} without the expected frame; "
                    f"untaken: {self.inbox.untaken()}"
                )
            self._pump(left)

    def next(self, timeout: float = 5.0) -> Item:
        return self.take(lambda item: True, timeout)

    def response(self, request_id: Any, timeout: float = 5.0) -> dict[str, Any]:
        message: dict[str, Any] = self.take(is_response(request_id), timeout).message
        return message

    def notification(self, method: str, timeout: float = 5.0) -> dict[str, Any]:
        message: dict[str, Any] = self.take(is_notification(method), timeout).message
        return message

    def quiet_for(self, seconds: float) -> list[Item]:
        """Reads for ``seconds`` and returns what arrived untaken (expected: nothing)."""
        deadline = time.monotonic() + seconds
        while (
            left := deadline - time.monotonic()
        ) > 0 and self.inbox.closed_at is None:
            self._pump(left)
        return self.inbox.untaken()

    def wait_closed(self, timeout: float) -> bool:
        """True once the worker has closed the connection (EOF or reset) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (
            self.inbox.closed_at is None and (left := deadline - time.monotonic()) > 0
        ):
            self._pump(left)
        return self.inbox.closed_at is not None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decoded(payload: bytes, at: float) -> Item:
    try:
        return Item(payload, unpack(payload), None, at)
    except (ValueError, TypeError) as error:  # msgpack's errors are ValueErrors
        return Item(payload, None, f"{type(error).__name__}: {error}", at)
