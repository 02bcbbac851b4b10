"""The baselines' clients: the same echo as aspect-ipc's, without aspect-ipc.

- **raw socket**: a Unix stream socket with blocking I/O and the data channel's framing (4-byte
  big-endian length + payload), but no codec and no JSON-RPC. The server ``recv_into``s each
  frame into one preallocated buffer and sends that buffer back; the client sends a prebuilt frame
  and also ``recv_into``s a preallocated buffer. The practical limit for two Python processes.
- **mp.Pipe**: ``multiprocessing.Pipe()`` with ``send_bytes``/``recv_bytes`` on both ends, the
  standard library's own answer to "send bytes to another Python process".

The servers (baseline_servers.py) are started with the ``spawn`` method: fresh interpreters, like
a worker. For the seed's payloads (seed.py) each gets a second server: the raw socket sends the
information packed as fixed-width binary and its server answers with a frame of the packed
answer's size, without looking at the data (no codec, no work); mp.Pipe sends
``(method, params)`` with ``Connection.send`` (pickle) and its server computes the answer in
Python (what a user would write instead). gRPC's clients are in grpc_links.py.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Protocol

from baseline_servers import READY, read_exactly, serve_pipe, serve_pipe_seed, serve_raw_socket
from measure import payload
from seed import SeedPayload

__all__ = ["FunctionLink", "Link", "MpPipeBaseline", "RawSocketBaseline"]

_CONTEXT = multiprocessing.get_context("spawn")


class Link(Protocol):
    """One payload over one transport: send a request, receive an answer, or both; check one."""

    def send(self) -> None: ...
    def receive(self) -> int: ...
    def round_trip(self) -> None: ...
    def check(self) -> None: ...


class FunctionLink:
    """A :class:`Link` of functions; ``round_trip`` is send + receive unless given."""

    def __init__(
        self,
        send: Callable[[], None],
        receive: Callable[[], int],
        check: Callable[[], None],
        round_trip: Callable[[], None] | None = None,
    ) -> None:
        self.send, self.receive, self.check = send, receive, check

        def both() -> None:
            send()
            receive()

        self.round_trip = round_trip or both


class RawSocketBaseline:
    """A blocking Unix-socket echo client and its server process; a context manager.

    With ``seed=True`` the server answers each frame with a frame of the size that the first 4
    bytes of its payload ask for (see :meth:`seed_link`) instead of echoing it.
    """

    def __init__(self, capacity: int, *, seed: bool = False) -> None:
        self._capacity = capacity
        self._seed = seed
        self._directory = ""
        self._server: multiprocessing.process.BaseProcess | None = None
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buffer = memoryview(bytearray(capacity))
        self._header = memoryview(bytearray(4))

    def __enter__(self) -> RawSocketBaseline:
        self._directory = tempfile.mkdtemp(prefix="aspect-ipc-bench-")
        path = os.path.join(self._directory, "echo.sock")
        self._server = _CONTEXT.Process(
            target=serve_raw_socket, args=(path, self._capacity, self._seed), daemon=True
        )
        try:
            self._server.start()
            deadline = time.monotonic() + 30
            while True:  # the server binds once its interpreter is up
                try:
                    self._socket.connect(path)
                    return self
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline or not self._server.is_alive():
                        raise RuntimeError("the raw socket echo server did not start") from None
                    time.sleep(0.002)
        except BaseException:
            if self._server.pid is not None:
                self._server.kill()
            self.__exit__()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()
        if self._server is not None and self._server.pid is not None:
            self._server.join(10)
            if self._server.is_alive():
                self._server.kill()
                self._server.join()
        shutil.rmtree(self._directory, ignore_errors=True)

    def link(self, size: int) -> Link:
        data = payload(size)
        altered = f"raw socket echo of {size} bytes came back altered"
        return self._link(size.to_bytes(4, "big") + data, data, altered)

    def seed_link(self, seed: SeedPayload) -> Link:
        """The seed payload packed: ``seed.packed_request`` bytes out, ``packed_response`` back."""
        if not self._seed:
            raise RuntimeError("seed_link needs a server started with seed=True")
        answer = seed.packed_response
        data = answer.to_bytes(4, "big") + payload(seed.packed_request - 4)
        altered = f"raw socket: the answer to {seed.label} came back altered"
        return self._link(len(data).to_bytes(4, "big") + data, data[:answer], altered)

    def _link(self, frame: bytes, expected: bytes, altered: str) -> Link:
        """Send ``frame``; receive one frame into the preallocated buffer; check: ``expected``."""
        sock, header, buffer = self._socket, self._header, self._buffer

        def send() -> None:
            sock.sendall(frame)

        def receive() -> int:
            if not read_exactly(sock, header):
                raise EOFError("the raw socket server closed the connection")
            length = int.from_bytes(header, "big")
            read_exactly(sock, buffer[:length])
            return length

        def check() -> None:
            send()
            length = receive()
            if buffer[:length] != expected:
                raise RuntimeError(altered)

        return FunctionLink(send, receive, check)


class MpPipeBaseline:
    """A ``multiprocessing.Pipe`` echo client and its server process; a context manager.

    With ``seed=True`` the server computes the seed methods' answers instead (see
    :meth:`seed_link`).
    """

    def __init__(self, capacity: int, *, seed: bool = False) -> None:
        self._connection, child_end = _CONTEXT.Pipe(duplex=True)
        self._child_end = child_end
        self._seed = seed
        self._server = _CONTEXT.Process(
            target=serve_pipe_seed if seed else serve_pipe, args=(child_end,), daemon=True
        )

    def __enter__(self) -> MpPipeBaseline:
        try:
            self._server.start()
        finally:
            self._child_end.close()
        # Wait until the server runs (a new interpreter: a few hundred ms), as aspect-ipc's spawn
        # waits for its worker's handshake: otherwise the first timed echo would include it.
        try:
            if self._connection.recv_bytes() != READY:
                raise RuntimeError("the mp.Pipe server did not say it was ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()
        if self._server.pid is not None:
            self._server.join(10)
            if self._server.is_alive():
                self._server.kill()
                self._server.join()

    def link(self, size: int) -> Link:
        data = payload(size)
        connection = self._connection

        def send() -> None:
            connection.send_bytes(data)

        def receive() -> int:
            return len(connection.recv_bytes())

        def check() -> None:
            connection.send_bytes(data)
            if connection.recv_bytes() != data:
                raise RuntimeError(f"mp.Pipe echo of {size} bytes came back altered")

        return FunctionLink(send, receive, check)

    def seed_link(self, seed: SeedPayload) -> Link:
        """``(method, params)`` pickled out, the computed answer pickled back."""
        if not self._seed:
            raise RuntimeError("seed_link needs a server started with seed=True")
        request = (seed.method, seed.params)
        connection = self._connection

        def send() -> None:
            connection.send(request)

        def receive() -> int:
            connection.recv()
            return 0

        def check() -> None:
            connection.send(request)
            if connection.recv() != seed.expected:
                raise RuntimeError(f"mp.Pipe: the answer to {seed.label} is wrong")

        return FunctionLink(send, receive, check)
