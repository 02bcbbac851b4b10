"""Workers that lie to the parent (hostile/liar.py, started by ProcessManager like any worker).

Each lie gets a typed error or an event on the parent side, nothing hangs, and a well-behaved
sibling worker of the same ProcessManager keeps working throughout.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    ChannelClosed,
    DataChannelOptions,
    DataChannelTimeout,
    IpcError,
    ProcessEvent,
    ProcessHandle,
    ProcessManager,
    ProtocolError,
    ProtocolVersionMismatch,
    RequestTimeout,
    RestartPolicy,
    StartupError,
    Unauthorized,
    WorkerCrashed,
)
from aspect_ipc.paths import PipePath
from conftest import HOSTILE, WORKERS

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


def liar(start: str = "honest") -> dict[str, Any]:
    return {"executable": sys.executable, "args": [str(HOSTILE / "liar.py"), start]}


async def spawn_sibling(manager: ProcessManager) -> ProcessHandle:
    go = WORKERS["go"]
    return await manager.spawn(
        "sibling", executable=go[0], args=go[1:], data_channel=DATA
    )


def _open_sockets() -> int:
    """How many sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # the descriptor listdir itself used
            continue
    return count


async def assert_sibling_works(sibling: ProcessHandle) -> None:
    assert await sibling.request("add", {"a": 1, "b": 2}) == 3
    assert await sibling.request_via_data("echo", [b"\x01"]) == [b"\x01"]
    assert sibling.restarts == 0


