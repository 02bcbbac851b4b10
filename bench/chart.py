"""The throughput chart: MB/s against payload size, one line per contender and requests in flight.

Drawn with matplotlib's Agg backend (no display), which ``make bench`` installs through the
``bench`` extra of python/pyproject.toml. Without matplotlib the run still completes: the chart
is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path

from measure import IN_FLIGHT, PAYLOAD_SIZES, size_label
from results import RunResults

__all__ = ["write_chart"]

# One colour per contender; the line style tells the number of requests in flight.
_COLOURS = {
    "raw_socket": "#000000",
    "mp_pipe": "#8c8c8c",
    "grpc_go": "#ff7f0e",
    "grpc_python": "#bcbd22",
    "python": "#1f77b4",
    "node": "#2ca02c",
    "go": "#d62728",
    "go_trio": "#9467bd",
}
_STYLES = {1: ("-", "o"), IN_FLIGHT: ("--", "s")}


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

    figure = Figure(figsize=(11, 7), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    for contender in run.contenders:
        for in_flight, (line, marker) in _STYLES.items():
            points = []
            for size in PAYLOAD_SIZES:
                cell = run.cell(kind="echo", size=size, in_flight=in_flight)
                value = cell.figure(contender.key, "mb_per_s") if cell else None
                if value:
                    points.append((size, value))
            if not points:
                continue
            axes.plot(
                [size for size, _ in points],
                [mb for _, mb in points],
                linestyle=line,
                marker=marker,
                color=_COLOURS.get(contender.key, "#17becf"),
                label=f"{contender.name}, {in_flight} in flight",
            )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(list(PAYLOAD_SIZES), [size_label(size) for size in PAYLOAD_SIZES])
    axes.minorticks_off()
    axes.set_xlabel("payload size (echo of bytes; aspect-ipc: data channel, Python parent)")
    axes.set_ylabel("MB/s (10^6 payload bytes/s, both directions; log scale)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=7, loc="lower right", ncols=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return None
