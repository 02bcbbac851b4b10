"""The Python test worker (integration-tests/WORKERS.md), built only from aspect_ipc's public API."""

from __future__ import annotations

import functools
import math
import operator
import os
import signal
import subprocess
import sys
import time
from typing import Any

if os.environ.get("TEST_NO_READY") == "1":  # before the imports below: said at once
    print("not starting", file=sys.stderr, flush=True)
    while sys.stdin.buffer.read(65536):
        pass
    sys.exit(0)

import anyio
from aspect_ipc import ErrorCode, MessagePackCodec, RemoteError
from aspect_ipc.worker import Worker, current_streams

if os.environ.get("TEST_IGNORE_SIGTERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "TEST_JUNK_STDOUT" in os.environ:
    os.write(1, os.environ["TEST_JUNK_STDOUT"].encode() + b"\n")
if "TEST_EXIT_BEFORE_READY" in os.environ:
    print("exiting early", file=sys.stderr, flush=True)
    os._exit(int(os.environ["TEST_EXIT_BEFORE_READY"]))


def _float64_array(value: dict[str, Any]) -> Any:
    """Decode hook (sumArray, WORKERS.md): a well-formed little-endian float64
    ``{"__ndarray__": ...}`` map becomes a ``memoryview`` of doubles over the received
    bytes (no numpy); every other map stays as it is, for the handler to name what is wrong."""
    array = value.get("__ndarray__")
    if len(value) != 1 or type(array) is not dict:
        return value
    dtype, shape, data = array.get("dtype"), array.get("shape"), array.get("data")
    if dtype != "<f8" or not _is_shape(shape) or type(data) is not bytes:
        return value
    if len(data) != 8 * math.prod(shape) or sys.byteorder != "little":
        return value
    return memoryview(data).cast("d")


def _is_shape(shape: Any) -> bool:
    return type(shape) is list and all(type(n) is int and n >= 0 for n in shape)


worker = Worker(data_codec=MessagePackCodec(decode_hook=_float64_array))


def echo(params: Any) -> Any:
    return params


def _invalid(text: str) -> RemoteError:
    return RemoteError(int(ErrorCode.INVALID_PARAMS), f"Invalid params: {text}")


def _member(params: Any, name: str, kinds: tuple[type, ...], what: str) -> Any:
    """``params[name]``, or -32602 naming the member and what was expected (bool is no number)."""
    if not isinstance(params, dict):
        raise _invalid(f"expected a map with {name!r} ({what})")
    value = params.get(name)
    if name not in params or type(value) not in kinds:
        got = "nothing" if name not in params else type(value).__name__
        raise _invalid(f"{name!r} must be {what}, got {got}")
    return value


NUMBER = (int, float)


def add(params: Any) -> int | float:
    a = _member(params, "a", NUMBER, "a number")
    b = _member(params, "b", NUMBER, "a number")
    if type(a) is int and type(b) is int:
        total = a + b
        if not -(2**63) <= total <= 2**63 - 1:
            raise _invalid("integer overflow: a + b is outside [-2**63, 2**63 - 1]")
        return total
    return float(a) + float(b)


async def sleep(params: dict[str, Any]) -> str:
    seconds = _member(params, "seconds", NUMBER, "a number of seconds")
    try:
        await anyio.sleep(float(seconds))
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await worker.notify("cancelObserved", {"tag": params.get("tag")})
        raise
    return "done"


def fail(params: dict[str, Any]) -> None:
    message = _member(params, "message", (str,), "a string")
    if params.get("notUnicode") is True:
        message += " \ud83d"  # half of an emoji: a str may hold it, no codec sends it
    if "code" in params:
        _member(params, "code", (int,), "an integer")
        raise RemoteError(params["code"], message, params.get("data"))
    raise RuntimeError(message)


def crash(params: dict[str, int]) -> None:
    os._exit(_member(params, "code", (int,), "an integer exit code"))


async def call_parent(params: dict[str, Any]) -> Any:
    _member(params, "method", (str,), "a method name")
    if params.get("via") == "data":
        return await worker.request_via_data(params["method"], params.get("params"))
    return await worker.request(params["method"], params.get("params"))


async def notify_parent(params: dict[str, Any]) -> None:
    _member(params, "method", (str,), "a method name")
    if params.get("via") == "data":
        await worker.notify_via_data(params["method"], params.get("params"))
    else:
        await worker.notify(params["method"], params.get("params"))


def print_text(params: dict[str, str]) -> None:
    print(_member(params, "text", (str,), "a string"))


def child_print(params: dict[str, str]) -> None:
    """A child process that inherits the worker's stdout writes ``text``, with no newline."""
    text = _member(params, "text", (str,), "a string")
    # subprocess's defaults: the child inherits descriptor 1, which the SDK pointed at stderr.
    subprocess.run(["printf", "%s", text], check=True)


def child_stdin(params: dict[str, Any]) -> str:
    """Runs ``argv`` as a child process that inherits the worker's stdin; returns its stdout."""
    argv = _member(params, "argv", (list,), "an array of strings")
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise _invalid("'argv' must be a non-empty array of strings")
    # subprocess's defaults: the child inherits descriptor 0, which the SDK pointed at /dev/null.
    return subprocess.run(argv, stdout=subprocess.PIPE, check=True, text=True).stdout


def stderr_text(params: dict[str, str]) -> None:
    print(_member(params, "text", (str,), "a string"), file=sys.stderr, flush=True)


def get_env(params: dict[str, str]) -> str | None:
    return os.environ.get(_member(params, "name", (str,), "a variable name"))


def child_env(params: dict[str, str]) -> str | None:
    out = subprocess.run(
        ["/usr/bin/env"], capture_output=True, text=True, check=True
    ).stdout
    prefix = _member(params, "name", (str,), "a variable name") + "="
    return next(
        (line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix)),
        None,
    )


