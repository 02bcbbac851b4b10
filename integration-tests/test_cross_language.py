"""A Python parent drives Python, Node and Go workers, identically (real processes, sockets)."""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    DataChannelOptions,
    MessagePackCodec,
    ProcessEvent,
    ProcessManager,
    RemoteError,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
    WorkerState,
)
from aspect_ipc.framing import LengthPrefixedFraming

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


async def _wait_for(predicate: Any) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while not predicate():
            await anyio.sleep(0.01)


async def test_handshake_and_requests_on_both_channels(
    worker: dict[str, Any], language: str, namespace: str
) -> None:
    ready: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("ready", ready.append)
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        assert ready[0].info["language"] == language and ready[0].info["protocol"] == 1
        assert await handle.request("add", {"a": 20, "b": 22}) == 42
        assert await handle.request_via_data("add", {"a": 1, "b": 2}) == 3
        value = {"s": "héllo ✓", "n": [1, -2, 2**40, 0.5], "m": {"k": None, "t": True}}
        assert await handle.request("echo", value) == value
        assert await handle.request_via_data("echo", [value, b"\x00\xff"]) == [
            value,
            b"\x00\xff",
        ]
        assert await handle.request_via_data("echo", [2**64 - 1, -(2**63)]) == [
            2**64 - 1,
            -(2**63),
        ]
        assert await handle.request("info") == {"language": language, "pid": handle.pid}
        await handle.stop()
        assert handle.exit_code == 0


async def test_worker_calls_and_notifies_the_parent(
    worker: dict[str, Any], namespace: str
) -> None:
    notes: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        handle.on_request("mul", lambda p: p["a"] * p["b"], via="data")
        handle.on_request("greet", lambda p: f"hi {p['name']}")
        handle.on_notification("note", notes.append, via="data")
        call = {"method": "mul", "params": {"a": 6, "b": 7}, "via": "data"}
        assert await handle.request("callParent", call) == 42
        call = {"method": "greet", "params": {"name": "go"}, "via": "control"}
        assert await handle.request_via_data("callParent", call) == "hi go"
        await handle.request(
            "notifyParent", {"method": "note", "params": {"x": 1}, "via": "data"}
        )
        await _wait_for(lambda: notes)
    assert notes == [{"x": 1}]


async def test_16_mib_binary_echo_is_byte_exact(
    worker: dict[str, Any], namespace: str
) -> None:
    blob = os.urandom(16 * 1024 * 1024)
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        assert await handle.request_via_data("echo", [blob]) == [blob]


async def test_thousand_concurrent_requests(
    worker: dict[str, Any], namespace: str
) -> None:
    results: dict[int, Any] = {}
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)

        async def call(n: int) -> None:
            method = handle.request_via_data if n % 2 else handle.request
            results[n] = await method("add", {"a": n, "b": 1000})

        async with anyio.create_task_group() as tg:
            for n in range(1000):
                tg.start_soon(call, n)
    assert results == {n: n + 1000 for n in range(1000)}


async def test_errors_reach_python(worker: dict[str, Any], namespace: str) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        with pytest.raises(RemoteError) as info:
            await handle.request_via_data("fail", {"message": "it broke"})
        assert (info.value.code, info.value.message) == (-32000, "it broke")
        assert isinstance(info.value.data, dict) and info.value.data.get("type")
        with pytest.raises(RemoteError) as info:
            await handle.request(
                "fail", {"message": "typed", "code": 4242, "data": {"k": 1}}
            )
        assert (info.value.code, info.value.message, info.value.data) == (
            4242,
            "typed",
            {"k": 1},
        )
        with pytest.raises(RemoteError) as info:
            await handle.request_via_data("nope")
        assert info.value.code == -32601


@pytest.mark.parametrize("via", ["control", "data"])
async def test_timeout_and_cancellation_reach_the_handler(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    observed: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        handle.on_notification("cancelObserved", observed.append)
        call = handle.request_via_data if via == "data" else handle.request
        with pytest.raises(RequestTimeout):
            await call("sleep", {"seconds": 30, "tag": "timeout"}, timeout=0.3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "sleep", {"seconds": 30, "tag": "cancel"})
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
        await _wait_for(lambda: len(observed) == 2)
        assert await call("add", {"a": 1, "b": 1}) == 2
    assert sorted(o["tag"] for o in observed) == ["cancel", "timeout"]


async def test_crash_mid_request_restarts_then_gives_up(
    worker: dict[str, Any], namespace: str
) -> None:
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.05, reset_after=3600)
    async with ProcessManager(namespace=namespace, restart_policy=policy) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        pending: list[BaseException] = []

        async def sleeper() -> None:
            try:
                await handle.request_via_data("sleep", {"seconds": 60, "tag": "x"})
            except WorkerCrashed as exc:
                pending.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            await anyio.sleep(0.2)
            with pytest.raises(WorkerCrashed) as info:
                await handle.request("crash", {"code": 9})
        assert info.value.exit_code == 9 and len(pending) == 1
        assert await handle.request_via_data("add", {"a": 1, "b": 1}) == 2  # restarted
        with pytest.raises(WorkerCrashed):
            await handle.request("crash", {"code": 9})
        await handle.wait()
        assert handle.state is WorkerState.FAILED


async def test_junk_on_stdout_and_print_in_a_handler(
    worker: dict[str, Any], namespace: str
) -> None:
    output: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", output.append)
        handle = await manager.spawn(
            "w", **worker, env={"TEST_JUNK_STDOUT": "junk line"}
        )
        assert await handle.request("print", {"text": "printed"}) is None
        assert await handle.request("add", {"a": 2, "b": 2}) == 4
        await handle.request("stderr", {"text": "to stderr"})
        await _wait_for(
            lambda: ("stderr", "to stderr") in {(e.stream, e.line) for e in output}
        )
    lines = {(e.stream, e.line) for e in output}
    assert ("stdout", "junk line") in lines and ("stderr", "printed") in lines


async def test_worker_ignoring_sigterm_is_killed(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace, shutdown_grace=0.3) as manager:
        handle = await manager.spawn(
            "w", **worker, env={"TEST_IGNORE_SIGTERM": "1"}, data_channel=DATA
        )
        with pytest.raises(RequestTimeout):
            await handle.request("freeze", timeout=0.3)
        await handle.stop()
        assert handle.signal == signal.SIGKILL


async def test_foreign_clients_are_refused(
    worker: dict[str, Any], namespace: str
) -> None:
    codec, framing = MessagePackCodec(), LengthPrefixedFraming()
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "$/hello",
            "params": {"token": "0" * 64, "protocol": 1},
        }
        for payload in (
            framing.encode(codec.encode(hello)),
            (2**32 - 1).to_bytes(4, "big"),
        ):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(str(handle.spec.data_path))
                sock.sendall(payload)
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
            if payload.startswith(b"\xff"):
                assert b"jsonrpc" not in received or b"-32005" not in received
            else:
                reply = codec.decode(received[4:])
                assert reply["error"]["code"] == -32003 and "0" * 64 not in str(reply)
        assert await handle.request_via_data("echo", ["unharmed"]) == ["unharmed"]


async def test_token_not_inherited_by_grandchildren(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        assert await handle.request("getEnv", {"name": "ASPECT_IPC_TOKEN"}) is None
        assert await handle.request("childEnv", {"name": "ASPECT_IPC_TOKEN"}) is None
        assert await handle.request("childEnv", {"name": "ASPECT_IPC_WORKER_ID"}) == "w"
