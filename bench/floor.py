"""The floor of a small round trip: what a parent of a few lines gets from the same worker.

Issue 19 asks for a small round trip within 1.5x ``multiprocessing.Pipe``'s. This script shows
how much of a round trip any parent pays, ours or not, by timing the bench's small echo
(``{"n": 1}``, data channel framing) in rounds that interleave:

- **mp.Pipe**: ``send_bytes``/``recv_bytes`` of 64 bytes to a Python child that echoes them (the
  bench's baseline);
- **a plain Python server** (a blocking loop that answers each request with its params, as any
  worker does), from two clients: a **blocking** socket, and a bare **asyncio** client (the
  socket registered once with ``loop.add_reader``, one future per request, completed by the
  read callback: the least an asyncio parent can do, the issue's "BufferedProtocol client");
- **the Go test worker**, from the same two clients and from **aspect-ipc**
  (``ProcessHandle.request_via_data``), plain and with the data channel busy polling for 50 µs
  (``DataChannelOptions(busy_poll=50e-6)``, a second worker). The bare clients start the worker
  and authenticate the data connection themselves, from PROTOCOL.md sections 5 and 7
  (environment, ``$/ready``, ``$/hello``).

With ``--same-cpu`` this process and every process it starts run on one CPU (the lowest this
process may use): nobody waits for another CPU to wake up, so the figures are what each path
costs in CPU, without what a sleeping CPU of a virtual machine adds to a wake-up.

Usage: ``python bench/floor.py [requests per round] [rounds] [--same-cpu]``; ``make build-go``
first.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgpack

WORKER = Path(__file__).resolve().parent.parent / ".build/go/test-worker"
PARAMS = {"n": 1}  # the bench's small request (aspect_cells.SMALL_PARAMS)
BUSY_POLL = 50e-6  # the bench's busy rows' DataChannelOptions.busy_poll (contenders.BUSY_POLL)


class FramedClient:
    """A blocking socket that speaks the data channel's framing and JSON-RPC envelopes."""

    socket: socket.socket
    _next_id = 0

    def frame(self, method: str, params: Any) -> tuple[int, bytes]:
        self._next_id += 1
        body = msgpack.packb(
            {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        )
        return self._next_id, len(body).to_bytes(4, "big") + body

    def call(self, method: str, params: Any) -> dict[str, Any]:
        """One request, blocking, and its answer."""
        _, data = self.frame(method, params)
        self.socket.sendall(data)
        size = int.from_bytes(self.socket.recv(4, socket.MSG_WAITALL), "big")
        answer: dict[str, Any] = msgpack.unpackb(self.socket.recv(size, socket.MSG_WAITALL))
        return answer


_PYTHON_SERVER = """
import socket, sys, msgpack
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(1)
print("ready", flush=True)
connection, _ = listener.accept()
packer = msgpack.Packer()
while True:
    header = connection.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        break
    request = msgpack.unpackb(connection.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL))
    body = packer.pack({"jsonrpc": "2.0", "id": request["id"], "result": request["params"]})
    connection.sendall(len(body).to_bytes(4, "big") + body)
"""


class PythonServer(FramedClient):
    """A plain Python server: a blocking loop that answers each request with its params."""

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, "python.sock")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PYTHON_SERVER, path], stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the Python server did not start")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.connect(path)

    def close(self) -> None:
        self.socket.close()  # the server's loop ends with the connection
        self.process.wait(10)


def _pipe_echo(connection: Connection) -> None:
    while True:
        try:
            connection.send_bytes(connection.recv_bytes())
        except EOFError:
            return


