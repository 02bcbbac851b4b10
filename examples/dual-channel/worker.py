"""The dual-channel example's worker, in Python (the seed's worker.ts, ported).

Control channel (stdio, JSON): getStatus, getConfig, shutdown.
Data channel (Unix socket, MessagePack): processItems, processMatrix.
Log lines go to stderr; the parent forwards them.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any

from aspect_ipc.worker import Worker

log = functools.partial(print, file=sys.stderr, flush=True)
started = time.monotonic()
worker = Worker()


@worker.control("getStatus")
def get_status(params: Any) -> dict[str, Any]:
    return {"status": "running", "uptime": int((time.monotonic() - started) * 1000)}


@worker.control("getConfig")
def get_config(params: Any) -> dict[str, Any]:
    return {"version": "1.0.0", "features": ["dual-channel", "msgpack", "hot-reload"]}


@worker.control("shutdown")
def shutdown(params: Any) -> None:
    log("Worker: Shutting down...")
    worker.shutdown()  # answers this request first, then closes both channels and exits 0


@worker.data("processItems")
def process_items(params: dict[str, Any]) -> dict[str, Any]:
    items = params["items"]
    log(f"Worker: Processing {len(items)} items...")
    total = 0.0
    for item in items:
        total += item["value"]
    return {"processed": len(items), "sum": total}


@worker.data("processMatrix")
def process_matrix(params: dict[str, Any]) -> dict[str, Any]:
    matrix = params["matrix"]
    rows, cols = len(matrix), len(matrix[0]) if matrix else 0
    log(f"Worker: Processing {rows}x{cols} matrix...")
    total = 0.0
    for row in matrix:
        for value in row:
            total += value
    return {"sum": total, "avg": total / (rows * cols)}


worker.on("control_ready")(lambda info: log("Worker: Control channel ready"))
worker.on("data_setup")(
    lambda info: log(f"Worker: Setting up data channel at {info['path']}...")
)
worker.on("data_listening")(lambda info: log("Worker: Data channel listening"))
worker.on("data_connected")(lambda info: log("Worker: Data channel client connected"))
worker.on("data_ready")(lambda info: log("Worker: Data channel ready"))
worker.on("ready")(lambda info: log("Worker: All channels ready"))

if __name__ == "__main__":
    log("Worker: Starting...")
    log("Worker: Setting up control channel (stdio)...")
    worker.run()
