"""The Python worker's side of spec 1.1, with real processes and sockets: $/shutdown params and
order (D3, D12), the size variables (D13, D15), $/hello (D14), undecodable requests (D8, D10),
a broken stdout (D20) and the test worker's contract (D18)."""

from __future__ import annotations

import math
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from worker_process import TOKEN, WorkerProcess, frame, read_frame, started
from workers import PYTHON_WORKER

__all__ = ["started"]  # the fixture


def _error(reply: dict[str, Any]) -> tuple[Any, int]:
    return reply["id"], reply["error"]["code"]


# -- $/shutdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"timeout": "soon"}, {"timeout": -1}, {"timeout": True}, [5], {"timeout": [1]}],
    ids=["string", "negative", "bool", "array", "list-timeout"],
)
def test_invalid_shutdown_params_get_32602_and_no_shutdown(started: Any, params: Any) -> None:
    worker: WorkerProcess = started(data=False)
    worker.send({"id": 1, "method": "sleep", "params": {"seconds": 0.2, "tag": "t"}})
    worker.send({"id": 2, "method": "$/shutdown", "params": params})
    assert _error(worker.receive()) == (2, -32602)
    assert worker.receive() == {"jsonrpc": "2.0", "id": 1, "result": "done"}  # not cancelled
    worker.send({"id": 3, "method": "echo", "params": [1]})
    assert worker.receive()["result"] == [1]


def test_nan_timeout_is_refused_too() -> None:
    from aspect_ipc.errors import RemoteError
    from aspect_ipc.shutdown import shutdown_timeout

    for timeout in (math.nan, math.inf, -0.5):
        with pytest.raises(RemoteError) as info:
            shutdown_timeout({"timeout": timeout}, 5.0)
        assert info.value.code == -32602
    assert shutdown_timeout({"timeout": None}, 5.0) == 5.0
    assert shutdown_timeout({}, 5.0) == 5.0 and shutdown_timeout(None, 5.0) == 5.0
    assert shutdown_timeout({"timeout": 0}, 5.0) == 0.0


