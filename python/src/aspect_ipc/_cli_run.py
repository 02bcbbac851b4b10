"""What ``aspect-ipc call`` and ``aspect-ipc ping`` do, once their arguments are parsed.

Each job runs inside one :class:`ProcessManager`: leaving it, however (an answer, an error,
Ctrl-C), stops the worker and removes its socket file before the command exits. Errors are
mapped to the exit codes of :data:`aspect_ipc.cli.EXIT_CODES` here, in one place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import anyio

from .errors import (
    AddressInUse,
    ChannelClosed,
    CodecError,
    IpcError,
    ProtocolVersionMismatch,
    RemoteError,
    RequestTimeout,
    StartupError,
    Unauthorized,
    WorkerIdInUse,
)
from .manager import ProcessManager
from .options import DataChannelOptions, ProcessEvent, RestartPolicy

__all__ = ["Call", "Common", "Ping", "decode_binary", "encode_binary", "run"]

WORKER_ID = "worker"
READY_KEYS = ("protocol", "sdk", "sdkVersion", "language", "pid", "dataPath")
_START_UP_ERRORS = (
    StartupError,
    AddressInUse,
    Unauthorized,
    ProtocolVersionMismatch,
    WorkerIdInUse,
)


@dataclass(frozen=True)
class Common:
    """Options of every command: how the worker is spawned."""

    namespace: str
    env: dict[str, str]
    cwd: str | None
    startup_timeout: float
    socket_dir: str | None = None


@dataclass(frozen=True)
class Call:
    """``aspect-ipc call``: one request, its result printed as JSON."""

    common: Common
    command: list[str]
    method: str
    params: Any
    data: bool
    timeout: float
    pretty: bool


@dataclass(frozen=True)
class Ping:
    """``aspect-ipc ping``: the handshake, the ``$/ready`` info and the spawn-to-ready time."""

    common: Common
    command: list[str]
    data: bool
    as_json: bool


class _Exit(Exception):
    """Ends a job with an exit code, after the message went to stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def encode_binary(value: Any) -> Any:
    """``json.dumps`` default: bytes become ``{"$bin": "<hex>"}``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bin": bytes(value).hex()}
    raise TypeError(f"a {type(value).__name__} in the result has no JSON form")


def decode_binary(value: Any) -> Any:
    """Params as parsed from JSON, with every ``{"$bin": "<hex>"}`` turned into bytes.

    Raises:
        ValueError: a ``$bin`` string is not hex.
    """
    if isinstance(value, list):
        return [decode_binary(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bin"), str):
            try:
                return bytes.fromhex(value["$bin"])
            except ValueError:
                raise ValueError(f"{value['$bin']!r} in a $bin object is not hex") from None
        return {key: decode_binary(item) for key, item in value.items()}
    return value


def _say(text: str, stream: TextIO | None) -> None:
    """Write a line to ``stream``: nothing if it is closed (None), never to the other one."""
    if stream is None:
        return
    with contextlib.suppress(BrokenPipeError):  # the reader went away (| head)
        print(text, file=stream, flush=True)


def _output(text: str) -> None:
    """Write a result to stdout, as UTF-8 whatever the locale (JSON's encoding, RFC 8259); a
    stdout closed, or that fails, is an error (exit 6): the result would be lost without a
    word. A reader that went away (``| head``) is not."""
    if sys.stdout is None:
        raise _Exit(6, "the result cannot be written: stdout is closed")
    try:
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:
            _say(text, sys.stdout)
            return
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
            binary.write(text.encode("utf-8", "backslashreplace") + b"\n")
            binary.flush()
    except OSError as exc:
        raise _Exit(6, f"the result cannot be written to stdout: {exc.strerror or exc}") from None


_continued: set[str] = set()  # the streams whose last piece was not a line's end


def _forward_output(event: ProcessEvent) -> None:
    # The worker's stderr (and stray stdout) is its diagnostics: pass it on, marked as its own,
    # and a line on its stdout as such (it is not where a worker writes its diagnostics). A
    # line that came in pieces (over 16 KiB) is written back as one.
    stream = event.stream or "stderr"
    prefix = "" if stream in _continued else f"{_PREFIXES.get(stream, 'worker')}: "
    if event.info.get("continues"):
        _continued.add(stream)
        with contextlib.suppress(BrokenPipeError):
            sys.stderr.write(f"{prefix}{event.line}")
        return
    _continued.discard(stream)
    _say(f"{prefix}{event.line}", sys.stderr)


_PREFIXES = {"stdout": "worker stdout", "stderr": "worker"}


async def _spawn(manager: ProcessManager, command: list[str], common: Common, data: bool) -> Any:
    try:
        return await manager.spawn(
            WORKER_ID,
            executable=command[0],
            args=command[1:],
            cwd=common.cwd,
            env=common.env,
            data_channel=DataChannelOptions(enabled=data),
            restart_policy=RestartPolicy(enabled=False),
        )
    except _START_UP_ERRORS as exc:
        raise _Exit(3, str(exc)) from None


def _manager(common: Common, request_timeout: float = 30.0) -> ProcessManager:
    manager = ProcessManager(
        common.namespace,
        request_timeout=request_timeout,
        startup_timeout=common.startup_timeout,
        socket_dir=common.socket_dir,
    )
    manager.on("output", _forward_output)
    return manager


async def _call(job: Call) -> int:
    async with _manager(job.common, job.timeout) as manager:
        handle = await _spawn(manager, job.command, job.common, job.data)
        send = handle.request_via_data if job.data else handle.request
        try:
            result = await send(job.method, job.params, timeout=job.timeout)
        except RemoteError as exc:
            raise _Exit(1, str(exc)) from None
        except RequestTimeout as exc:
            raise _Exit(4, str(exc)) from None
        except CodecError as exc:
            raise _Exit(2, f"{job.method!r}: the params cannot be sent: {exc}") from None
        except ChannelClosed as exc:
            raise _Exit(5, str(exc)) from None
        except IpcError as exc:
            raise _Exit(5, f"{job.method!r} failed: {exc}") from None
        _output(
            json.dumps(
                result,
                default=encode_binary,
                indent=2 if job.pretty else None,
                ensure_ascii=False,  # text as text: JSON is UTF-8 (lone surrogates are escaped)
            )
        )
        await handle.stop()
    return 0


async def _ping(job: Ping) -> int:
    info: dict[str, Any] = {}

    def on_ready(event: ProcessEvent) -> None:
        info.update(event.info)

    async with _manager(job.common) as manager:
        manager.on("ready", on_ready)
        started = anyio.current_time()
        handle = await _spawn(manager, job.command, job.common, job.data)
        elapsed_ms = (anyio.current_time() - started) * 1000
        await handle.stop()
    ordered = {key: info[key] for key in READY_KEYS if key in info}
    ordered.update(sorted((key, value) for key, value in info.items() if key not in ordered))
    if job.as_json:
        _output(json.dumps({**ordered, "spawnToReadyMs": round(elapsed_ms, 1)}))
    else:
        lines = [
            f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
            for key, value in ordered.items()
        ]
        _output("\n".join([*lines, f"spawn to ready: {elapsed_ms:.1f} ms"]))
    return 0


async def _main(job: Call | Ping) -> int:
    interrupted: list[int] = []
    work: Callable[[], Awaitable[int]] = (
        (lambda: _call(job)) if isinstance(job, Call) else (lambda: _ping(job))
    )
    code = 0
    job_scope = anyio.CancelScope()
    async with anyio.create_task_group() as task_group:

        async def watch_signals() -> None:
            # Ctrl-C or SIGTERM: cancel the job; leaving the manager stops the worker. The
            # receiver stays open until then, so that a second Ctrl-C does not interrupt the
            # stopping (a KeyboardInterrupt inside the event loop).
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    if interrupted:
                        _say("aspect-ipc: still stopping the worker", sys.stderr)
                        continue
                    interrupted.append(128 + signum)
                    _say("aspect-ipc: interrupted, stopping the worker", sys.stderr)
                    job_scope.cancel()

        task_group.start_soon(watch_signals)
        with job_scope:
            try:
                code = await work()
            except _Exit as exc:
                _say(f"error: {exc}", sys.stderr)
                code = exc.code
        task_group.cancel_scope.cancel()
    return interrupted[0] if interrupted else code


def run(job: Call | Ping) -> int:
    """Run ``job`` on a fresh event loop; return the exit code."""
    # Worker stderr lines reach stderr through _forward_output, once: not again as log records;
    # and a failure is said once, by the "error:" line, not also by the lifecycle log.
    for name in ("aspect_ipc.worker", "aspect_ipc.manager"):
        quiet = logging.getLogger(name)
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    try:
        return anyio.run(_main, job)
    except _Exit as exc:
        _say(f"error: {exc}", sys.stderr)
        return exc.code