def freeze(params: Any) -> None:
    # Deaf to SIGTERM too, like the Go worker's exec'd sleep: the SDK would otherwise exit
    # within its budget (the point of freeze is a worker that must be SIGKILLed).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(3600)  # blocks the event loop: neither channel is read or answered


def info(params: Any) -> dict[str, Any]:
    return {"language": "python", "pid": os.getpid()}


def spin(params: Any) -> dict[str, int]:
    """Keeps the CPU (and the event loop) busy for ``microseconds``."""
    microseconds = _member(
        params, "microseconds", (int,), "an integer number of microseconds"
    )
    end = time.perf_counter_ns() + microseconds * 1000
    while time.perf_counter_ns() < end:
        pass
    return {"pid": os.getpid()}


CHILDREN: list[subprocess.Popen[bytes]] = []


def spawn_child(params: Any) -> dict[str, int]:
    """Starts ``sleep seconds`` in the worker's own process group."""
    seconds = _member(params, "seconds", NUMBER, "a number of seconds")
    child = subprocess.Popen(
        ["sleep", str(seconds)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    CHILDREN.append(child)
    return {"pid": child.pid}


def sleep_busy(params: Any) -> str:
    """Sleeps synchronously: blocks the event loop, deaf to cancellation."""
    time.sleep(float(_member(params, "seconds", NUMBER, "a number of seconds")))
    return "done"


async def sleep_stubborn(params: Any) -> str:
    """Waits without blocking the event loop, ignoring its cancellation (a shielded sleep)."""
    seconds = float(_member(params, "seconds", NUMBER, "a number of seconds"))
    with anyio.CancelScope(shield=True):
        await anyio.sleep(seconds)
    return "done"


def process_items(params: dict[str, Any]) -> dict[str, Any]:
    items = _member(params, "items", (list,), "an array of {id, value} maps")
    total = 0.0
    for item in items:  # in order, not sum(): every language must return the same bits
        total += _member(item, "value", NUMBER, "a number in every item")
    return {"processed": len(items), "sum": total}


def process_matrix(params: dict[str, Any]) -> dict[str, Any]:
    matrix = _member(params, "matrix", (list,), "an array of arrays of numbers")
    rows = len(matrix)
    columns = len(matrix[0]) if rows and isinstance(matrix[0], list) else 0
    if rows * columns == 0:
        raise RemoteError(
            int(ErrorCode.INVALID_PARAMS), "Invalid params: matrix is empty"
        )
    total = 0.0
    for row in matrix:  # row by row, in order
        if not isinstance(row, list):
            raise _invalid("matrix must be an array of arrays of numbers")
        for value in row:
            if type(value) not in NUMBER:
                raise _invalid(
                    f"matrix values must be numbers, got {type(value).__name__}"
                )
            total += value
    return {"sum": total, "avg": total / (rows * columns)}


def sum_array(params: Any) -> dict[str, Any]:
    """Adds up a float64 array in index order (data channel only: the decode hook made it)."""
    array = params.get("array") if isinstance(params, dict) else None
    if type(array) is memoryview:
        # In index order from 0.0, as every language does: never sum(), which compensates
        # (Python 3.12+), nor a pairwise sum.
        total = functools.reduce(operator.add, array, 0.0)
        return {"sum": total, "count": len(array)}
    if type(array) is not dict or type(array.get("__ndarray__")) is not dict:
        raise _invalid("'array' must be a map {\"__ndarray__\": {dtype, shape, data}}")
    fields = array["__ndarray__"]
    if fields.get("dtype") != "<f8":
        raise _invalid(
            f"'array.__ndarray__.dtype' must be \"<f8\", got {fields.get('dtype')!r}"
        )
    shape = fields.get("shape")
    if not _is_shape(shape):
        raise _invalid("'array.__ndarray__.shape' must be an array of integers >= 0")
    data, size = fields.get("data"), 8 * math.prod(shape)
    got = f"{len(data)} bytes" if type(data) is bytes else type(data).__name__
    raise _invalid(
        f"'array.__ndarray__.data' must be binary of 8 × product(shape) = {size} bytes, got {got}"
    )


METHODS = {
    "echo": echo,
    "add": add,
    "sleep": sleep,
    "fail": fail,
    "crash": crash,
    "callParent": call_parent,
    "notifyParent": notify_parent,
    "print": print_text,
    "childPrint": child_print,
    "childStdin": child_stdin,
    "stderr": stderr_text,
    "getEnv": get_env,
    "childEnv": child_env,
    "freeze": freeze,
    "info": info,
    "processItems": process_items,
    "processMatrix": process_matrix,
    "spin": spin,
    "spawnChild": spawn_child,
    "sleepBusy": sleep_busy,
    "sleepStubborn": sleep_stubborn,
}
for name, handler in METHODS.items():
    worker.control(name)(handler)
    worker.data(name)(handler)

# -- notification order (PROTOCOL.md 4.5): `note` records, `notes` reads, one list per channel --

NOTES: dict[str, list[Any]] = {"control": [], "data": []}


def _note_on(channel: str) -> Any:
    async def note(params: Any) -> None:
        """Waits ``delayMs`` before recording ``value``: run one at a time, the records come out
        in arrival order; run concurrently, the shorter waits would record first."""
        if not isinstance(params, dict) or "value" not in params:
            raise _invalid("note: 'value' must be present (any value)")
        delay = _member(params, "delayMs", (int,), "an integer number of milliseconds")
        await anyio.sleep(delay / 1000)
        NOTES[channel].append(params["value"])

    return note


def _notes_on(channel: str) -> Any:
    def notes(params: Any) -> list[Any]:
        return list(NOTES[channel])

    return notes


worker.control_notification("note")(_note_on("control"))
worker.data_notification("note")(_note_on("data"))
worker.control("notes")(_notes_on("control"))
worker.data("notes")(_notes_on("data"))

# -- streams (PROTOCOL.md 13): countTo (output), sumStream (input), echoStream (both) --


def _count_to_on(channel: str) -> Any:
    async def count_to(params: Any) -> dict[str, int]:
        n = _member(params, "n", (int,), "an integer")
        size = _member(params, "size", (int,), "an integer")
        if n < 0 or size < 0 or 0 < size < 8:
            raise _invalid("n must be >= 0 and size 0 or >= 8")
        if size and channel == "control":
            raise _invalid("binary items (size > 0) travel on the data channel only")
        out = current_streams().output  # no output stream: -32602 before any item
        try:
            for i in range(n):
                await out.send(
                    i if size == 0 else i.to_bytes(8, "big") + bytes(size - 8)
                )
        except anyio.get_cancelled_exc_class():
            if "tag" in params:
                with anyio.CancelScope(shield=True):
                    await worker.notify("cancelObserved", {"tag": params.get("tag")})
            raise
        return {"count": n}

    return count_to


async def sum_stream(params: Any) -> int | float:
    exact, approx, floats = 0, 0.0, False
    index = 0
    async for item in current_streams().input:
        if type(item) not in NUMBER:
            raise _invalid(f"item {index} must be a number, got {type(item).__name__}")
        floats = floats or type(item) is float
        if not floats:
            exact += item
        approx += float(item)
        index += 1
    if floats:
        return approx
    if not -(2**63) <= exact <= 2**63 - 1:
        raise _invalid("integer overflow: the sum is outside [-2**63, 2**63 - 1]")
    return exact


async def echo_stream(params: Any) -> dict[str, int]:
    streams = current_streams()
    source, sink = streams.input, streams.output  # either missing: -32602
    count = 0
    async for item in source:
        await sink.send(item)
        count += 1
    return {"count": count}


worker.data("sumArray")(sum_array)  # binary: data only (WORKERS.md)
worker.control("countTo")(_count_to_on("control"))
worker.data("countTo")(_count_to_on("data"))
for name, handler in {"sumStream": sum_stream, "echoStream": echo_stream}.items():
    worker.control(name)(handler)
    worker.data(name)(handler)

if __name__ == "__main__":
    worker.run()
