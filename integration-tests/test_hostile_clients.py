"""Foreign processes knock on a worker's data socket (spec 2, 7.4, 12).

The intruder (hostile/intruder.py) is a separate process that is not the parent. Whatever it
sends, it gets the spec's refusal and a closed connection, and the worker stays healthy: the
parent's requests on both channels keep working, with the same process (no restart).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    DataChannelOptions,
    MessagePackCodec,
    ProcessEvent,
    ProcessHandle,
    ProcessManager,
    WorkerState,
)
from aspect_ipc.framing import LengthPrefixedFraming
from conftest import HOSTILE

pytestmark = pytest.mark.anyio
LIMIT = 4096  # the data channel's max_frame_size in these tests: both sides are told
codec, framing = MessagePackCodec(), LengthPrefixedFraming(2**32 - 1)


def frame(message: Any) -> str:
    return framing.encode(codec.encode(message)).hex()


def hello(token: Any, *, request_id: Any = 1, protocol: int = 1) -> dict[str, Any]:
    params = {"token": token, "protocol": protocol}
    return {"jsonrpc": "2.0", "id": request_id, "method": "$/hello", "params": params}


async def intrude(path: str, attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    command = [sys.executable, str(HOSTILE / "intruder.py"), path]
    done = await anyio.run_process(command, input=json.dumps(attempts).encode())
    results: list[dict[str, Any]] = json.loads(done.stdout)["attempts"]
    return results


async def assert_healthy(handle: ProcessHandle, pid: int | None) -> None:
    """Both channels answer, from the same process: the worker neither died nor restarted."""
    assert await handle.request("add", {"a": 40, "b": 2}) == 42
    assert await handle.request_via_data("echo", [b"\x00ok"]) == [b"\x00ok"]
    assert (handle.pid, handle.restarts, handle.state) == (pid, 0, WorkerState.RUNNING)


def refused(result: dict[str, Any], code: int, request_id: Any) -> dict[str, Any]:
    """The one error frame the worker sent before closing the connection (``request_id``: the
    id it must carry, or a tuple of the ids it may carry)."""
    assert result["closed"], "the worker kept the connection open"
    [reply] = result["frames"]
    assert reply["jsonrpc"] == "2.0" and "result" not in reply
    assert reply["error"]["code"] == code
    allowed = request_id if isinstance(request_id, tuple) else (request_id,)
    assert reply["id"] in allowed and type(reply["id"]) in map(type, allowed)
    error: dict[str, Any] = reply["error"]
    return error


async def test_first_frames_that_are_not_a_valid_hello_are_refused(
    worker: dict[str, Any], namespace: str
) -> None:
    wrong = "f" * 64
    refusals: list[tuple[Any, Any]] = [  # (first frame, id of the -32003 answer)
        (hello(wrong), 1),
        (hello(wrong[:10], request_id="s"), "s"),
        (hello(12345, request_id=-4), -4),
        (hello(None, request_id=2**63), 2**63),
        ({"jsonrpc": "2.0", "id": 5, "method": "$/hello"}, 5),
        ({"jsonrpc": "2.0", "method": "$/hello", "params": {"token": wrong}}, None),
        # Requests that would hurt if they ran: the worker must not even dispatch them.
        ({"jsonrpc": "2.0", "id": 7, "method": "crash", "params": {"code": 3}}, 7),
        ({"jsonrpc": "2.0", "id": 8, "method": "$/shutdown"}, 8),
        ({"jsonrpc": "2.0", "method": "notifyParent", "params": {"method": "x"}}, None),
        ([hello(wrong)], None),  # a batch
    ]
    # A response first: the spec does not say which id the -32003 carries (Python and Go send
    # null, Node the response's id); that it is refused is what matters here.
    refusals.append(({"jsonrpc": "2.0", "id": 1, "result": "a response"}, (None, 1)))
    attempts = [{"send": frame(message)} for message, _ in refusals]
    attempts.append({"send": framing.encode(b"\xc1\xc1").hex()})  # not MessagePack
    lines: list[str] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", lambda event: lines.append(event.line or ""))
        handle = await manager.spawn(
            "w",
            **worker,
            data_channel=DataChannelOptions(enabled=True, max_frame_size=LIMIT),
        )
        pid = handle.pid
        assert handle.spec.data_path is not None
        results = await intrude(handle.spec.data_path, attempts)
        for result, (_, request_id) in zip(
            results, [*refusals, (None, None)], strict=True
        ):
            error = refused(result, -32003, request_id)
            assert wrong not in json.dumps(result) and "12345" not in error["message"]
        await assert_healthy(handle, pid)
    # Each refusal is a line on the worker's stderr, in the parent's logs (spec 7.4); the
    # Python worker wrote none.
    said = [line for line in lines if "data connection refused: " in line]
    assert len(said) == len(attempts), lines
    assert not [line for line in said if wrong in line or wrong[:10] in line], said


async def test_framing_violations_close_the_connection(
    worker: dict[str, Any], namespace: str
) -> None:
    """Over-limit headers (4 GiB, limit + 1, an HTTP request read as a header) and an empty
    frame: the worker closes at once, after at most the optional -32005 (spec 2.2, 2.3)."""
    sends = {
        "4 GiB": b"\xff\xff\xff\xff",
        "limit + 1": (LIMIT + 1).to_bytes(4, "big") + b"\x00" * 16,
        "http": b"GET / HTTP/1.1\r\nHost: worker\r\n\r\n",
        "empty frame": b"\x00\x00\x00\x00" + bytes.fromhex(frame(hello("0" * 64))),
    }
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w",
            **worker,
            data_channel=DataChannelOptions(enabled=True, max_frame_size=LIMIT),
        )
        pid = handle.pid
        assert handle.spec.data_path is not None
        attempts = [{"send": data.hex()} for data in sends.values()]
        results = await intrude(handle.spec.data_path, attempts)
        for name, result in zip(sends, results, strict=True):
            assert result["closed"], f"{name}: the connection was left open"
            if name == "empty frame":
                assert result["frames"] == [], "an empty frame is not answered (2.2)"
            elif result["frames"]:
                [reply] = result["frames"]
                assert (reply["error"]["code"], reply["id"]) == (-32005, None), name
        await assert_healthy(handle, pid)


async def test_silent_connections_do_not_disturb_the_parent(
    worker: dict[str, Any], namespace: str
) -> None:
    """Twenty connections that never say $/hello stay pending (the hello timeout, 10 s, would
    close them) while the parent works on both channels; closing them changes nothing."""
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        pid = handle.pid
        assert handle.spec.data_path is not None
        command = [
            sys.executable,
            str(HOSTILE / "intruder.py"),
            handle.spec.data_path,
            "hold",
            "20",
        ]
        async with await anyio.open_process(command) as intruder:
            assert intruder.stdout is not None and intruder.stdin is not None
            assert (await intruder.stdout.receive()).startswith(b"connected")
            await assert_healthy(handle, pid)
            await intruder.stdin.aclose()
            output = b""
            async for chunk in intruder.stdout:
                output += chunk
        for result in json.loads(output)["attempts"]:
            assert result["bytes"] == 0, "a silent connection was answered"
        await assert_healthy(handle, pid)


async def test_a_second_connection_cannot_take_over_the_data_channel(
    worker: dict[str, Any], namespace: str, spawned_token: Any
) -> None:
    """Even with the right token (any process of the user can read it in /proc/<pid>/environ),
    a second connection is refused while the parent's is authenticated (spec 7.4)."""
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        handle.on_request("whoami", lambda params: "the parent", via="data")
        pid = handle.pid
        assert handle.spec.data_path is not None and pid is not None
        token = spawned_token(pid)
        assert token is not None and len(token) == 64
        results = await intrude(
            handle.spec.data_path,
            [
                {"send": frame(hello(token, request_id=11))},
                {"send": frame(hello(token, request_id=12, protocol=2))},
                {"send": frame(hello("0" * 64, request_id=13))},
            ],
        )
        error = refused(results[0], -32003, 11)
        assert "already connected" in error["message"]
        assert refused(results[1], -32007, 12)["data"]["supported"] == [1]
        refused(results[2], -32003, 13)
        for result in results:
            assert token not in json.dumps(result)
        # The worker's calls on data still reach the parent, not the intruder.
        call = {"method": "whoami", "params": {}, "via": "data"}
        assert await handle.request("callParent", call) == "the parent"
        await assert_healthy(handle, pid)


