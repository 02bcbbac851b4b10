"""The cells of the contenders that are not aspect-ipc: blocking clients, no event loop.

A :class:`BlockingDriver` measures one contender (raw socket, mp.Pipe, gRPC with a Go or a Python
server) cell by cell, keeping its server between cells (driver.py decides whether the process
itself lives on). Echo cells run one call after the other, or pipelined: a writer thread keeps
``in_flight`` requests outstanding while the calling thread reads the answers. Latency cells time
each of a run of sequential round trips. Every cell checks one answer after its timed part (not
before: in a fresh process a check first would warm the path up).
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from baseline_links import Link, MpPipeBaseline, RawSocketBaseline
from cells import Cell
from contenders import Contender
from measure import MANY_IN_FLIGHT, PAYLOAD_SIZES, SMALL_SIZE, Budget, Latency, Throughput
from seed import seed_payloads

__all__ = ["BlockingDriver", "run_echo", "run_latency"]


class BlockingDriver:
    """Measures the cells of one baseline contender; :meth:`close` stops its servers."""

    def __init__(self, contender: Contender) -> None:
        self._contender = contender
        self._stack = ExitStack()
        self._transport: Any = None
        self._seed_transport: Any = None
        self._seeds = {seed.key: seed for seed in seed_payloads()}

    def close(self) -> None:
        self._stack.close()

    def measure(self, cell: Cell, budget: Budget) -> dict[str, Any]:
        """One cell's figures (see cells.py), measured now."""
        kind = cell["kind"]
        if kind == "spawn":
            start = time.perf_counter()
            with self._new(SMALL_SIZE) as transport:
                transport.link(SMALL_SIZE).check()
                return {"seconds": time.perf_counter() - start}
        if kind == "seed":
            if self._seed_transport is None:
                capacity = max(
                    max(s.packed_request, s.packed_response) for s in self._seeds.values()
                )
                self._seed_transport = self._stack.enter_context(self._new(capacity, seed=True))
            link = self._seed_transport.seed_link(self._seeds[cell["seed"]])
            return _latency_cell(link, budget)
        if self._transport is None:
            self._transport = self._stack.enter_context(self._new(max(PAYLOAD_SIZES)))
        if kind == "echo":
            link = self._transport.link(cell["size"])
            run_echo(link, cell["in_flight"], budget.warmup())
            ops, seconds = run_echo(link, cell["in_flight"], budget)
            link.check()
            return Throughput(cell["size"], cell["in_flight"], ops, seconds).figures()
        link = self._transport.link(SMALL_SIZE)
        if kind == "latency":
            return _latency_cell(link, budget)
        if kind == "rps":
            run_echo(link, MANY_IN_FLIGHT, budget.warmup())
            ops, seconds = run_echo(link, MANY_IN_FLIGHT, budget)
            link.check()
            return Throughput(SMALL_SIZE, MANY_IN_FLIGHT, ops, seconds).figures()
        raise ValueError(f"{self._contender.name} cannot measure a {kind!r} cell")

    def _new(self, capacity: int, *, seed: bool = False) -> AbstractContextManager[Any]:
        kind = self._contender.kind
        if kind == "raw_socket":
            return RawSocketBaseline(capacity, seed=seed)
        if kind == "mp_pipe":
            return MpPipeBaseline(capacity, seed=seed)
        from grpc_links import GrpcBaseline  # grpcio only where gRPC is measured

        return GrpcBaseline(self._contender)


def _latency_cell(link: Link, budget: Budget) -> dict[str, Any]:
    run_latency(link, budget.warmup())
    latency = run_latency(link, budget)
    link.check()
    return latency.figures()


def run_echo(link: Link, in_flight: int, budget: Budget) -> tuple[int, float]:
    """Echo until the budget is spent, ``in_flight`` at a time; return (echoes, seconds)."""
    if budget.is_empty:
        return 0, 0.0
    if in_flight == 1:
        ops = 0
        round_trip = link.round_trip
        start = time.perf_counter()
        deadline = start + budget.seconds
        while True:
            round_trip()
            ops += 1
            if ops >= budget.min_ops and time.perf_counter() >= deadline:
                return ops, time.perf_counter() - start
    return _pipelined(link, in_flight, budget)


def run_latency(link: Link, budget: Budget) -> Latency:
    """Time each of a run of sequential round trips."""
    samples: list[float] = []
    clock, round_trip = time.perf_counter, link.round_trip
    deadline = clock() + budget.seconds
    while not budget.is_empty:
        start = clock()
        round_trip()
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
