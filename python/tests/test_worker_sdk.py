"""The Python worker SDK's side of the spec, probed with real processes and real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from aspect_ipc import DataChannelOptions, MessagePackCodec, ProcessManager
from aspect_ipc.framing import LengthPrefixedFraming
from workers import PYTHON_WORKER, namespace, python_worker

pytestmark = pytest.mark.anyio
CODEC, FRAMING = MessagePackCodec(), LengthPrefixedFraming()


def _exchange(path: str, frames: list[bytes], *, raw: bytes = b"") -> list[Any]:
    """Connect as a foreign client, send frames, return every reply until the worker closes."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"".join(FRAMING.encode(f) for f in frames) + raw)
        decoder, replies = FRAMING.decoder(), []
        while chunk := sock.recv(65536):
            decoder.feed(chunk)
            while (frame := decoder.next_frame()) is not None:
                replies.append(CODEC.decode(frame))
        return replies


def _hello(token: Any, protocol: int = 1) -> bytes:
    params = {"token": token, "protocol": protocol}
    return CODEC.encode({"jsonrpc": "2.0", "id": 1, "method": "$/hello", "params": params})


@pytest.mark.parametrize(
    ("frames", "raw", "code"),
    [
        ([_hello("0" * 64)], b"", -32003),  # wrong token
        ([_hello(None)], b"", -32003),  # no token
        ([CODEC.encode({"jsonrpc": "2.0", "id": 1, "method": "echo"})], b"", -32003),  # no hello
        ([b"\xc1garbage"], b"", -32003),  # not even MessagePack
        ([], (4 * 2**30 - 1).to_bytes(4, "big"), None),  # a 4 GiB length: closed, no reply
    ],
    ids=["wrong-token", "no-token", "no-hello", "garbage", "4GiB-length"],
)
async def test_foreign_clients_are_refused_and_the_worker_is_unharmed(
    frames: list[bytes], raw: bytes, code: int | None
) -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        path = str(handle.spec.data_path)
        replies = _exchange(path, frames, raw=raw)
        if code is None:
            assert replies == []
        else:
            assert [r["error"]["code"] for r in replies] == [code]
            assert "0" * 64 not in str(replies)  # the token is never echoed
        assert await handle.request_via_data("add", {"a": 1, "b": 2}) == 3


async def test_a_second_connection_with_the_right_token_is_refused() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        token = await handle.request("getEnv", {"name": "ASPECT_IPC_TOKEN"})
        assert token is None  # removed from the worker's environment; take it from ours:
        # the manager generated it; a second holder of the token is still refused.
        replies = _exchange(str(handle.spec.data_path), [_hello("f" * 64)])
        assert replies[0]["error"]["code"] == -32003
        assert await handle.request_via_data("echo", ["still here"]) == ["still here"]


def _run_worker(env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, PYTHON_WORKER],
        input=stdin,
        env=full,
        capture_output=True,
        timeout=30,
        check=False,
    )


async def test_stale_socket_is_replaced_but_a_regular_file_is_not(tmp_path: Any) -> None:
    stale = str(tmp_path / "stale.sock")
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(stale)
    leftover.close()  # a socket file nobody listens on: what a crashed worker leaves
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True, path=stale)
        )
        assert await handle.request_via_data("echo", [1]) == [1]
    assert not os.path.exists(stale)

    regular = tmp_path / "file.sock"
    regular.write_text("precious")
    done = _run_worker({"ASPECT_IPC_DATA_PATH": str(regular), "ASPECT_IPC_TOKEN": "t"})
    assert done.returncode == 2 and b"not a socket" in done.stderr
    assert regular.read_text() == "precious"


def test_a_live_socket_is_never_removed(tmp_path: Any) -> None:
    path = str(tmp_path / "live.sock")
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(path)
        live.listen()
        done = _run_worker({"ASPECT_IPC_DATA_PATH": path, "ASPECT_IPC_TOKEN": "t"})
        assert done.returncode == 2 and b"address in use by a live worker" in done.stderr
        assert os.path.exists(path)


def test_data_path_without_token_refuses_to_start(tmp_path: Any) -> None:
    done = _run_worker({"ASPECT_IPC_DATA_PATH": str(tmp_path / "x.sock")})
    assert done.returncode == 2 and b"ASPECT_IPC_TOKEN is missing" in done.stderr


def test_control_only_worker_answers_and_exits_on_stdin_eof() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
    worker = subprocess.Popen(
        [sys.executable, PYTHON_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(
        b'{"jsonrpc":"2.0","id":1,"method":"add","params":{"a":2,"b":3}}\n'
        b"not json\n"
        b'{"jsonrpc":"2.0","id":2,"method":"$/ping"}\n'
    )
    worker.stdin.flush()
    lines = [worker.stdout.readline().decode().strip() for _ in range(4)]
    worker.stdin.close()  # the parent is gone
    assert worker.wait(timeout=30) == 0
    worker.stdout.close()
    assert '"method":"$/ready"' in lines[0] and '"dataPath":null' in lines[0]
    assert '{"jsonrpc":"2.0","id":1,"result":5}' in lines
    assert any('"code":-32700' in line and '"id":null' in line for line in lines)
    assert '{"jsonrpc":"2.0","id":2,"result":{}}' in lines