async def wait_for(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while not predicate():
            await anyio.sleep(0.01)


def caller(handle: ProcessHandle, via: str) -> Callable[..., Any]:
    return handle.request_via_data if via == "data" else handle.request


def received_by_liar(output: list[ProcessEvent], via: str) -> list[Any]:
    """What the liar reported receiving on ``via`` besides requests (its stderr lines)."""
    prefix = f"{via} got "
    return [
        json.loads(event.line[len(prefix) :])
        for event in output
        if event.stream == "stderr" and event.line and event.line.startswith(prefix)
    ]


# -- start-up ---------------------------------------------------------------------------------

START_UP_LIES = {
    "ready-protocol-2": (ProtocolVersionMismatch, "parent speaks 1, worker w speaks 2"),
    "ready-protocol-float": (
        ProtocolVersionMismatch,
        "parent speaks 1, worker w speaks 1.0",
    ),
    "ready-not-a-map": (StartupError, "sent $/ready with params [1, 2], not a map"),
    "hello-other-worker": (Unauthorized, "answered $/hello as worker 'somebody-else'"),
    "hello-protocol-2": (ProtocolVersionMismatch, "w's data channel speaks 2"),
    "ready-no-data-path": (StartupError, "did not open the data channel"),
    "ready-parent-pid": (
        Unauthorized,
        "on {path}: worker w announced pid {parent} in $/ready, which is neither",
    ),
    "ready-no-pid": (
        Unauthorized,
        "unauthorized peer on {path}: worker w announced no pid",
    ),
    "ready-as-request": (StartupError, "sent $/ready as a request (with an id)"),
    "ready-no-protocol": (
        StartupError,
        "sent $/ready without a protocol: it must be the integer 1",
    ),
    "ready-protocol-string": (
        StartupError,
        "sent $/ready with protocol '1': it must be the integer",
    ),
    "hello-refuse": (Unauthorized, "refused $/hello"),
    "hello-version": (ProtocolVersionMismatch, "worker w"),
    "hello-close": (StartupError, "closed the data channel during $/hello"),
    "hello-oversize": (StartupError, "exceeds max_frame_size"),
    "hello-silent": (DataChannelTimeout, "within 1 s"),
    "ready-other-path": (StartupError, "not the one it was given ('{path}'"),
    # Spec 7.6: "data channel connection timeout: cannot connect to <path>: <reason>".
    "ready-not-listening": (DataChannelTimeout, "cannot connect to {path}"),
}


@pytest.mark.parametrize("start", sorted(START_UP_LIES))
async def test_lies_at_start_up_fail_the_spawn(namespace: str, start: str) -> None:
    error_type, text = START_UP_LIES[start]
    path = PipePath.for_module(namespace, "w")
    try:
        async with ProcessManager(namespace=namespace, shutdown_grace=0.5) as manager:
            sibling = await spawn_sibling(manager)
            sockets = _open_sockets()
            with pytest.raises(IpcError) as info:
                await manager.spawn(
                    "w", **liar(start), data_channel=DATA, startup_timeout=1
                )
            assert type(info.value) is error_type, info.value
            assert text.format(path=path, parent=os.getpid()) in str(info.value)
            # Whatever went wrong, a StartupError with the worker's stderr (parent guide).
            assert isinstance(info.value, StartupError)
            assert f"liar: starting as {start!r}" in info.value.stderr_tail
            assert info.value.stderr_tail in str(info.value)
            assert "w" not in manager.handles
            assert _open_sockets() == sockets, "the failed spawn left a socket open"
            await assert_sibling_works(sibling)
    finally:
        if os.path.exists(path + ".x"):  # where ready-other-path listened
            os.unlink(path + ".x")


async def test_a_second_ready_is_told_and_changes_nothing(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Spec 7.2: $/ready is the first message, once. A second one (with another dataPath) was
    # ignored without a word; it is still ignored, and the user is told.
    output: list[str] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", lambda event: output.append(event.line or ""))
        handle = await manager.spawn("w", **liar("ready-twice"), data_channel=DATA)
        assert await handle.request_via_data("echo", [1]) == [1]
        await wait_for(lambda: "a second $/ready" in caplog.text)
    # ... and reported as the worker's output, as the spec says (it was only logged).
    assert any(line.startswith("<a second $/ready: ") for line in output), output
    told = [r for r in caplog.records if "a second $/ready" in r.getMessage()]
    assert (
        told[0].levelname == "WARNING" and "/tmp/elsewhere.sock" in told[0].getMessage()
    )
    assert told[0].worker_id == "w"  # type: ignore[attr-defined]


async def test_a_stranger_listening_on_the_data_path_gets_no_token(
    namespace: str,
) -> None:
    """A process outside the worker's tree listens on the data path before the worker: the
    parent's peer check (spec 7.5) refuses it before writing anything, $/hello included."""
    path = PipePath.for_module(namespace, "w")
    squatter = [sys.executable, str(HOSTILE / "squatter.py"), path]
    spawned: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        sibling = await spawn_sibling(manager)
        # Once the liar runs, the parent's check that the path is free is behind us.
        manager.on("spawn", spawned.append)
        failure: list[BaseException] = []

        async def spawn() -> None:
            try:
                await manager.spawn("w", **liar("squatted"), data_channel=DATA)
            except IpcError as exc:
                failure.append(exc)

        sockets = _open_sockets()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(spawn)
            await wait_for(lambda: bool(spawned))
            process = await anyio.open_process(squatter)
            assert process.stdout is not None and process.stdin is not None
            async with process:
                assert (await process.stdout.receive()).startswith(b"listening")
                await wait_for(lambda: bool(failure))
                await process.stdin.aclose()
                output = b""
                async for chunk in process.stdout:
                    output += chunk
        [error] = failure
        assert type(error) is Unauthorized and f"unauthorized peer on {path}" in str(
            error
        )
        # The parent's data connection, then its staleness probe after the failure.
        connections = json.loads(output.splitlines()[-1])["connections"]
        assert connections and set(connections) == {0}, (
            "the parent wrote to the stranger"
        )
        assert _open_sockets() == sockets, "the refused connection is still open"
        await assert_sibling_works(sibling)


# -- running ----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["control", "data"])
async def test_stray_and_duplicate_responses_are_dropped(
    namespace: str, via: str
) -> None:
    """Responses to ids never issued, or answered twice, complete nothing and are never
    answered (spec 4.3); every request still gets its own result."""
    output: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        call = caller(handle, via)
        for n in range(3):
            assert await call("dupe", [n]) == [n]
            assert await call("unknownIds", {"n": n}) == {"n": n}
            assert await call("echo", [n, "next"]) == [n, "next"]
        results = await _gather(call, [("echo", [n]) for n in range(50)])
        assert results == [[n] for n in range(50)]
        await handle.stop()
        assert received_by_liar(output, via) == [], "the parent answered a response"
        assert not [e for e in output if e.stream == "stdout"]
        await assert_sibling_works(sibling)


async def _gather(call: Callable[..., Any], calls: list[tuple[str, Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def one(index: int, method: str, params: Any) -> None:
        results[index] = await call(method, params)

    async with anyio.create_task_group() as task_group:
        for index, (method, params) in enumerate(calls):
            task_group.start_soon(one, index, method, params)
    return results


async def test_garbage_on_stdout_is_reported_as_worker_output(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Spec 1.5: a line that is not a JSON-RPC message is worker output, never fatal."""
    output: list[ProcessEvent] = []
    caplog.set_level(logging.WARNING, logger="aspect_ipc.worker")
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        assert await handle.request("garbage") == 6
        assert await handle.request("oversize", ["after"]) == ["after"]
        await wait_for(lambda: len([e for e in output if e.stream == "stdout"]) == 6)
        lines = [e.line for e in output if e.stream == "stdout"]
        assert lines == [
            "\ufffd\ufffd\ufffd not UTF-8",
            "not json at all",
            "[1, 2, 3]",
            '{"jsonrpc": "2.0"}',
            '{"jsonrpc": "2.0", "method": 42, "id": 1}',
            "\x00\x01\x02\x03",
        ]
        # The line over the limit is skipped, and said by a warning of the parent's own, not
        # as output the worker would have written.
        skipped = [
            r.getMessage()
            for r in caplog.records
            if "exceeds max_line_length of 1048576 bytes" in r.getMessage()
        ]
        assert len(skipped) == 1 and skipped[0].startswith("worker w: stdout: "), (
            skipped
        )
        assert all(e.worker_id == "w" for e in output if e.stream == "stdout")
        assert await handle.request("echo", ["still fine"]) == ["still fine"]
        await handle.stop()
        assert received_by_liar(output, "control") == [], "worker output was answered"
        await assert_sibling_works(sibling)


async def test_garbage_on_the_data_channel_is_answered_and_survived(
    namespace: str,
) -> None:
    """Spec 2.5, 4.7, 4.8: undecodable frames get -32700, a batch or a null-id request -32600,
    all with id null; the connection stays."""
    output: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        assert await handle.request_via_data("garbage") == 7
        await wait_for(lambda: len(received_by_liar(output, "data")) == 7)
        replies = received_by_liar(output, "data")
        assert [(r["id"], r["error"]["code"]) for r in replies] == [
            (None, -32700)
        ] * 5 + [(None, -32600)] * 2
        assert "batches are not supported" in replies[5]["error"]["message"]
        assert await handle.request_via_data("echo", ["still fine"]) == ["still fine"]
        assert handle.restarts == 0
        await assert_sibling_works(sibling)


async def test_legal_json_python_cannot_handle_does_not_bring_the_parent_down(
    namespace: str,
) -> None:
    """Two legal JSON lines Python cannot take as they are: a 5000-digit integer (int()
    refuses more than 4300 digits by default) and a request whose string is a lone surrogate
    (decodable, but no UTF-8 encoder can write it back when the parent's handler echoes it).
    Either may be refused as bad input or handled, but the channel, the manager and the sibling
    stay up, and the parent answers the request at most once."""
    output: list[ProcessEvent] = []
    ticks: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        handle.on_request("echo", lambda params: params)
        handle.on_notification("tick", ticks.append)
        assert await handle.request("hugeNumber", ["after"]) == ["after"]
        assert await handle.request("loneSurrogate", ["after"]) == ["after"]
        assert await handle.request_via_data("echo", ["data too"]) == ["data too"]
        await handle.stop()  # the liar's whole stderr is in once it has exited
        huge_reported = any(
            e.stream == "stdout" and "1111" in (e.line or "") for e in output
        )
        assert len(ticks) == 1 or huge_reported
        replies = [
            r for r in received_by_liar(output, "control") if r.get("id") == "s1"
        ]
        assert len(replies) <= 1
        await assert_sibling_works(sibling)


MALFORMED = [
    "error-not-map",
    "code-not-int",
    "message-not-str",
    "result-and-error",
    "no-jsonrpc",
]


@pytest.mark.parametrize("via", ["control", "data"])
async def test_malformed_responses_fail_their_request(namespace: str, via: str) -> None:
    """Spec 4.3: an invalid response whose id matches a pending request fails it with a
    protocol error (and spec 1.5 says the same of any such line on control)."""
    shapes = MALFORMED
    async with ProcessManager(namespace=namespace, request_timeout=5) as manager:
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        call = caller(handle, via)
        errors: dict[str, BaseException] = {}

        async def one(shape: str) -> None:
            try:
                await call("badResponse", {"shape": shape})
            except IpcError as exc:
                errors[shape] = exc

        async with anyio.create_task_group() as task_group:
            for shape in shapes:
                task_group.start_soon(one, shape)
        assert {shape: type(error) for shape, error in errors.items()} == dict.fromkeys(
            shapes, ProtocolError
        )
        assert await call("echo", ["after"]) == ["after"]
        await assert_sibling_works(sibling)


@pytest.mark.parametrize("via", ["control", "data"])
async def test_responses_with_a_mistyped_id_match_nothing(
    namespace: str, via: str
) -> None:
    """ "1" is not 1 and 1.0 is not 1 (spec 4.2, 4.4): such a response completes nothing and
    is never answered; the request ends by its timeout."""
    output: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        call = caller(handle, via)

        async def one(shape: str) -> None:
            with pytest.raises(RequestTimeout):
                await call("badResponse", {"shape": shape}, timeout=0.5)

        async with anyio.create_task_group() as task_group:
            for shape in ("id-as-string", "id-as-float"):
                task_group.start_soon(one, shape)
        assert await call("echo", ["after"]) == ["after"]
        await handle.stop()
        assert [r for r in received_by_liar(output, via) if "error" in r] == []
        await assert_sibling_works(sibling)


async def test_an_oversized_frame_from_a_worker_says_why_it_was_killed(
    namespace: str,
) -> None:
    """A header above the parent's limit closes the data connection (spec 2.3); the parent then
    kills the worker and restarts it. The error that reaches the user names the cause."""
    crashes: list[ProcessEvent] = []
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.05)
    data = DataChannelOptions(enabled=True, max_frame_size=4096)
    async with ProcessManager(
        namespace=namespace, shutdown_grace=0.3, restart_policy=policy
    ) as manager:
        manager.on("crash", crashes.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=data)
        with pytest.raises(ChannelClosed) as info:
            await handle.request_via_data("oversize")
        await wait_for(lambda: handle.restarts == 1 and handle.state.value == "running")
        assert await handle.request_via_data("echo", ["restarted"]) == ["restarted"]
        [crash] = crashes
        assert isinstance(crash.error, WorkerCrashed)
        for error in (info.value, crash.error):
            # The parent's own words: the liar's stderr (in the tail) repeats what it was sent.
            tail = getattr(error, "stderr_tail", "")
            words = str(error).replace(tail, "") if tail else str(error)
            assert "max_frame_size" in words, f"no cause in: {words}"
        await assert_sibling_works(sibling)


async def test_a_worker_that_closes_its_stdout_has_crashed(namespace: str) -> None:
    """Spec 8.5: a worker whose control channel closes while the process lives has crashed
    (the parent kills it), whatever its exit status once it notices its stdin closed."""
    crashes: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace, shutdown_grace=0.3) as manager:
        manager.on("crash", crashes.append)
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar("stdout-close"), data_channel=DATA)
        await handle.wait()  # no restart policy: stopped or failed for good
        assert [type(event.error) for event in crashes] == [WorkerCrashed], (
            f"reported as a clean exit (exit code {handle.exit_code})"
        )
        await assert_sibling_works(sibling)


def _reset_peak_memory() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak RSS, to the current RSS


def _memory(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


async def test_a_notification_flood_is_delivered_in_order_in_bounded_memory(
    namespace: str,
) -> None:
    """100,000 notifications on each channel, as fast as the liar can write them: every one
    reaches the handler, in order, and the parent's peak RSS grows by far less than what the
    flood would take if the parent buffered it (the reader waits for the handler)."""
    count = 100_000
    seen = {"control": [0, 0], "data": [0, 0]}  # [received, received out of order]

    def counter(via: str) -> Callable[[Any], None]:
        def tick(params: Any) -> None:
            seen[via][1] += params["i"] != seen[via][0]
            seen[via][0] += 1

        return tick

    async with ProcessManager(namespace=namespace) as manager:
        sibling = await spawn_sibling(manager)
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        results = {}

        async def flood(via: str) -> None:
            handle.on_notification("tick", counter(via), via=via)
            params = {"count": count, "size": 200}
            results[via] = await caller(handle, via)("flood", params, timeout=120)

        baseline = _memory("VmRSS")
        _reset_peak_memory()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(flood, "control")
            task_group.start_soon(flood, "data")
        peak = _memory("VmHWM")
        assert results == {"control": count, "data": count}
        # An answer is never queued behind notification handlers (spec 4.5): the last few
        # notifications before it may still be on their way to the handler when it returns.
        with anyio.fail_after(30):
            while seen["control"][0] < count or seen["data"][0] < count:
                await anyio.sleep(0.01)
        assert seen == {"control": [count, 0], "data": [count, 0]}
        # Buffered whole, the flood would be 2 x 100,000 x ~250 bytes on the wire alone.
        assert peak - baseline < 32 * 1024 * 1024
        assert handle.restarts == 0
        await assert_sibling_works(sibling)


async def test_an_answer_over_the_line_limit_fails_its_request_at_once(
    namespace: str,
) -> None:
    """Spec 4.9: a responder answers -32005 instead of a line over the limit. A worker without
    an SDK that sends the line anyway: it is skipped (1.3), and the request it answered fails at
    once, saying so. It waited out its timeout, then read RequestTimeout: "no response"."""
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **liar(), data_channel=DATA)
        with anyio.fail_after(30), pytest.raises(ProtocolError) as info:  # a hang guard
            await handle.request("oversizeAnswer", timeout=120)
        message = str(info.value)
        assert "the answer to request" in message
        assert (
            "bytes, over max_line_length of 1048576 bytes, and was skipped" in message
        )
        assert "spec 4.9" in message
        assert await handle.request("echo", ["after"]) == [
            "after"
        ]  # the channel goes on
