"""Benchmark aspect-ipc against a raw Unix socket and multiprocessing.Pipe, in one run.

Run from the repository root (``make bench`` does)::

    .venv/bin/python bench/run.py [--workers python,node,go] [--budget 1.2] [--quick]

Measures, for every available test worker (Python, and Node and Go when built): data-channel
echo throughput of 64 B..16 MiB ``bytes`` payloads with 1 and 8 requests in flight; small-request
round-trip latency on the control and the data channel; small requests per second with 64 in
flight; the seed's payloads (processItems(1000), processMatrix(100x100)) as JSON on control and
MessagePack on data: bytes on the wire, encode and decode time, round trip; spawn-to-ready time.
The same cells are measured on the two baselines (see baselines.py), and every aspect-ipc figure
is printed with its ratio to each, then a summary of issue 8's targets. The tables go to stdout,
everything to ``bench/results/latest.json`` and the throughput chart to
``bench/results/throughput.png`` (``quick.json`` and ``quick-throughput.png`` with ``--quick``).
See bench/README.md for how to read them.

Nothing here fails because of speed: the benchmark reports, it does not judge.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import aspect_ipc
import baselines
import seed
import worker_cells
from chart import write_chart
from measure import IN_FLIGHT, MANY_IN_FLIGHT, PAYLOAD_SIZES, SMALL_SIZE, Budget
from report import format_report, json_report
from results import RunResults
from targets import evaluate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    budget = Budget.quick() if options.quick else Budget.full(options.budget)
    run = RunResults(sizes=PAYLOAD_SIZES, seeds=seed.seed_payloads(), spawns=budget.spawns)
    commands: dict[str, worker_cells.WorkerCommand] = {}
    for name in options.workers:
        found = worker_cells.find_worker(name, ROOT)
        if isinstance(found, str):
            run.skipped[name] = found
            print(f"note: skipping the {name} worker: {found}", flush=True)
        else:
            commands[name] = found

    started, load_before = time.perf_counter(), os.getloadavg()
    for kind in baselines.BASELINES:
        run.baselines[kind.key] = baselines.measure(kind, run.sizes, run.seeds, budget, _progress)
    for name, command in commands.items():
        run.workers[name] = anyio.run(
            worker_cells.measure, command, run.sizes, run.seeds, budget, _progress
        )
    run.wire_costs = seed.measure_wire_costs(run.seeds, budget, _progress)
    elapsed = time.perf_counter() - started
    _progress("")

    verdicts = evaluate(run)
    print(_header(budget, options.quick))
    print(format_report(run, verdicts))
    print(f"total time {elapsed:.0f} s")

    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "aspect_ipc_version": aspect_ipc.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "quick": options.quick,
        "budget_seconds_per_cell": budget.seconds,
        "min_ops_per_cell": budget.min_ops,
        "min_samples_per_latency_cell": budget.min_samples,
        "sizes": list(run.sizes),
        "in_flight": IN_FLIGHT,
        "many_in_flight": MANY_IN_FLIGHT,
        "baseline_small_size": SMALL_SIZE,
        "small_params": worker_cells.SMALL_PARAMS,
        "payload": "pseudo-random bytes, sent as params [payload]",
        "mb": "10^6 bytes per second, payload bytes of both directions",
        "total_seconds": round(elapsed, 1),
    }
    document: dict[str, Any] = json_report(meta, run, verdicts)
    output = options.output or RESULTS / ("quick.json" if options.quick else "latest.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"saved {_relative(output)}")

    chart = output.with_name("quick-throughput.png" if options.quick else "throughput.png")
    title = (
        f"aspect-ipc {aspect_ipc.__version__} echo throughput, {meta['date']}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        + ("QUICK run (numbers mean little)" if options.quick else f"{budget.seconds:g} s per cell")
    )
    missing = write_chart(chart, run, title)
    print(f"note: no chart: {missing}" if missing else f"saved {_relative(chart)}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--workers",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=list(worker_cells.WORKER_NAMES),
        help="comma-separated worker languages (default: python,node,go; unbuilt ones are "
        "skipped with a note)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=1.2,
        help="seconds of timed work per cell (default 1.2; a cell also runs a warm-up of a "
        "tenth of that and at least a few operations)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny budgets: a smoke test, not a measurement"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to save the JSON results (default bench/results/latest.json, or quick.json "
        "with --quick, so that a smoke test never replaces real results)",
    )
    return parser.parse_args(argv)


def _header(budget: Budget, quick: bool) -> str:
    mode = "QUICK (smoke test, numbers mean little)" if quick else f"{budget.seconds:g} s per cell"
    return (
        f"aspect-ipc {aspect_ipc.__version__} benchmark: Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {mode}\n"
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}" if text else "\r\033[K")
        sys.stderr.flush()


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
