"""The baselines' servers, run in child processes (``multiprocessing``'s spawn start method).

Kept apart from the clients (baseline_links.py) so that what a spawned child imports to find its
target is small and has no side effects.
"""

from __future__ import annotations

import socket
from multiprocessing.connection import Connection

from seed import compute

__all__ = ["READY", "read_exactly", "serve_pipe", "serve_pipe_seed", "serve_raw_socket"]


def read_exactly(sock: socket.socket, view: memoryview) -> bool:
    """Fill ``view`` from ``sock``; False on a clean EOF before the first byte."""
    first = True
    while view:
        count = sock.recv_into(view)
        if not count:
            if first:
                return False
            raise EOFError("the peer closed the socket inside a frame")
        view = view[count:]
        first = False
    return True


def serve_raw_socket(path: str, capacity: int, seed: bool) -> None:
    """Echo length-prefixed frames on ``path`` for one client, through one preallocated buffer.

    With ``seed``, answer each frame with its first N payload bytes instead, N being the number
    in its first 4 payload bytes: the answer's size without any work on the data.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        connection, _ = server.accept()
    buffer = memoryview(bytearray(4 + capacity))
    with connection:
        while read_exactly(connection, buffer[:4]):
            length = int.from_bytes(buffer[:4], "big")
            read_exactly(connection, buffer[4 : 4 + length])
            if seed:
                length = int.from_bytes(buffer[4:8], "big")
                buffer[:4] = buffer[4:8]
            connection.sendall(buffer[: 4 + length])


READY = b"ready"
"""What a pipe server sends first, once it runs: the client waits for it before timing anything."""


def serve_pipe(connection: Connection) -> None:
    """Echo every ``recv_bytes`` message back with ``send_bytes`` until the other end closes."""
    with connection:
        connection.send_bytes(READY)
        while True:
            try:
                message = connection.recv_bytes()
            except EOFError:
                return
            connection.send_bytes(message)


def serve_pipe_seed(connection: Connection) -> None:
    """Answer every ``(method, params)`` received with ``recv`` with its result, with ``send``."""
    with connection:
        connection.send_bytes(READY)
        while True:
            try:
                method, params = connection.recv()
            except EOFError:
                return
            connection.send(compute(method, params))
