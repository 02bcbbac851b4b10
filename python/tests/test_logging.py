"""What the parent logs (real workers, caplog): life cycle lines on ``aspect_ipc.manager`` at
their levels, each worker's stderr on ``aspect_ipc.worker.<id>``, structured lines at their own
level."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from aspect_ipc import ChannelClosed, ProcessManager, RestartPolicy
from aspect_ipc._logging import log_stderr_line
from supervisor_kit import starts_once
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


def _lifecycle(caplog: pytest.LogCaptureFixture, worker_id: str) -> list[tuple[str, str, str]]:
    return [
        (r.levelname, getattr(r, "event", ""), r.getMessage())
        for r in caplog.records
        if r.name == "aspect_ipc.manager" and getattr(r, "worker_id", None) == worker_id
    ]


async def test_spawn_ready_exit_stop_are_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aspect_ipc")
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("log-1", **python_worker())
        pid = handle.pid
    lines = _lifecycle(caplog, "log-1")
    assert [(level, event) for level, event, _ in lines] == [
        ("INFO", "spawn"),
        ("INFO", "ready"),
        ("INFO", "exit"),
        ("INFO", "stop"),
    ]
    assert lines[0][2] == f"worker log-1: spawned (pid {pid})"
    assert lines[1][2] == f"worker log-1: ready (pid {pid}, python)"
    assert lines[2][2] == "worker log-1: exited (code 0)"
    assert lines[3][2] == "worker log-1: stopped"


async def test_crash_and_restart_are_warnings_failed_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aspect_ipc.manager")
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.01)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        handle = await manager.spawn("log-2", **python_worker())
        with pytest.raises(ChannelClosed):
            await handle.request("crash", {"code": 3})
        with anyio.fail_after(10):  # a hang guard
            while not (handle.restarts == 1 and handle.state.value == "running"):
                await anyio.sleep(0.01)
        with pytest.raises(ChannelClosed):
            await handle.request("crash", {"code": 4})
        await handle.wait()
    levels = [(level, event) for level, event, _ in _lifecycle(caplog, "log-2")]
    assert levels == [
        ("INFO", "spawn"),
        ("INFO", "ready"),
        ("WARNING", "crash"),
        ("WARNING", "restart"),
        ("INFO", "spawn"),
        ("INFO", "ready"),
        ("WARNING", "crash"),
        ("ERROR", "failed"),
    ]
    messages = [message for *_, message in _lifecycle(caplog, "log-2")]
    assert "exit code 3" in messages[2] and messages[3].endswith("(attempt 1)")
    assert messages[7].startswith("worker log-2: failed for good")


async def test_stderr_goes_to_the_worker_logger_structured_lines_keep_their_level(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"@level": "warn", "@message": "disk almost full", "@module": "store"}),
        json.dumps({"level": "ERROR", "msg": "lost the lease"}),
        json.dumps({"level": "debug", "message": "tick"}),
        json.dumps({"@level": "trace", "@message": "fine detail"}),
        json.dumps({"level": "loud", "msg": "unknown level: the whole line at INFO"}),
        "plain text",
        '{"not": "closed"',
    ]
    script = tmp_path / "structured.py"
    script.write_text(
        "import sys\n"
        "from aspect_ipc.worker import Worker\n"
        f"for line in {lines!r}:\n"
        "    print(line, file=sys.stderr, flush=True)\n"
        "Worker().run()\n"
    )
    caplog.set_level(logging.DEBUG, logger="aspect_ipc.worker.log-3")
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("log-3", executable=sys.executable, args=[str(script)])
        await handle.stop()
    records = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "aspect_ipc.worker.log-3"
    ]
    assert records == [
        ("WARNING", "disk almost full"),
        ("ERROR", "lost the lease"),
        ("DEBUG", "tick"),
        ("DEBUG", "fine detail"),
        ("INFO", lines[4]),
        ("INFO", "plain text"),
        ("INFO", '{"not": "closed"'),
    ]


async def test_every_record_about_a_worker_carries_its_id(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # parent-guide.md, Logging: a format with %(worker_id)s works for every record about a
    # worker, whichever logger writes it. Stray stdout, a notification nobody handles, an event
    # callback that raises and a restart that fails each write one.
    worker = starts_once(tmp_path, "ids", then="echo 'noise on stdout before the SDK'")

    def broken_callback(event: object) -> None:
        raise RuntimeError("a callback bug")

    caplog.set_level(logging.DEBUG, logger="aspect_ipc")
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.01)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        manager.on("crash", broken_callback)
        handle = await manager.spawn("log-ids", **worker)
        params = {"method": "nobodyListens", "params": None, "via": "control"}
        await handle.request("notifyParent", params)
        await handle.request("echo", [1])  # after the notification, on the same channel
        with pytest.raises(ChannelClosed):
            await handle.request("crash", {"code": 5})
        with anyio.fail_after(20):  # a hang guard
            await handle.wait()
    records = [r for r in caplog.records if r.name.startswith("aspect_ipc.")]
    formatter = logging.Formatter("%(worker_id)s %(name)s %(message)s")
    lines = [formatter.format(r) for r in records]  # a record without the attribute raises
    assert all(line.startswith("log-ids ") for line in lines), lines
    expected = [
        "aspect_ipc.worker.log-ids worker log-ids: stdout, not a protocol message (line is not "
        "valid JSON",
        "aspect_ipc.channel worker log-ids control channel: no handler for notification "
        "'nobodyListens'",
        "aspect_ipc.manager worker log-ids: the crash event callback",
        "aspect_ipc.worker.log-ids restart failed: worker log-ids exited during start-up",
    ]
    for start in expected:
        assert any(line.startswith(f"log-ids {start}") for line in lines), (start, lines)


def test_structured_lines_as_a_pure_function(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("aspect_ipc.worker.pure")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    for line in (
        '{"@level":"info","@message":"x"}',
        "[1, 2]",
        '{"level": 3}',
        '{"level":"warning"}',
    ):
        log_stderr_line(logger, "pure", line)
    assert [
        (r.levelname, r.getMessage(), getattr(r, "worker_id", None)) for r in caplog.records
    ] == [
        ("INFO", "x", "pure"),
        ("INFO", "[1, 2]", "pure"),
        ("INFO", '{"level": 3}', "pure"),
        ("WARNING", '{"level":"warning"}', "pure"),
    ]


def test_a_crash_is_summed_up_in_one_line_with_its_last_stderr_line() -> None:
    from aspect_ipc import WorkerCrashed
    from aspect_ipc._logging import crash_summary

    error = WorkerCrashed(
        "worker w crashed (exit code 3); last lines of its stderr:\nloading\nabout to crash",
        exit_code=3,
        stderr_tail="loading\nabout to crash\n",
    )
    assert crash_summary(error) == (
        "worker w crashed (exit code 3); its stderr ended with: about to crash"
    )
    quiet = WorkerCrashed("worker w crashed (signal 9)", signal=9)
    assert crash_summary(quiet) == "worker w crashed (signal 9)"


class _Raising(logging.Handler):
    """A handler that breaks logging's rule (``emit`` must not raise; logging's own handlers
    call ``handleError``), as a log shipper whose connection dropped might."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += 1
        raise OSError("log shipper: connection reset")


