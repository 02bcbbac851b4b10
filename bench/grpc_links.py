"""gRPC as a peer: grpcio's client in Python, against a Go server or a Python server.

Both servers (bench/grpc/server.go, bench/grpc/server.py) serve one unary method,
/bench.Echo/Echo, on a Unix socket, answering each message with its own bytes. Neither side
generates code: the client's ``unary_unary`` has no serializers (bytes go out and come back as
they are), the servers pass the bytes through a raw codec or a handler without deserializers.
So the figures are gRPC's own cost: HTTP/2 frames, flow control, headers, its threads.

One in flight is a blocking call; more in flight are ``future()`` calls, kept outstanding by the
pipelined loop of blocking_cells.py.
"""

from __future__ import annotations

import os

# grpcio's core logs at INFO to stderr (a GOAWAY when a server stops): keep the report readable.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import queue
import shutil
import subprocess
import tempfile

import grpc
from baseline_links import FunctionLink, Link
from contenders import Contender
from measure import payload

__all__ = ["GrpcBaseline"]

_MAX_MESSAGE = 64 << 20
_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]
_METHOD = "/bench.Echo/Echo"


class GrpcBaseline:
    """A grpcio channel to a freshly started echo server (Go or Python); a context manager."""

    def __init__(self, contender: Contender) -> None:
        self._contender = contender
        self._directory = ""
        self._server: subprocess.Popen[str] | None = None
        self._channel: grpc.Channel | None = None

    def __enter__(self) -> GrpcBaseline:
        self._directory = tempfile.mkdtemp(prefix="aspect-ipc-bench-grpc-")
        path = os.path.join(self._directory, "echo.sock")
        where = ("-socket", path) if self._contender.kind == "grpc_go" else (path,)
        command = [self._contender.executable, *self._contender.args, *where]
        try:
            self._server = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert self._server.stdout is not None
            if self._server.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the gRPC echo server did not start: {' '.join(command)}")
            self._channel = grpc.insecure_channel(f"unix:{path}", options=_OPTIONS)
            grpc.channel_ready_future(self._channel).result(timeout=30)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._server is not None:
            assert self._server.stdin is not None
            self._server.stdin.close()  # the servers stop when their stdin closes
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            if self._server.stdout is not None:
                self._server.stdout.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def link(self, size: int) -> Link:
        assert self._channel is not None
        call = self._channel.unary_unary(_METHOD)  # no serializers: bytes in, bytes out
        data = payload(size)
        # A queue, not a deque: the reading thread may ask for an answer before the writer
        # thread has sent its request, and must wait for it.
        outstanding: queue.SimpleQueue[grpc.Future] = queue.SimpleQueue()

        def send() -> None:
            outstanding.put(call.future(data))

        def receive() -> int:
            return len(outstanding.get().result())

        def round_trip() -> None:
            call(data)

        def check() -> None:
            if call(data) != data:
                raise RuntimeError(f"gRPC echo of {size} bytes came back altered")

        return FunctionLink(send, receive, check, round_trip)
