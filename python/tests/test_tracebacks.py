"""Remote tracebacks (spec 4.10, 5.3) with real worker processes: what crosses, what the parent
raises, what the worker writes to its stderr, and what turns it off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    DataChannelOptions,
    ProcessEvent,
    ProcessManager,
    RemoteError,
    RemoteTraceback,
    WorkerExitedDuringStartup,
)
from aspect_ipc._handler_errors import handler_error, read_tracebacks
from vectors import cases
from workers import PYTHON_WORKER, namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


async def _stderr_until(lines: list[str], text: str) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while text not in "\n".join(lines):
            await anyio.sleep(0.01)


async def test_the_remote_stack_is_the_cause_and_the_text_says_where() -> None:
    stderr: list[str] = []
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("tb-1", **python_worker(), data_channel=DATA)
        handle.on("output", lambda event: stderr.append(event.line or ""))
        for via, call in (("control", handle.request), ("data", handle.request_via_data)):
            with pytest.raises(RemoteError) as info:
                await call("fail", {"message": "boom"})
            error = info.value
            assert str(error) == (
                f"worker tb-1: 'fail' on the {via} channel failed: RuntimeError: boom (code -32000)"
            )
            assert (error.worker_id, error.channel, error.method) == ("tb-1", via, "fail")
            assert error.remote_type == "RuntimeError"
            assert error.remote_traceback is not None
            assert error.remote_traceback.startswith("Traceback (most recent call last):\n")
            assert error.remote_traceback.endswith("RuntimeError: boom\n")
            assert "in fail" in error.remote_traceback  # the worker's frame, by name
            cause = error.__cause__
            assert isinstance(cause, RemoteTraceback)
            assert cause.traceback == error.remote_traceback
            assert str(cause) == f'\n"""\n{error.remote_traceback.rstrip()}\n"""'
            printed = "".join(traceback.format_exception(error))
            assert "The above exception was the direct cause of the following exception" in printed
            assert printed.index("RuntimeError: boom") < printed.index("RemoteError: worker tb-1")
        # The worker wrote both failures to its stderr, with their stacks (on by default).
        await _stderr_until(stderr, "'fail' on the data channel failed:")
        text = "\n".join(stderr)
        assert "'fail' on the control channel failed:\nTraceback (most recent call last):" in text
        assert text.count("RuntimeError: boom") == 2


async def test_an_exception_without_a_message_is_named_once() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("tb-5", **python_worker())
        with pytest.raises(RemoteError) as info:
            await handle.request("fail", {"message": ""})  # RuntimeError(): "MemoryError" alike
        assert (info.value.message, info.value.remote_type) == ("RuntimeError", "RuntimeError")
        assert str(info.value) == (
            "worker tb-5: 'fail' on the control channel failed: RuntimeError (code -32000)"
        )


async def test_a_typed_error_crosses_unchanged_without_a_cause() -> None:
    stderr: list[str] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", lambda event: stderr.append(event.line or ""))
        handle = await manager.spawn("tb-2", **python_worker())
        with pytest.raises(RemoteError) as info:
            await handle.request("fail", {"message": "typed", "code": 4001, "data": {"why": 1}})
        assert (info.value.code, info.value.data) == (4001, {"why": 1})
        assert info.value.remote_type is None and info.value.remote_traceback is None
        assert info.value.__cause__ is None
        assert (
            str(info.value)
            == "worker tb-2: 'fail' on the control channel failed: typed (code 4001)"
        )
        # An answer, not a bug: not written to stderr (stderr is in order: it would come first).
        with pytest.raises(RemoteError):
            await handle.request("fail", {"message": "plain"})
        await _stderr_until(stderr, "RuntimeError: plain")
        assert "typed" not in "\n".join(stderr)


async def test_remote_tracebacks_false_keeps_the_stack_in_the_worker() -> None:
    stderr: list[str] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", lambda event: stderr.append(event.line or ""))
        handle = await manager.spawn("tb-3", **python_worker(), remote_tracebacks=False)
        with pytest.raises(RemoteError) as info:
            await handle.request("fail", {"message": "secret"})
        assert info.value.data == {"type": "RuntimeError"}
        assert info.value.remote_traceback is None and info.value.__cause__ is None
        assert "RuntimeError: secret" in str(info.value)
        await _stderr_until(stderr, "RuntimeError: secret")  # still logged where it ran
        assert "Traceback (most recent call last):" in "\n".join(stderr)


@pytest.mark.parametrize("value", ["yes", "true", " 0", "00", "2"])
async def test_a_malformed_tracebacks_variable_stops_the_worker_with_exit_code_2(
    value: str,
) -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        with pytest.raises(WorkerExitedDuringStartup) as info:
            await manager.spawn("tb-4", **python_worker(), env={"ASPECT_IPC_TRACEBACKS": value})
        assert info.value.exit_code == 2
        assert "invalid ASPECT_IPC_TRACEBACKS" in info.value.stderr_tail


def test_a_worker_with_log_handler_errors_off_writes_nothing(tmp_path: Any) -> None:
    script = tmp_path / "quiet.py"
    script.write_text(
        "from aspect_ipc.worker import Worker\n"
        "worker = Worker(log_handler_errors=False)\n"
        "@worker.control('fail')\n"
        "def fail(params):\n"
        "    raise ValueError('quiet')\n"
        "worker.run()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        assert b"$/ready" in process.stdout.readline()
        process.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"fail"}\n')
        process.stdin.flush()
        answer = process.stdout.readline()  # answered: the handler has finished
        _, stderr = process.communicate(timeout=30)  # stdin EOF: the worker exits
    assert b'"traceback":"Traceback (most recent call last):' in answer
    assert b"quiet" not in stderr and process.returncode == 0


@pytest.mark.parametrize(("case_id", "case"), cases("environment.json", "tracebacks_cases"))
def test_tracebacks_variable_vectors(case_id: str, case: dict[str, Any]) -> None:
    environ = {} if case["value"] is None else {"ASPECT_IPC_TRACEBACKS": case["value"]}
    if case["expect"].get("error"):
        with pytest.raises(ValueError, match="invalid ASPECT_IPC_TRACEBACKS"):
            read_tracebacks(environ)
    else:
        assert read_tracebacks(environ) is case["expect"]["send_traceback"]


def test_the_variable_and_the_answer_as_pure_functions() -> None:
    assert read_tracebacks({}) and read_tracebacks({"ASPECT_IPC_TRACEBACKS": ""})
    assert read_tracebacks({"ASPECT_IPC_TRACEBACKS": "1"})
    assert not read_tracebacks({"ASPECT_IPC_TRACEBACKS": "0"})
    with pytest.raises(ValueError, match='invalid ASPECT_IPC_TRACEBACKS "on": expected "0"'):
        read_tracebacks({"ASPECT_IPC_TRACEBACKS": "on"})
    try:
        raise KeyError("k")
    except KeyError as exc:
        code, _, data = handler_error(exc, send_traceback=True)
        assert (code, data["type"]) == (-32000, "KeyError")
        assert data["traceback"] == "".join(traceback.format_exception(exc))
        assert handler_error(exc, send_traceback=False)[2] == {"type": "KeyError"}
    typed = RemoteError(7, "mine", [1])
    assert handler_error(typed, send_traceback=True) == (7, "mine", [1])


async def test_events_output_have_the_worker_id() -> None:
    seen: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", seen.append)
        handle = await manager.spawn("tb-5", executable=sys.executable, args=[PYTHON_WORKER])
        with pytest.raises(RemoteError):
            await handle.request("fail", {"message": "x"})
        await _stderr_until([event.line or "" for event in seen], "RuntimeError: x")
        assert {event.worker_id for event in seen} == {"tb-5"}


@pytest.mark.parametrize("tracebacks", [True, False])
async def test_the_parents_handler_errors_carry_its_stack_only_if_tracebacks_flow(
    caplog: pytest.LogCaptureFixture, tracebacks: bool
) -> None:
    # remote_tracebacks=False kept the worker's stack out of the parent, but the parent still
    # sent its own stack to the worker (which handles untrusted input) when a handler failed.
    caplog.set_level(logging.DEBUG, logger="aspect_ipc.trace")
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), remote_tracebacks=tracebacks, trace="payloads"
        )

        def price(params: Any) -> Any:
            raise ValueError("parent-side secret")

        handle.on_request("price", price)
        with pytest.raises(RemoteError):
            await handle.request("callParent", {"method": "price", "params": {}, "via": "control"})
    sent = [
        r.getMessage()
        for r in caplog.records
        if r.name == "aspect_ipc.trace" and r.direction == "send" and r.kind == "error"  # type: ignore[attr-defined]
    ]
    assert len(sent) == 1 and "ValueError" in sent[0]
    assert ("Traceback (most recent call last)" in sent[0]) is tracebacks
