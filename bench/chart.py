"""The throughput chart: MB/s against payload size, one line per transport and requests in flight.

Drawn with matplotlib's Agg backend (no display), which ``make bench`` installs through the
``bench`` extra of python/pyproject.toml. Without matplotlib the run still completes: the chart
is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path

from measure import IN_FLIGHT, Throughput, size_label
from results import RunResults

__all__ = ["write_chart"]

# One colour per transport; the line style tells the number of requests in flight.
_COLOURS = {
    "raw_socket": "#000000",
    "mp_pipe": "#8c8c8c",
    "python": "#1f77b4",
    "node": "#2ca02c",
    "go": "#d62728",
}
_STYLES = {1: ("-", "o"), IN_FLIGHT: ("--", "s")}

# The peer's published 1 MB and 10 MB echo figures (issue 8), for scale: not measured here.
_PEER = ((1_000_000, 364.0), (10_000_000, 604.0))


def write_chart(path: Path, run: RunResults, title: str) -> str | None:
    """Draw the chart into ``path`` (PNG); return None, or why there is no chart."""
    try:
        import matplotlib
    except ImportError:
        return (
            "matplotlib is not installed (make bench installs it: pip install -e 'python[bench]')"
        )
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 6.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    series: list[tuple[str, str, dict[tuple[int, int], Throughput]]] = [
        (result.name, key, result.throughput) for key, result in run.baselines.items()
    ]
    series += [(f"{name} worker", name, worker.throughput) for name, worker in run.workers.items()]
    for label, key, cells in series:
        for in_flight, (line, marker) in _STYLES.items():
            points = [
                (size, cells[size, in_flight].mb_per_s)
                for size in run.sizes
                if (size, in_flight) in cells and cells[size, in_flight].mb_per_s > 0
            ]
            if not points:
                continue
            axes.plot(
                [size for size, _ in points],
                [mb for _, mb in points],
                linestyle=line,
                marker=marker,
                color=_COLOURS.get(key, "#9467bd"),
                label=f"{label}, {in_flight} in flight",
            )
    axes.plot(
        [size for size, _ in _PEER],
        [mb for _, mb in _PEER],
        linestyle="none",
        marker="*",
        markersize=12,
        color="#ff7f0e",
        label="procwire (issue 8's published figures, not this run)",
    )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(list(run.sizes), [size_label(size) for size in run.sizes])
    axes.minorticks_off()
    axes.set_xlabel("payload size (echo of bytes; aspect-ipc: data channel, Python parent)")
    axes.set_ylabel("MB/s (10^6 payload bytes/s, both directions; log scale)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return None
