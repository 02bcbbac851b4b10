"""The floor of a small round trip: what a parent of a few lines gets from the same worker.

Issue 19 asks for a small round trip within 1.5x ``multiprocessing.Pipe``'s. This script shows
how much of a round trip to the Go test worker any parent pays, ours or not, by timing the
bench's small echo (``{"n": 1}``, data channel) three ways, in rounds that interleave them:

- **blocking**: a socket in blocking mode that sends a request and reads its answer: the
  worker's own floor (no event loop);
- **asyncio**: the socket registered once with ``loop.add_reader``, one future per request,
  completed by the read callback: the least an asyncio parent can do (the issue's
  "BufferedProtocol client");
- **aspect-ipc**: ``ProcessHandle.request_via_data``.

The two bare clients start the worker and authenticate the data connection themselves, from
PROTOCOL.md sections 5 and 7 (environment, ``$/ready``, ``$/hello``). Usage: ``python
bench/floor.py [requests per round] [rounds]``; ``make build-go`` first.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

WORKER = Path(__file__).resolve().parent.parent / ".build/go/test-worker"
PARAMS = {"n": 1}  # the bench's small request (aspect_cells.SMALL_PARAMS)


class BareWorker:
    """The Go test worker, started and authenticated by hand (PROTOCOL.md 5 and 7)."""

    def __init__(self, directory: str) -> None:
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
            [str(WORKER)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        if ready.get("method") != "$/ready":
            raise RuntimeError(f"the worker's first line is not $/ready: {ready!r}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.connect(path)
        self._next_id = 0
        hello = self.call("$/hello", {"token": token, "protocol": 1})
        if "result" not in hello:
            raise RuntimeError(f"$/hello was refused: {hello!r}")

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

    def close(self) -> None:
        self.socket.close()
        assert self.process.stdin is not None
        self.process.stdin.close()  # end of stdin: the worker exits (PROTOCOL.md 8.3)
        self.process.wait(10)


def blocking_round(worker: BareWorker, requests: int) -> list[float]:
    times, clock = [], time.perf_counter
    for _ in range(requests):
        start = clock()
        answer = worker.call("echo", PARAMS)
        times.append(clock() - start)
        assert answer["result"] == PARAMS, answer
    return times


async def asyncio_round(worker: BareWorker, requests: int) -> list[float]:
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

    p50s: dict[str, list[float]] = {"blocking": [], "asyncio": [], "aspect-ipc": []}
    with tempfile.TemporaryDirectory(prefix="floor-") as directory:
        bare = BareWorker(directory)
        try:
            async with ProcessManager(namespace="floor") as manager:
                handle = await manager.spawn(
                    "floor", executable=str(WORKER), data_channel=DataChannelOptions(enabled=True)
                )
                rounds_of: dict[str, Callable[[], Any]] = {
                    "blocking": lambda: blocking_round(bare, requests),
                    "asyncio": lambda: asyncio_round(bare, requests),
                    "aspect-ipc": lambda: aspect_round(handle, requests),
                }
                for _ in range(rounds + 1):  # the first round warms up, and is not counted
                    for name, run in rounds_of.items():
                        outcome = run()
                        times = await outcome if asyncio.iscoroutine(outcome) else outcome
                        p50s[name].append(statistics.median(times))
        finally:
            bare.close()
    print(f"small round trip p50 to the Go test worker, {rounds} rounds of {requests} requests")
    for name, values in p50s.items():
        counted = values[1:]
        print(
            f"  {name:<11} {statistics.median(counted) * 1e6:7.1f} µs "
            f"[{min(counted) * 1e6:.1f}-{max(counted) * 1e6:.1f}]"
        )


if __name__ == "__main__":
    if not os.access(WORKER, os.X_OK):
        sys.exit(f"{WORKER} is not built: run make build-go")
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [5000, 5][len(arguments) :])))