@pytest.mark.parametrize("params", [None, {"timeout": 0}, {"timeout": "bad"}])
def test_shutdown_notification_shuts_down_without_answering(started: Any, params: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    message: dict[str, Any] = {"method": "$/shutdown"}
    if params is not None:
        message["params"] = params
    worker.send(message)
    assert worker.process.wait(timeout=30) == 0
    assert worker.stdout.read() == b""  # nothing answered
    assert not os.path.exists(worker.path)


def test_shutdown_on_the_data_channel_is_not_a_method_there(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    worker.data_send({"method": "$/shutdown"})  # a notification: ignored
    worker.data_send({"id": 5, "method": "$/shutdown", "params": {"timeout": 0}})
    reply = worker.data_receive()
    assert _error(reply) == (5, -32601)
    assert reply["error"]["message"] == "$/shutdown is a control-channel method"
    worker.data_send({"id": 6, "method": "echo", "params": ["alive"]})
    assert worker.data_receive()["result"] == ["alive"]
    worker.send({"id": 1, "method": "echo", "params": ["alive"]})
    assert worker.receive()["result"] == ["alive"]


def test_shutdown_answers_every_request_in_flight_first(started: Any) -> None:
    """D3: in flight on both channels: cancelled, answered -32002 (cancelObserved first), then
    the $/shutdown result; a request after $/shutdown gets -32004."""
    worker: WorkerProcess = started()
    worker.connect()
    worker.send({"id": 1, "method": "sleep", "params": {"seconds": 60, "tag": "control"}})
    worker.data_send({"id": 1, "method": "sleep", "params": {"seconds": 60, "tag": "data"}})
    worker.send({"id": 2, "method": "echo", "params": ["ping"]})
    assert worker.receive()["id"] == 2  # both sleeps are running by now
    worker.data_send({"id": 2, "method": "echo", "params": ["ping"]})
    assert worker.data_receive()["id"] == 2
    worker.send({"id": 3, "method": "$/shutdown", "params": {"timeout": 0.5}})
    worker.send({"id": 4, "method": "echo", "params": ["late"]})
    lines = [worker.receive() for _ in range(5)]
    assert (4, -32004) in [_error(m) for m in lines if "error" in m]
    observed = sorted(m["params"]["tag"] for m in lines if m.get("method") == "cancelObserved")
    assert observed == ["control", "data"]
    assert lines[-1] == {"jsonrpc": "2.0", "id": 3, "result": None}  # the last line written
    assert (1, -32002) in [_error(m) for m in lines if "error" in m]
    assert _error(worker.data_receive()) == (1, -32002)  # written before the result
    assert worker.process.wait(timeout=30) == 0


# -- the size variables -------------------------------------------------------------------------

BAD_SIZES = ["+4096", " 4096", "4096 ", "0", "1023", "4294967296", "0x1000", "4_096", "1e4"]


@pytest.mark.parametrize("variable", ["ASPECT_IPC_MAX_FRAME_SIZE", "ASPECT_IPC_MAX_LINE_LENGTH"])
@pytest.mark.parametrize("value", BAD_SIZES)
def test_a_malformed_size_variable_refuses_to_start(variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
    done = subprocess.run(
        [sys.executable, PYTHON_WORKER],
        env=env | {variable: value},
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and variable in lines[0] and f'"{value}"' in lines[0]


def test_the_line_limit_comes_from_the_environment(started: Any) -> None:
    worker: WorkerProcess = started(
        data=False, ASPECT_IPC_MAX_LINE_LENGTH="1024", TEST_LARGE_VALUE="x" * 2000
    )
    worker.send({"id": 1, "method": "echo", "params": ["x" * 2000]})
    reply = worker.receive()  # the request line itself is over the limit
    assert _error(reply) == (None, -32005) and reply["error"]["data"]["limit"] == 1024
    worker.send({"id": 2, "method": "getEnv", "params": {"name": "TEST_LARGE_VALUE"}})
    reply = worker.receive()  # the response would be over the limit
    assert _error(reply) == (2, -32005)
    assert reply["error"]["data"] == {"size": reply["error"]["data"]["size"], "limit": 1024}


# -- $/hello ------------------------------------------------------------------------------------


def _raw_connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(path)
    return sock


@pytest.mark.parametrize("declared", [65537, 2**32 - 1])
def test_a_large_first_frame_closes_silently(started: Any, declared: int) -> None:
    worker: WorkerProcess = started()
    with _raw_connect(worker.path) as sock:
        sock.sendall(struct.pack(">I", declared) + b"\x00" * 1024)
        assert sock.recv(65536) == b""  # closed, no -32005 before authentication
    worker.connect()  # the worker is unharmed
    worker.data_send({"id": 2, "method": "echo", "params": [1]})
    assert worker.data_receive()["result"] == [1]


def test_a_first_frame_of_64_kib_is_read(started: Any) -> None:
    worker: WorkerProcess = started()
    hello = {"jsonrpc": "2.0", "id": 1, "method": "$/hello", "params": {"pad": ""}}
    hello["params"] = {"token": TOKEN, "protocol": 1, "pad": "x" * 65000}
    data = frame(hello)
    padding = 65536 + 4 - len(data)
    hello["params"]["pad"] += "x" * padding
    data = frame(hello)
    assert len(data) == 65536 + 4
    with _raw_connect(worker.path) as sock:
        sock.sendall(data)
        assert "result" in read_frame(sock)


def test_hello_on_an_authenticated_connection(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    hello = {"token": TOKEN, "protocol": 1}
    worker.data_send({"method": "$/hello", "params": hello})  # a notification: ignored
    worker.data_send({"id": 2, "method": "$/hello", "params": hello})
    reply = worker.data_receive()
    assert _error(reply) == (2, -32600)
    assert reply["error"]["message"] == "Invalid Request: already authenticated"
    worker.data_send({"id": 3, "method": "$/ping"})
    assert worker.data_receive() == {"jsonrpc": "2.0", "id": 3, "result": {}}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"token": TOKEN}, -32602),
        ({"token": TOKEN, "protocol": "1"}, -32602),
        ({"token": TOKEN, "protocol": 2}, -32007),
        ({"token": "x", "protocol": "1"}, -32003),
    ],
)
def test_hello_verdicts_on_a_real_socket(started: Any, params: Any, code: int) -> None:
    worker: WorkerProcess = started()
    with _raw_connect(worker.path) as sock:
        sock.sendall(frame({"jsonrpc": "2.0", "id": 4, "method": "$/hello", "params": params}))
        assert _error(read_frame(sock)) == (4, code)
        assert sock.recv(65536) == b""  # then closed


# -- undecodable requests, broken stdout --------------------------------------------------------


def test_a_lone_surrogate_is_answered_32700_with_the_id(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    worker.stdin.write(b'{"jsonrpc":"2.0","id":5,"method":"echo","params":["\\ud800"]}\n')
    worker.stdin.flush()
    assert _error(worker.receive()) == (5, -32700)
    assert worker.sock is not None
    bad_utf8 = bytes.fromhex("84a76a736f6e727063a3322e30a2696406a66d6574686f64a465") + b"cho"
    bad_utf8 += bytes.fromhex("a6706172616d7391a3eda080")
    worker.sock.sendall(len(bad_utf8).to_bytes(4, "big") + bad_utf8)
    assert _error(worker.data_receive()) == (6, -32700)


def test_a_broken_stdout_ends_the_worker_with_its_clean_up(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    worker.stdout.close()  # the parent stops reading: the worker's next write gets EPIPE
    worker.send({"id": 1, "method": "echo", "params": ["x"]})
    assert worker.process.wait(timeout=30) == 0
    assert not os.path.exists(worker.path)
    assert "BrokenPipe" not in worker.stderr()


# -- the test worker's contract -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "member"),
    [({"a": "x", "b": 1}, "'a'"), ({}, "'a'"), ({"a": 1}, "'b'"), ({"a": True, "b": 1}, "'a'")],
)
def test_add_names_the_bad_member(started: Any, params: Any, member: str) -> None:
    worker: WorkerProcess = started(data=False)
    worker.send({"id": 1, "method": "add", "params": params})
    reply = worker.receive()
    assert _error(reply) == (1, -32602) and member in reply["error"]["message"]


def test_add_is_exact_and_refuses_overflow(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    cases = [
        ({"a": 2**63 - 2, "b": 1}, 2**63 - 1),
        ({"a": -(2**63), "b": 0}, -(2**63)),
        ({"a": 0.5, "b": 1}, 1.5),
    ]
    for n, (params, want) in enumerate(cases):
        worker.send({"id": n, "method": "add", "params": params})
        got = worker.receive()["result"]
        assert got == want and type(got) is type(want)
    worker.send({"id": 9, "method": "add", "params": {"a": 2**63 - 1, "b": 1}})
    reply = worker.receive()
    assert _error(reply) == (9, -32602) and "overflow" in reply["error"]["message"]
    worker.data_send({"id": 9, "method": "add", "params": {"a": -(2**63), "b": -1}})
    assert _error(worker.data_receive()) == (9, -32602)


def test_echo_keeps_negative_zero_and_the_new_methods_answer(started: Any) -> None:
    worker: WorkerProcess = started()
    worker.connect()
    worker.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"echo","params":[-0.0]}\n')
    worker.stdin.flush()
    assert worker.stdout.readline() == b'{"jsonrpc":"2.0","id":1,"result":[-0.0]}\n'
    worker.data_send({"id": 1, "method": "echo", "params": [-0.0]})
    value = worker.data_receive()["result"][0]
    assert type(value) is float and math.copysign(1, value) == -1
    worker.send({"id": 2, "method": "spin", "params": {"microseconds": 1000}})
    assert worker.receive()["result"] == {"pid": worker.process.pid}
    worker.send({"id": 3, "method": "spin", "params": {"microseconds": "1"}})
    assert _error(worker.receive()) == (3, -32602)
    worker.data_send({"id": 4, "method": "sleepBusy", "params": {"seconds": 0.01}})
    assert worker.data_receive()["result"] == "done"


def test_workers_md_path_is_the_one_used() -> None:
    assert Path(PYTHON_WORKER).is_file()
