"""The order of a run: every cell, round after round, each contender in turn in its own process.

In each round every contender runs the cell once, one after the other, and the order is reversed
in every other round (A B C, C B A, A B C...), so that aspect-ipc and each baseline always run
close together in time and a slow spell of the machine falls on both sides. Long-lived (the
default), each contender has one driver process (driver.py) for the whole run; with ``fresh`` a
new driver is started for every cell and every round, and stops after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cells import Cell, cell_label, takes_part
from contenders import Contender
from measure import Budget
from results import CellResult

__all__ = ["DriverProcess", "measure_cells", "measure_memory"]

_DRIVER = Path(__file__).resolve().parent / "driver.py"


class DriverProcess:
    """One contender's driver process; :meth:`measure` sends it a cell and returns its figures."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self._process = subprocess.Popen(
            [sys.executable, str(_DRIVER), json.dumps(contender.as_json())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def measure(self, cell: Cell, budget: Budget) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        where = f"{self.contender.name}, {cell_label(cell)}"
        try:
            self._process.stdin.write(json.dumps({"cell": cell, "budget": asdict(budget)}) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"{where}: the driver process has exited") from None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise RuntimeError(f"{where}: the driver process exited with {code} (see stderr)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{where}: {answer['error']}")
        figures: dict[str, Any] = answer["figures"]
        return figures

    def close(self) -> None:
        """Close its stdin: the driver stops its worker or server and exits."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def measure_cells(
    contenders: list[Contender],
    cells: list[Cell],
    rounds: int,
    budget: Budget,
    fresh: bool,
    progress: Callable[[str], None],
) -> list[CellResult]:
    """Every cell, ``rounds`` times, every contender that takes part once per round."""
    drivers: dict[str, DriverProcess] = {}
    results = []
    try:
        for cell in cells:
            result = CellResult(cell, load_before=os.getloadavg())
            members = [c for c in contenders if takes_part(cell, c)]
            for number in range(rounds):
                order = members if number % 2 == 0 else members[::-1]
                for contender in order:
                    progress(f"{cell_label(cell)}: round {number + 1}/{rounds}, {contender.name}")
                    figures = _measure(drivers, contender, cell, budget, fresh)
                    result.rounds.setdefault(contender.key, []).append(figures)
            result.load_after = os.getloadavg()
            results.append(result)
        return results
    finally:
        for driver in drivers.values():
            driver.close()


def measure_memory(
    contenders: list[Contender],
    echoes: dict[str, int],
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """The memory loop of each aspect-ipc contender in ``echoes`` (its count of echoes), each in
    a fresh driver process (nothing to interleave: no baseline has a memory target)."""
    figures: dict[str, dict[str, Any]] = {}
    for contender in contenders:
        count = echoes.get(contender.key)
        if not contender.is_aspect or not count:
            continue
        cell = {"kind": "memory", "echoes": count}
        progress(f"{contender.name}: {cell_label(cell)}")
        load_before = os.getloadavg()
        driver = DriverProcess(contender)
        try:
            figures[contender.key] = driver.measure(cell, Budget(0, 0, 0, warm_up=False))
        finally:
            driver.close()
        figures[contender.key] |= {"load_before": load_before, "load_after": os.getloadavg()}
    return figures


def _measure(
    drivers: dict[str, DriverProcess],
    contender: Contender,
    cell: Cell,
    budget: Budget,
    fresh: bool,
) -> dict[str, Any]:
    if fresh:
        driver = DriverProcess(contender)
        try:
            return driver.measure(cell, budget)
        finally:
            driver.close()
    if contender.key not in drivers:
        drivers[contender.key] = DriverProcess(contender)
    return drivers[contender.key].measure(cell, budget)