class PipeEcho:
    """``multiprocessing.Pipe`` to a child that echoes every message (the bench's baseline)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_pipe_echo, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()

    def round(self, requests: int) -> list[float]:
        data, times, clock = bytes(64), [], time.perf_counter
        for _ in range(requests):
            start = clock()
            self.connection.send_bytes(data)
            self.connection.recv_bytes()
            times.append(clock() - start)
        return times

    def close(self) -> None:
        self.connection.close()
        self.process.join(10)


class BareWorker(FramedClient):
    """A worker (by default the Go test worker), started and authenticated by hand
    (PROTOCOL.md 5 and 7)."""

    def __init__(self, directory: str, command: list[str] | None = None) -> None:
        path = os.path.join(directory, "data.sock")
        token = secrets.token_hex(32)
        env = {
            **os.environ,
            "ASPECT_IPC_PROTOCOL": "1",
            "ASPECT_IPC_WORKER_ID": "floor",
            "ASPECT_IPC_NAMESPACE": "floor",
            "ASPECT_IPC_MAX_LINE_LENGTH": str(1024 * 1024),
            "ASPECT_IPC_DATA_PATH": path,
            "ASPECT_IPC_TOKEN": token,
            "ASPECT_IPC_MAX_FRAME_SIZE": str(64 * 1024 * 1024),
        }
        self.process = subprocess.Popen(
            command or [str(WORKER)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        if ready.get("method") != "$/ready":
            raise RuntimeError(f"the worker's first line is not $/ready: {ready!r}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.connect(path)
        hello = self.call("$/hello", {"token": token, "protocol": 1})
        if "result" not in hello:
            raise RuntimeError(f"$/hello was refused: {hello!r}")

    def close(self) -> None:
        self.socket.close()
        assert self.process.stdin is not None
        self.process.stdin.close()  # end of stdin: the worker exits (PROTOCOL.md 8.3)
        self.process.wait(10)


def blocking_round(worker: FramedClient, requests: int) -> list[float]:
    times, clock = [], time.perf_counter
    for _ in range(requests):
        start = clock()
        answer = worker.call("echo", PARAMS)
        times.append(clock() - start)
        assert answer["result"] == PARAMS, answer
    return times


async def asyncio_round(worker: FramedClient, requests: int) -> list[float]:
    loop = asyncio.get_running_loop()
    sock = worker.socket
    sock.setblocking(False)
    waiting: dict[int, asyncio.Future[Any]] = {}
    received = bytearray()

    def on_readable() -> None:
        received.extend(sock.recv(256 * 1024))
        while len(received) >= 4:
            size = int.from_bytes(received[:4], "big")
            if len(received) < 4 + size:
                return
            answer = msgpack.unpackb(received[4 : 4 + size])
            del received[: 4 + size]
            waiting.pop(answer["id"]).set_result(answer["result"])

    loop.add_reader(sock.fileno(), on_readable)
    times, clock = [], time.perf_counter
    try:
        for _ in range(requests):
            start = clock()
            request_id, data = worker.frame("echo", PARAMS)
            waiting[request_id] = future = loop.create_future()
            sock.send(data)  # a small frame: the socket takes it whole
            assert await future == PARAMS
            times.append(clock() - start)
    finally:
        loop.remove_reader(sock.fileno())
        sock.setblocking(True)
    return times


async def aspect_round(handle: Any, requests: int) -> list[float]:
    times, clock = [], time.perf_counter
    for _ in range(requests):
        start = clock()
        assert await handle.request_via_data("echo", PARAMS) == PARAMS
        times.append(clock() - start)
    return times


async def main(requests: int, rounds: int) -> None:
    from aspect_ipc import DataChannelOptions, ProcessManager

    with tempfile.TemporaryDirectory(prefix="floor-") as directory:
        pipe, server, bare = PipeEcho(), PythonServer(directory), BareWorker(directory)
        try:
            async with ProcessManager(namespace="floor") as manager:
                handle = await manager.spawn(
                    "floor", executable=str(WORKER), data_channel=DataChannelOptions(enabled=True)
                )
                polling = DataChannelOptions(enabled=True, busy_poll=BUSY_POLL)
                busy = await manager.spawn("busy", executable=str(WORKER), data_channel=polling)
                rounds_of: dict[str, Callable[[], Any]] = {
                    "mp.Pipe": lambda: pipe.round(requests),
                    "Python server, blocking": lambda: blocking_round(server, requests),
                    "Python server, asyncio": lambda: asyncio_round(server, requests),
                    "Go worker, blocking": lambda: blocking_round(bare, requests),
                    "Go worker, asyncio": lambda: asyncio_round(bare, requests),
                    "Go worker, aspect-ipc": lambda: aspect_round(handle, requests),
                    "Go worker, busy poll": lambda: aspect_round(busy, requests),
                }
                p50s: dict[str, list[float]] = {name: [] for name in rounds_of}
                for _ in range(rounds + 1):  # the first round warms up, and is not counted
                    for name, run in rounds_of.items():
                        outcome = run()
                        times = await outcome if asyncio.iscoroutine(outcome) else outcome
                        p50s[name].append(statistics.median(times))
        finally:
            for end in (bare, server, pipe):
                end.close()
    print(f"small round trip p50, {rounds} rounds of {requests} requests [lowest-highest]")
    pipe_p50 = statistics.median(p50s["mp.Pipe"][1:])
    for name, values in p50s.items():
        counted = values[1:]
        p50 = statistics.median(counted)
        print(
            f"  {name:<24} {p50 * 1e6:7.1f} µs [{min(counted) * 1e6:.1f}-"
            f"{max(counted) * 1e6:.1f}]  {p50 / pipe_p50:4.2f}x mp.Pipe"
        )


if __name__ == "__main__":
    if not os.access(WORKER, os.X_OK):
        sys.exit(f"{WORKER} is not built: run make build-go")
    if "--same-cpu" in sys.argv[1:]:
        # Inherited by the children (the worker, the servers, mp.Pipe's echo process).
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(f"every process on CPU {min(os.sched_getaffinity(0))}")
    arguments = [int(a) for a in sys.argv[1:] if a != "--same-cpu"][:2]
    asyncio.run(main(*(arguments + [5000, 5][len(arguments) :])))
