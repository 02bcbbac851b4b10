"""Baselines: the same echo without aspect-ipc, each against an echo server in its own process.

- **raw socket**: a Unix stream socket with blocking I/O and the data channel's framing (4-byte
  big-endian length + payload), but no codec and no JSON-RPC. The server ``recv_into``s each
  frame into one preallocated buffer and sends that buffer back; the client sends a prebuilt frame
  and also ``recv_into``s a preallocated buffer. This is the practical limit for moving bytes
  between two Python processes: what is left is the kernel and two loops.
- **mp.Pipe**: ``multiprocessing.Pipe()`` with ``send_bytes``/``recv_bytes`` on both ends, the
  standard library's own answer to "send bytes to another Python process".

Both are driven exactly as aspect-ipc is: sequentially (one echo in flight), pipelined (a writer
thread keeps ``in_flight`` echoes outstanding while the calling thread reads the answers), and
timed one by one for latency. The echo servers are started with the ``spawn`` start method, so
they are fresh interpreters, like a worker.

For the seed's payloads (seed.py) each baseline gets a second server, timed one round trip at a
time: the raw socket sends the information packed as fixed-width binary and its server answers
with a frame of the packed answer's size, without looking at the data (the limit: no codec, no
work); mp.Pipe sends ``(method, params)`` with ``Connection.send`` (pickle) and its server
computes the answer in Python and sends it back the same way (what a user would write instead).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Protocol

from measure import (
    IN_FLIGHT,
    MANY_IN_FLIGHT,
    SMALL_SIZE,
    Budget,
    Latency,
    Throughput,
    payload,
)
from seed import SeedPayload, compute

__all__ = ["BASELINES", "BaselineResult", "MpPipeBaseline", "RawSocketBaseline", "measure"]

_CONTEXT = multiprocessing.get_context("spawn")


class Link(Protocol):
    """One payload size over one baseline transport: send an echo, receive its answer."""

    def send(self) -> None: ...
    def receive(self) -> int: ...
    def check(self) -> None: ...


class RawSocketBaseline:
    """A blocking Unix-socket echo client and its server process; a context manager.

    With ``seed=True`` the server answers each frame with a frame of the size that the first 4
    bytes of its payload ask for (see :meth:`seed_link`) instead of echoing it.
    """

    name = "raw socket"
    key = "raw_socket"

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
                    time.sleep(0.01)
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
            if not _read_exactly(sock, header):
                raise EOFError("the raw socket server closed the connection")
            length = int.from_bytes(header, "big")
            _read_exactly(sock, buffer[:length])
            return length

        def check() -> None:
            send()
            length = receive()
            if buffer[:length] != expected:
                raise RuntimeError(altered)

        return _FunctionLink(send, receive, check)


class MpPipeBaseline:
    """A ``multiprocessing.Pipe`` echo client and its server process; a context manager.

    With ``seed=True`` the server computes the seed methods' answers instead (see
    :meth:`seed_link`).
    """

    name = "mp.Pipe"
    key = "mp_pipe"

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

        return _FunctionLink(send, receive, check)

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

        return _FunctionLink(send, receive, check)


BASELINES = (RawSocketBaseline, MpPipeBaseline)
"""Every baseline, in the order they are reported."""


class BaselineResult:
    """A baseline's figures: throughput cells by (size, in flight), latency, small requests/s,
    and the round trips of the seed payloads by payload key."""

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.throughput: dict[tuple[int, int], Throughput] = {}
        self.latency: Latency | None = None
        self.small_rps: Throughput | None = None
        self.seed: dict[str, Latency] = {}
        self.spawn_seconds: list[float] = []

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "throughput": [cell.as_dict() for cell in self.throughput.values()],
            "latency": self.latency.as_dict() if self.latency else None,
            "small_rps": self.small_rps.as_dict() if self.small_rps else None,
            "seed_round_trip": {key: lat.as_dict() for key, lat in self.seed.items()},
            "spawn_to_ready_s": {
                "median": round(statistics.median(self.spawn_seconds), 6)
                if self.spawn_seconds
                else None,
                "samples": [round(s, 6) for s in self.spawn_seconds],
            },
        }


def measure(
    baseline: type[RawSocketBaseline | MpPipeBaseline],
    sizes: tuple[int, ...],
    seeds: tuple[SeedPayload, ...],
    budget: Budget,
    progress: Callable[[str], None],
) -> BaselineResult:
    """Run every cell of one baseline against fresh servers: the echo, then the seed payloads.

    First, ``budget.spawns`` times: start a server and wait for a first small echo (the
    baseline's spawn to ready, beside aspect-ipc's).
    """
    result = BaselineResult(baseline.name, baseline.key)
    progress(f"{baseline.name}: spawn to ready")
    for _ in range(budget.spawns):
        start = time.perf_counter()
        with baseline(SMALL_SIZE) as transport:
            transport.link(SMALL_SIZE).check()
            result.spawn_seconds.append(time.perf_counter() - start)
    with baseline(max(sizes)) as transport:
        for size in sizes:
            link = transport.link(size)
            link.check()
            for in_flight in (1, IN_FLIGHT):
                progress(f"{baseline.name}: echo {size} B x{in_flight}")
                run_echo(link, in_flight, budget.warmup())
                ops, seconds = run_echo(link, in_flight, budget)
                result.throughput[size, in_flight] = Throughput(size, in_flight, ops, seconds)
        small = transport.link(SMALL_SIZE)
        progress(f"{baseline.name}: latency")
        run_latency(small, budget.warmup())
        result.latency = run_latency(small, budget)
        progress(f"{baseline.name}: small requests x{MANY_IN_FLIGHT}")
        run_echo(small, MANY_IN_FLIGHT, budget.warmup())
        ops, seconds = run_echo(small, MANY_IN_FLIGHT, budget)
        result.small_rps = Throughput(SMALL_SIZE, MANY_IN_FLIGHT, ops, seconds)
    if seeds:
        capacity = max(max(s.packed_request, s.packed_response) for s in seeds)
        with baseline(capacity, seed=True) as transport:
            for seed in seeds:
                progress(f"{baseline.name}: {seed.label}")
                link = transport.seed_link(seed)
                link.check()
                run_latency(link, budget.warmup())
                result.seed[seed.key] = run_latency(link, budget)
    return result


def run_echo(link: Link, in_flight: int, budget: Budget) -> tuple[int, float]:
    """Echo until the budget is spent, ``in_flight`` at a time; return (echoes, seconds)."""
    if budget.is_empty:
        return 0, 0.0
    if in_flight == 1:
        ops = 0
        start = time.perf_counter()
        deadline = start + budget.seconds
        while True:
            link.send()
            link.receive()
            ops += 1
            if ops >= budget.min_ops and time.perf_counter() >= deadline:
                return ops, time.perf_counter() - start
    return _pipelined(link, in_flight, budget)


def run_latency(link: Link, budget: Budget) -> Latency:
    """Time each of a run of sequential echoes."""
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + budget.seconds
    while not budget.is_empty:
        start = clock()
        link.send()
        link.receive()
        end = clock()
        samples.append(end - start)
        if len(samples) >= budget.min_samples and end >= deadline:
            break
    return Latency(tuple(samples))


def _pipelined(link: Link, in_flight: int, budget: Budget) -> tuple[int, float]:
    # The writer thread sends while fewer than ``in_flight`` echoes are outstanding; this thread
    # reads the answers. ``committed`` counts frames the writer has started to send, so that after
    # the stop this thread knows how many answers are still to come. It must keep reading until
    # then: a writer blocked in a large send only unblocks when the server can write its answers.
    slots = threading.Semaphore(in_flight)
    stop = threading.Event()
    committed = 0
    failure: list[BaseException] = []

    def write() -> None:
        nonlocal committed
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                committed += 1
                link.send()
        except BaseException as exc:
            failure.append(exc)

    writer = threading.Thread(target=write, name="baseline writer", daemon=True)
    start = time.perf_counter()
    deadline = start + budget.seconds
    writer.start()
    received = 0
    while not stop.is_set():
        link.receive()
        received += 1
        if received >= budget.min_ops and time.perf_counter() >= deadline:
            stop.set()
        slots.release()
    while writer.is_alive() or received < committed:
        if failure:
            raise failure[0]
        if received < committed:
            link.receive()
            received += 1
            slots.release()
        else:
            writer.join(0.001)
    if failure:
        raise failure[0]
    return received, time.perf_counter() - start


class _FunctionLink:
    def __init__(
        self, send: Callable[[], None], receive: Callable[[], int], check: Callable[[], None]
    ) -> None:
        self.send, self.receive, self.check = send, receive, check


def _read_exactly(sock: socket.socket, view: memoryview) -> bool:
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


# -- the echo servers (run in child processes) --------------------------------------------------


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
        while _read_exactly(connection, buffer[:4]):
            length = int.from_bytes(buffer[:4], "big")
            _read_exactly(connection, buffer[4 : 4 + length])
            if seed:
                length = int.from_bytes(buffer[4:8], "big")
                buffer[:4] = buffer[4:8]
            connection.sendall(buffer[: 4 + length])


def serve_pipe(connection: Connection) -> None:
    """Echo every ``recv_bytes`` message back with ``send_bytes`` until the other end closes."""
    with connection:
        while True:
            try:
                message = connection.recv_bytes()
            except EOFError:
                return
            connection.send_bytes(message)


def serve_pipe_seed(connection: Connection) -> None:
    """Answer every ``(method, params)`` received with ``recv`` with its result, with ``send``."""
    with connection:
        while True:
            try:
                method, params = connection.recv()
            except EOFError:
                return
            connection.send(compute(method, params))