async def test_a_logging_handler_that_raises_breaks_nothing_and_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # It used to raise out of the library's own log calls: on the stop record the manager's
    # exit hung for ever; on spawn or ready, spawn() raised it; on a worker's stderr line the
    # reader stopped. Now each failure is reported on stderr, as logging reports its own.
    raising = _Raising()
    library = logging.getLogger("aspect_ipc")
    library.addHandler(raising)
    before = library.level
    library.setLevel(logging.DEBUG)
    try:
        with anyio.fail_after(30):
            async with ProcessManager(namespace=namespace()) as manager:
                handle = await manager.spawn("w", **python_worker())
                await handle.request("stderr", {"text": "a line on stderr"})
                assert await handle.request("add", {"a": 1, "b": 2}) == 3
                await handle.stop()
                assert handle.state.value == "stopped"
                again = await manager.spawn("w2", **python_worker())
                assert await again.request("add", {"a": 2, "b": 2}) == 4
    finally:
        library.removeHandler(raising)
        library.setLevel(before)
    assert raising.seen >= 6  # spawn, ready, the stderr line, exit, stop... each one tried
    err = capsys.readouterr().err
    assert "--- Logging error: a filter or handler of logger 'aspect_ipc.manager' raised ---" in err
    assert "OSError: log shipper: connection reset" in err


class _RaisingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        raise ValueError("a bug in the application's filter")