async def test_a_declared_4_gib_frame_within_the_limit_reserves_no_memory(
    worker: dict[str, Any], namespace: str
) -> None:
    """max_frame_size may be 2**32 - 1 (spec 2.3): an unauthenticated connection then declares
    4 GiB in 4 bytes and sends 1 KiB. The worker runs with its address space limited to 3 GiB
    (``ulimit -v``, as in many containers): buffering what arrived fits, reserving what the
    header declares does not, and would kill the worker."""
    command = [worker["executable"], *worker["args"]]
    limited: dict[str, Any] = {
        "executable": "/bin/sh",
        "args": ["-c", 'ulimit -v 3000000 && exec "$@"', "sh", *command],
    }
    data = DataChannelOptions(enabled=True, max_frame_size=2**32 - 1)
    crashes: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("crash", crashes.append)
        handle = await manager.spawn("w", **limited, data_channel=data)
        pid = handle.pid
        assert handle.spec.data_path is not None
        declared = b"\xff\xff\xff\xff" + b"\x00" * 1024
        [result] = await intrude(
            handle.spec.data_path, [{"send": declared.hex(), "wait": 0.5}]
        )
        assert (
            result["bytes"] == 0
        )  # still waiting for the payload, or closed: no answer
        assert not crashes, f"the worker died: {crashes[0].error}"
        await assert_healthy(handle, pid)
