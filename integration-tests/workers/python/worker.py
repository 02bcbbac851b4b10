"""The Python test worker (integration-tests/WORKERS.md), built only from aspect_ipc's public API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
from aspect_ipc import ErrorCode, RemoteError
from aspect_ipc.worker import Worker

if os.environ.get("TEST_IGNORE_SIGTERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "TEST_JUNK_STDOUT" in os.environ:
    os.write(1, os.environ["TEST_JUNK_STDOUT"].encode() + b"\n")
if "TEST_EXIT_BEFORE_READY" in os.environ:
    print("exiting early", file=sys.stderr, flush=True)
    os._exit(int(os.environ["TEST_EXIT_BEFORE_READY"]))
if os.environ.get("TEST_NO_READY") == "1":
    print("not starting", file=sys.stderr, flush=True)
    while sys.stdin.buffer.read(65536):
        pass
    sys.exit(0)

worker = Worker()


def echo(params: Any) -> Any:
    return params


def add(params: dict[str, int]) -> int:
    return params["a"] + params["b"]


async def sleep(params: dict[str, Any]) -> str:
    try:
        await anyio.sleep(float(params["seconds"]))
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await worker.notify("cancelObserved", {"tag": params.get("tag")})
        raise
    return "done"


def fail(params: dict[str, Any]) -> None:
    if "code" in params:
        raise RemoteError(params["code"], params["message"], params.get("data"))
    raise RuntimeError(params["message"])


def crash(params: dict[str, int]) -> None:
    os._exit(params["code"])


async def call_parent(params: dict[str, Any]) -> Any:
    if params.get("via") == "data":
        return await worker.request_via_data(params["method"], params.get("params"))
    return await worker.request(params["method"], params.get("params"))


async def notify_parent(params: dict[str, Any]) -> None:
    if params.get("via") == "data":
        await worker.notify_via_data(params["method"], params.get("params"))
    else:
        await worker.notify(params["method"], params.get("params"))


def print_text(params: dict[str, str]) -> None:
    print(params["text"])


def stderr_text(params: dict[str, str]) -> None:
    print(params["text"], file=sys.stderr, flush=True)


def get_env(params: dict[str, str]) -> str | None:
    return os.environ.get(params["name"])


def child_env(params: dict[str, str]) -> str | None:
    out = subprocess.run(
        ["/usr/bin/env"], capture_output=True, text=True, check=True
    ).stdout
    prefix = params["name"] + "="
    return next(
        (line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix)),
        None,
    )


def freeze(params: Any) -> None:
    time.sleep(3600)  # blocks the event loop: neither channel is read or answered


def info(params: Any) -> dict[str, Any]:
    return {"language": "python", "pid": os.getpid()}


def process_items(params: dict[str, Any]) -> dict[str, Any]:
    items = params["items"]
    total = 0.0
    for item in items:  # in order, not sum(): every language must return the same bits
        total += item["value"]
    return {"processed": len(items), "sum": total}


def process_matrix(params: dict[str, Any]) -> dict[str, Any]:
    matrix = params["matrix"]
    rows = len(matrix)
    columns = len(matrix[0]) if rows else 0
    if rows * columns == 0:
        raise RemoteError(
            int(ErrorCode.INVALID_PARAMS), "Invalid params: matrix is empty"
        )
    total = 0.0
    for row in matrix:  # row by row, in order
        for value in row:
            total += value
    return {"sum": total, "avg": total / (rows * columns)}


METHODS = {
    "echo": echo,
    "add": add,
    "sleep": sleep,
    "fail": fail,
    "crash": crash,
    "callParent": call_parent,
    "notifyParent": notify_parent,
    "print": print_text,
    "stderr": stderr_text,
    "getEnv": get_env,
    "childEnv": child_env,
    "freeze": freeze,
    "info": info,
    "processItems": process_items,
    "processMatrix": process_matrix,
}
for name, handler in METHODS.items():
    worker.control(name)(handler)
    worker.data(name)(handler)

if __name__ == "__main__":
    worker.run()
