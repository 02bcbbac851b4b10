"""Remote tracebacks across languages (spec 4.10, 5.3): a Python parent; Python and Node workers
whose ``fail`` handler raises an ordinary error, a Go worker whose ``panic`` handler panics (a Go
error carries no stack: only a panic sends one). Real processes.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError, RemoteTraceback

pytestmark = pytest.mark.anyio

# The native first line of each language's stack text, for the error `fail` raises.
FIRST_LINE = {
    "python": "Traceback (most recent call last):",
    "node": "Error: boom",
    "go": "panic: boom",
}
REMOTE_TYPE = {"python": "RuntimeError", "node": "Error", "go": "string"}
# The method that fails with a stack: Go's `fail` returns an error, which has none (4.10).
FAILING = {"python": "fail", "node": "fail", "go": "panic"}


@pytest.fixture(params=["python", "node", "go"])
def language(request: pytest.FixtureRequest) -> str:
    from conftest import WORKERS

    if not os.path.exists(WORKERS[request.param][-1]):
        pytest.fail(f"the {request.param} test worker is not built: run make build")
    return str(request.param)


async def _until(lines: list[str], text: str) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while text not in "\n".join(lines):
            await anyio.sleep(0.01)


async def test_the_remote_stack_crosses_and_is_the_cause(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    stderr: list[str] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", lambda event: stderr.append(event.line or ""))
        handle = await manager.spawn(
            "tb", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        for via, call in (
            ("control", handle.request),
            ("data", handle.request_via_data),
        ):
            with pytest.raises(RemoteError) as info:
                await call(FAILING[language], {"message": "boom"})
            error = info.value
            remote_type = REMOTE_TYPE[language]
            assert str(error) == (
                f"worker tb: '{FAILING[language]}' on the {via} channel failed: "
                f"{remote_type}: boom (code -32000)"
            )
            assert error.remote_type == remote_type
            assert isinstance(error.__cause__, RemoteTraceback)
            remote = error.__cause__.traceback
            assert remote == error.remote_traceback
            assert remote.startswith(FIRST_LINE[language]) and "boom" in remote
            printed = "".join(traceback.format_exception(error))
            assert "The above exception was the direct cause" in printed
        # On by default: the worker wrote the failure, with its stack, to its stderr.
        await _until(stderr, FIRST_LINE[language])
        await _until(stderr, "on the data channel failed")


async def test_remote_tracebacks_false_sends_the_type_only(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    stderr: list[str] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", lambda event: stderr.append(event.line or ""))
        handle = await manager.spawn("tb", **worker, remote_tracebacks=False)
        with pytest.raises(RemoteError) as info:
            await handle.request(FAILING[language], {"message": "boom"})
        assert info.value.data == {"type": REMOTE_TYPE[language]}
        assert info.value.__cause__ is None and info.value.remote_traceback is None
        await _until(
            stderr, FIRST_LINE[language]
        )  # the stack stays on the worker's side


async def test_fail_carries_a_stack_except_from_go(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    # `fail` raises/throws/returns an ordinary error: a Python exception and a JavaScript Error
    # carry their stack; a Go error has none, so only its type crosses (a Go panic has one).
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("tb", **worker)
        with pytest.raises(RemoteError) as info:
            await handle.request("fail", {"message": "boom"})
        assert info.value.code == -32000 and info.value.remote_type
        if language == "go":
            assert info.value.remote_traceback is None and info.value.__cause__ is None
            assert "traceback" not in info.value.data
        else:
            assert isinstance(info.value.__cause__, RemoteTraceback)
            assert "boom" in (info.value.remote_traceback or "")


# `fail` with "notUnicode": its message ends in what the language cannot send as it is (a lone
# surrogate in Python and JavaScript, the byte 0xff in Go); the remote type of a `fail` error.
FAIL_TYPE = {"python": "RuntimeError", "node": "Error", "go": "errors.errorString"}


async def test_a_failure_whose_text_is_not_unicode_is_answered_with_its_type(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    # Spec 4.10, "Text that is not Unicode": the text becomes U+FFFD where it is not Unicode, and
    # the failure keeps its type and stack; a typed error keeps its code and data.
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "tb", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        for call in (handle.request, handle.request_via_data):
            with pytest.raises(RemoteError) as info:
                # A request must be answered: with no answer it would end in RequestTimeout.
                await call("fail", {"message": "boom", "notUnicode": True}, timeout=20)
            error = info.value
            assert (error.code, error.message) == (-32000, "boom \ufffd")
            assert error.remote_type == FAIL_TYPE[language]
            if language != "go":  # a Go error has no stack (4.10)
                assert "boom \ufffd" in (error.remote_traceback or "")
            typed = {"message": "boom", "code": 4001, "data": [1], "notUnicode": True}
            with pytest.raises(RemoteError) as info:
                await call("fail", typed, timeout=20)
            assert (info.value.code, info.value.message, info.value.data) == (
                4001,
                "boom \ufffd",
                [1],
            )


async def test_a_failure_without_text_is_named_by_its_type(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    # Spec 4.10: never an empty message; the parent names the type once.
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("tb", **worker)
        for method in ("fail", "panic") if language == "go" else ("fail",):
            with pytest.raises(RemoteError) as info:
                await handle.request(method, {"message": ""})
            error = info.value
            assert error.remote_type and error.message == error.remote_type, (
                error.message
            )
            assert str(error) == (
                f"worker tb: {method!r} on the control channel failed: {error.message} (code -32000)"
            )
