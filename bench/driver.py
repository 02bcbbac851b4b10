"""One contender's process: measures the cells the coordinator sends, one at a time.

Started by schedule.py as ``python bench/driver.py CONTENDER_JSON``. Reads one JSON line per
cell on stdin, ``{"cell": {...}, "budget": {...}}``, and answers each with one JSON line on
stdout, ``{"figures": {...}}`` or ``{"error": "..."}``; exits at the end of stdin, stopping its
worker or server. Long-lived, it measures every cell of a run; with ``--fresh`` it is started for
one cell and one round, so its figures are what a short script sees.

The top level imports nothing of the benchmark: ``multiprocessing``'s spawned servers import this
module again as their ``__main__``.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, TextIO


def main() -> None:
    from contenders import Contender

    contender = Contender.from_json(json.loads(sys.argv[1]))
    # Our stdout carries the answers: whatever else writes to it would corrupt them.
    answers = sys.stdout
    sys.stdout = sys.stderr
    if contender.is_aspect:
        import anyio

        anyio.run(_serve_aspect, contender, answers, backend=contender.backend)
    else:
        _serve_blocking(contender, answers)


def _serve_blocking(contender: Any, answers: TextIO) -> None:
    from blocking_cells import BlockingDriver
    from measure import Budget

    driver = BlockingDriver(contender)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                figures = driver.measure(command["cell"], Budget.from_json(command["budget"]))
            except Exception:
                _answer(answers, {"error": traceback.format_exc()})
            else:
                _answer(answers, {"figures": figures})
    finally:
        driver.close()


async def _serve_aspect(contender: Any, answers: TextIO) -> None:
    import os

    import anyio
    from aspect_cells import AspectDriver
    from aspect_ipc import ProcessManager
    from measure import Budget

    async with ProcessManager(namespace=f"bench{os.getpid()}", request_timeout=600) as manager:
        driver = AspectDriver(contender, manager)
        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            command = json.loads(line)
            try:
                figures = await driver.measure(command["cell"], Budget.from_json(command["budget"]))
            except Exception:
                _answer(answers, {"error": traceback.format_exc()})
            else:
                _answer(answers, {"figures": figures})


def _answer(answers: TextIO, message: dict[str, Any]) -> None:
    answers.write(json.dumps(message) + "\n")
    answers.flush()


if __name__ == "__main__":
    main()