async def test_a_record_factory_or_a_filter_that_raises_breaks_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A record factory that gives every record a default worker_id (so that one format serves
    # the application's records too) made makeRecord refuse the library's extra: spawn() raised
    # KeyError, or a worker's stderr line ended its supervision, the worker reported as gone
    # ("exited on its own", code 0) and the manager's exit hung. A filter that raises did the
    # same from Logger.handle (the realistic-apps drill).
    factory = logging.getLogRecordFactory()

    def with_default_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.worker_id = "-"
        return record

    raising = _RaisingFilter()
    caplog.set_level(logging.INFO, logger="aspect_ipc")
    logging.setLogRecordFactory(with_default_id)
    try:
        with anyio.fail_after(30):
            async with ProcessManager(namespace=namespace()) as manager:
                handle = await manager.spawn("w", **python_worker())
                logging.getLogger("aspect_ipc.worker.w").addFilter(raising)
                await handle.request("stderr", {"text": "a line on stderr"})
                assert await handle.request("add", {"a": 1, "b": 2}) == 3
                logging.getLogger("aspect_ipc.worker.w").removeFilter(raising)
                await handle.request("stderr", {"text": "another line"})
                assert await handle.request("add", {"a": 2, "b": 2}) == 4
                assert (handle.state.value, handle.restarts) == ("running", 0)
    finally:
        logging.setLogRecordFactory(factory)
        logging.getLogger("aspect_ipc.worker.w").removeFilter(raising)
    lines = [r for r in caplog.records if r.name == "aspect_ipc.worker.w"]
    assert [r.getMessage() for r in lines][-1:] == ["another line"]
    assert {getattr(r, "worker_id", None) for r in lines} == {"w"}  # the library's id wins
    assert "stopped" in caplog.records[-1].getMessage()
    err = capsys.readouterr().err
    assert "making a record of logger 'aspect_ipc.manager' raised" in err
    assert "ValueError: a bug in the application's filter" in err


@pytest.mark.parametrize(
    ("tail", "telling"),
    [
        # Node's uncaught exception ends with its version: the summary said "Node.js v20.20.2".
        (
            "x.js:3\n  throw new Error('boom')\n  ^\n\nError: boom\n    at Timeout.f (x.js:3:9)\n\n"
            "Node.js v20.20.2",
            "Error: boom",
        ),
        # Go's abort ends with a register dump: the summary said "gs 0x0".
        (
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable\n"
            "SIGABRT: abort\nPC=0x47 m=3 sigcode=18446744073709551610\nrax 0x0\ngs 0x0",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
        ("panic: boom\n\ngoroutine 7 [running]:\nmain.f()\n\t/x/main.go:9 +0x25", "panic: boom"),
        (
            "Traceback (most recent call last):\n  File 'w.py', line 3\nKeyError: 'k'",
            "KeyError: 'k'",
        ),
        ("about to crash", "about to crash"),
        # An error the worker logged and lived on after is not the crash's cause: it was
        # quoted, and so blamed the wrong item (the realistic-apps drill).
        (
            "aspect-ipc worker: 'process' on the data channel failed:\nTraceback (most recent "
            "call last):\n  File 'w.py', line 9\nValueError: item 101 is poisoned\n"
            "py worker w: crashing on item 5",
            "py worker w: crashing on item 5",
        ),
        (
            "aspect-ipc worker: 'process' on the data channel failed:\nError: item 101 is "
            "poisoned\n    at process (w.js:3:9)\nnode worker w: crashing on item 5",
            "node worker w: crashing on item 5",
        ),
        (
            "x.js:1\nthrow e\n^\n\nError: boom\n    at f (x.js:1:1) {\n  code: 'ERR_X'\n}\n\n"
            "Node.js v20.20.2",
            "Error: boom",
        ),
    ],
)
def test_a_crash_summary_quotes_the_line_that_says_why(tail: str, telling: str) -> None:
    from aspect_ipc import WorkerCrashed
    from aspect_ipc._logging import crash_summary

    error = WorkerCrashed("worker w crashed (exit code 2)", exit_code=2, stderr_tail=tail)
    assert (
        crash_summary(error) == f"worker w crashed (exit code 2); its stderr ended with: {telling}"
    )


async def test_a_worker_id_leaves_no_logger_behind_unless_configured() -> None:
    # logging never drops a logger: a parent giving each job a worker of its own kept one per
    # id for ever, about 1.2 KB each (the leaks drill), pools recycling workers likewise.
    registry = logging.Logger.manager.loggerDict
    prefix = f"aspect_ipc.worker.{namespace()}"
    configured = logging.getLogger(f"{prefix}-kept")
    configured.setLevel(logging.WARNING)  # the application's: it stays, with its level
    try:
        async with ProcessManager(namespace=namespace()) as manager:
            for n in range(5):
                handle = await manager.spawn(f"{prefix[18:]}-{n}", **python_worker())
                await handle.request("stderr", {"text": f"job {n}"})
                await handle.stop()
                assert handle.logger_name not in registry  # gone with its worker
            kept = await manager.spawn(f"{prefix[18:]}-kept", **python_worker())
            await kept.stop()
            pool = await manager.spawn_pool(
                f"{prefix[18:]}-pool", 2, **python_worker(), max_requests_per_worker=2
            )
            for n in range(8):  # about four workers recycled
                await pool.request("add", {"a": n, "b": 1})
        assert {name for name in registry if name.startswith(prefix)} == {f"{prefix}-kept"}
        assert logging.getLogger(f"{prefix}-kept").level == logging.WARNING
    finally:
        registry.pop(f"{prefix}-kept", None)
