"""The cells of a run: one measurement each, taken from every contender that can take part.

A cell is a small JSON-able dict sent to the drivers (driver.py); its ``kind`` says what is
measured:

- ``echo``: ``size``-byte payloads, ``in_flight`` at a time: echoes/s (and MB/s);
- ``latency``: a small request (aspect-ipc: ``echo`` of ``{"n": 1}``; the others: a 64 B echo),
  one in flight, each timed: p50, p99 (aspect-ipc also on the control channel);
- ``rps``: the same small request, ``MANY_IN_FLIGHT`` at a time: requests/s;
- ``seed``: one of the seed payloads (seed.py), one in flight, each timed; the raw socket and
  mp.Pipe have their own forms of it, gRPC does not take part;
- ``spawn``: from starting the contender (worker, server) until a first answer;
- ``memory``: aspect-ipc only, a loop of 16 MiB echoes: the parent's RSS;
- ``stream``: aspect-ipc only, a stream beside one request per item (stream_cells.py).
"""

from __future__ import annotations

from typing import Any

from contenders import Contender
from measure import IN_FLIGHT, MANY_IN_FLIGHT, PAYLOAD_SIZES, size_label
from seed import SeedPayload
from stream_cells import stream_cells, stream_label

__all__ = ["HIGHER", "MEMORY_SIZE", "Cell", "cell_label", "headline", "run_cells", "takes_part"]

Cell = dict[str, Any]

HIGHER = {
    "echo": True, "rps": True, "latency": False, "seed": False, "spawn": False, "stream": True
}  # fmt: skip
"""Whether a bigger headline figure is better, by cell kind (for the ratios' reading)."""

MEMORY_SIZE = 16 * 1024 * 1024


def run_cells(seeds: tuple[SeedPayload, ...]) -> list[Cell]:
    """Every interleaved cell of a run, in the order they are measured and reported."""
    cells: list[Cell] = [
        {"kind": "echo", "size": size, "in_flight": in_flight}
        for size in PAYLOAD_SIZES
        for in_flight in (1, IN_FLIGHT)
    ]
    cells.append({"kind": "latency"})
    cells.append({"kind": "rps", "in_flight": MANY_IN_FLIGHT})
    cells += [{"kind": "seed", "seed": seed.key, "label": seed.label} for seed in seeds]
    cells.append({"kind": "spawn"})
    cells += stream_cells()
    return cells


def takes_part(cell: Cell, contender: Contender) -> bool:
    """gRPC has no seed form (it echoes bytes); the memory loop and streams are aspect-ipc's."""
    if cell["kind"] == "seed":
        return contender.kind in ("aspect", "raw_socket", "mp_pipe")
    if cell["kind"] in ("memory", "stream"):
        return contender.is_aspect
    return True


def headline(cell: Cell) -> str:
    """The figure of a cell that the ratios compare: echoes/s, requests/s or a p50/median."""
    figures = {"echo": "ops_per_s", "rps": "ops_per_s", "spawn": "seconds", "stream": "ops_per_s"}
    return figures.get(cell["kind"], "p50")


def cell_label(cell: Cell) -> str:
    kind = cell["kind"]
    if kind == "echo":
        return f"echo {size_label(cell['size'])} x{cell['in_flight']}"
    if kind == "rps":
        return f"small requests x{cell['in_flight']}"
    if kind == "seed":
        return str(cell["label"])
    if kind == "memory":
        return f"memory, {cell['echoes']:,} echoes of 16 MiB"
    if kind == "stream":
        return stream_label(cell)
    return {"latency": "small round trip", "spawn": "spawn to ready"}.get(kind, kind)
