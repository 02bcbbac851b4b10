"""Benchmark aspect-ipc against a raw Unix socket, multiprocessing.Pipe and gRPC, interleaved.

Run from the repository root (``make bench`` does)::

    .venv/bin/python bench/run.py [--fresh] [--workers python,node,go] [--quick] ...

Every cell (one measurement: an echo size and number in flight, the small round trip, small
requests/s, a seed payload, spawn to ready) is taken in rounds: in each round every contender
runs it once, in turn, each in its own process (long-lived, or a fresh one per cell and round
with ``--fresh``). Each aspect-ipc figure is printed with its ratio to each baseline, the median
of the rounds' ratios with their spread, and the load average around the cell; then a memory
loop, the seed payloads' wire costs, and the verdicts of issue 19's targets (reporting only).
Everything is saved as JSON, a Markdown summary and a throughput chart in bench/results/.
See bench/README.md for how to read them.
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

import aspect_ipc
import seed
from cells import run_cells
from chart import write_chart
from contenders import WORKER_NAMES, available
from measure import IN_FLIGHT, MANY_IN_FLIGHT, PAYLOAD_SIZES, SMALL_SIZE, Budget
from metrics_bench import format_metrics, measure_metrics
from pool_bench import format_pools, measure_pools
from report import format_report, json_report, markdown_summary
from results import RunResults
from schedule import measure_cells, measure_memory
from targets import TARGET_CONTENDER, evaluate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
_OTHERS_MEMORY = 500
"""Echoes of the memory loop for the contenders other than the targets' (the Go worker)."""


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    quick = options.quick
    budget = Budget.quick() if quick else Budget.full(options.budget, warm_up=not options.fresh)
    rounds = options.rounds or (2 if quick else 5)
    memory_echoes = options.memory_echoes if options.memory_echoes is not None else (
        5 if quick else 10_000
    )  # fmt: skip
    contenders, notes = available(
        options.workers, options.trio, options.busy_poll, options.receive_wait
    )
    for note in notes:
        print(f"note: skipping {note}", flush=True)
    run = RunResults(contenders, seed.seed_payloads(), rounds, options.fresh, skipped=notes)

    started, load_before = time.perf_counter(), os.getloadavg()
    cells = run_cells(run.seeds)
    run.cells = measure_cells(contenders, cells, rounds, budget, options.fresh, _progress)
    echoes = {
        c.key: memory_echoes if c.key == TARGET_CONTENDER else min(memory_echoes, _OTHERS_MEMORY)
        for c in run.aspect
    }
    run.memory = measure_memory(contenders, echoes, _progress)
    run.wire_costs = seed.median_costs(
        [seed.measure_wire_costs(run.seeds, budget, _progress) for _ in range(rounds)]
    )
    pools = measure_pools(options.workers, quick, rounds)  # the pool rows (pool_bench.py)
    metrics = measure_metrics(quick, rounds) if "go" in options.workers else {"skipped": "no go"}
    elapsed = time.perf_counter() - started
    _progress("")

    mode = "fresh process per contender, cell and round" if options.fresh else "long-lived"
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    verdicts = evaluate(run)
    print(
        f"aspect-ipc {aspect_ipc.__version__} benchmark, {date}: Python "
        f"{platform.python_version()}, {machine}; {mode}; {rounds} rounds x "
        + ("QUICK budgets (numbers mean little)" if quick else f"{budget.seconds:g} s per turn")
    )
    print(f"load average before {_load(load_before)}, after {_load(os.getloadavg())}\n")
    print(format_report(run, verdicts))
    print(format_pools(pools))
    print(format_metrics(metrics))
    print(f"total time {elapsed:.0f} s")

    meta = {
        "date": date,
        "aspect_ipc_version": aspect_ipc.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "mode": mode,
        "fresh": options.fresh,
        "quick": quick,
        "rounds": rounds,
        "budget": budget.__dict__,
        "memory_echoes": echoes,
        "sizes": list(PAYLOAD_SIZES),
        "in_flight": IN_FLIGHT,
        "many_in_flight": MANY_IN_FLIGHT,
        "baseline_small_size": SMALL_SIZE,
        "payload": "pseudo-random bytes, sent as params [payload]",
        "mb": "10^6 bytes per second, payload bytes of both directions",
        "total_seconds": round(elapsed, 1),
        "pools": pools,
        "metrics_overhead": metrics,
    }
    stem = ("quick" if quick else "latest") + ("-fresh" if options.fresh else "")
    output = options.output or RESULTS / f"{stem}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(json_report(meta, run, verdicts), indent=2) + "\n")
    heading = f"aspect-ipc {aspect_ipc.__version__}, {date[:10]}, {machine}, {mode}" + (
        ", QUICK run" if quick else ""
    )
    load = (
        f"load average (1, 5, 15 min) {_load(load_before)} before, "
        f"{_load(meta['load_average_after'])} after"
    )
    summary = output.with_suffix(".md")
    summary.write_text(markdown_summary(run, verdicts, f"{heading}; {load}"))
    print(f"saved {_relative(output)}, {_relative(summary)}")
    chart = output.with_suffix(".png")
    missing = write_chart(chart, run, f"{heading}\n{load}")
    print(f"note: no chart: {missing}" if missing else f"saved {_relative(chart)}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    def names(text: str) -> list[str]:
        return [name.strip() for name in text.split(",") if name.strip()]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--workers",
        type=names,
        default=list(WORKER_NAMES),
        help="worker languages (default python,node,go; unbuilt ones are skipped with a note)",
    )
    parser.add_argument(
        "--trio",
        type=names,
        default=["go"],
        help="worker languages also measured with the parent on trio (default go; '' for none)",
    )
    parser.add_argument(
        "--busy-poll",
        type=names,
        default=["go"],
        help="worker languages also measured with the data channel busy polling for 50 µs "
        "(DataChannelOptions.busy_poll; default go; '' for none)",
    )
    parser.add_argument(
        "--receive-wait",
        type=names,
        default=["go"],
        help="worker languages also measured with the data channel waiting for answers in the "
        "receive call for 200 µs (DataChannelOptions.receive_wait; default go; '' for none)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=0.3,
        help="seconds of timed work per contender, cell and round (default 0.3)",
    )
    parser.add_argument("--rounds", type=int, default=0, help="rounds per cell (default 5)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="a fresh process per contender, cell and round, no warm-up: what a short script sees",
    )
    parser.add_argument(
        "--memory-echoes",
        type=int,
        default=None,
        help=f"16 MiB echoes of the Go worker's memory loop (default 10000, 5 with --quick; the "
        f"other workers do at most {_OTHERS_MEMORY}; 0: no memory loop)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets, 2 rounds: a smoke test")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="the JSON results (default bench/results/latest.json, latest-fresh.json with "
        "--fresh, quick.json / quick-fresh.json with --quick); the .md and .png go beside it",
    )
    return parser.parse_args(argv)


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


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
