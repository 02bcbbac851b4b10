"""A foreign parent, built from spec/PROTOCOL.md alone, against each test worker: start-up and
JSON-RPC on both channels (spec 1, 2, 4, 7.2, 8.6, 9, 11).

The parent (integration-tests/foreign_parent/) uses no project code. Every case asserts what the
spec says the worker answers, byte for byte where the spec fixes the bytes. Read-only cases share
one worker per language; the other test_foreign_*.py files hold the cases that need their own.
"""

from __future__ import annotations

import os
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from foreign_parent import fixtures, request
from foreign_parent.channels import Via

hygiene = fixtures.hygiene
shared = fixtures.shared
via = fixtures.via
control = fixtures.control
data = fixtures.data


def error_of(reply: dict[str, Any], code: int, request_id: Any) -> dict[str, Any]:
    """The error member of ``reply``, which must be an error response with ``code`` and exactly
    ``request_id`` (same type)."""
    assert set(reply) == {"jsonrpc", "id", "error"} and reply["jsonrpc"] == "2.0", reply
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id), reply
    error: dict[str, Any] = reply["error"]
    assert error["code"] == code and isinstance(error["message"], str), reply
    return error


def test_ready_announces_protocol_pid_and_path(control: Via) -> None:
    worker = control.worker
    params = worker.ready_params
    assert params is not None
    assert params["protocol"] == 1 and type(params["protocol"]) is int
    assert params["pid"] == worker.process.pid
    assert params["dataPath"] == worker.data_path
    assert params["language"] == worker.language
    mode = os.lstat(worker.data_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)


def test_ping_answers_an_empty_map(via: Via) -> None:
    reply = via.call("$/ping")
    assert set(reply) == {"jsonrpc", "id", "result"} and reply["result"] == {}


@pytest.mark.parametrize("method", ["noSuchMethod", "$/noSuchMethod", "rpc.discover"])
def test_unknown_requests_get_method_not_found(via: Via, method: str) -> None:
    request_id = via.new_id()
    via.send(request(method, {"x": 1}, request_id))
    error = error_of(via.response(request_id), -32601, request_id)
    assert error["message"] == f"Method not found: {method}"


def test_notifications_without_handler_are_never_answered(via: Via) -> None:
    for method in ["$/noSuchMethod", "noSuchMethod", "echo", "add", "$/ping"]:
        via.send({"jsonrpc": "2.0", "method": method, "params": [1]})
    via.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 987654}})
    assert via.replies_before_ping() == []


@pytest.mark.parametrize(
    "batch", [[], [1], "echo request"], ids=["empty", "number", "request"]
)
def test_batches_get_one_invalid_request_and_are_not_processed(
    via: Via, batch: Any
) -> None:
    element_id = via.new_id()
    if batch == "echo request":
        batch = [request("echo", ["inside"], element_id)]
    via.send(batch)
    reply = via.next().message
    error = error_of(reply, -32600, None)
    assert error["message"] == "Invalid Request: batches are not supported"
    assert via.replies_before_ping() == [], "an element of the batch was answered"


@pytest.mark.parametrize(
    "raw",
    [b"{nope", b'{"jsonrpc": "2.0", "id": 3, "method": "echo"', b"[1,]", b"\x00"],
    ids=["garbage", "unterminated", "trailing-comma", "nul"],
)
def test_a_control_line_that_is_not_json_is_a_parse_error(
    control: Via, raw: bytes
) -> None:
    control.send_raw(raw)
    error = error_of(control.next().message, -32700, None)
    assert error["message"].startswith("Parse error"), error
    assert control.replies_before_ping() == []


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",
        b"\x92\x01",
        b"\x81\xa1a\x01\x01",
        b'{"jsonrpc": "2.0"}',
        b"\xd4\x01\x00",
    ],
    ids=[
        "never-used-byte",
        "truncated-array",
        "trailing-bytes",
        "json",
        "ext-top-level",
    ],
)
def test_a_frame_that_is_not_messagepack_is_a_parse_error(
    data: Via, payload: bytes
) -> None:
    data.send_raw(payload)
    error = error_of(data.next().message, -32700, None)
    assert error["message"].startswith("Parse error"), error
    assert data.replies_before_ping() == [], "the connection must stay usable (2.5)"


def test_invalid_utf8_on_control_is_a_parse_error(control: Via) -> None:
    raw = b'{"jsonrpc": "2.0", "id": 5, "method": "echo", "params": ["\xff\xfe"]}'
    # Not UTF-8, so not JSON text: no id is recovered (4.8).
    assert control_error(control, raw) == (-32700, None)
    assert control.replies_before_ping() == []


def control_error(control: Via, raw: bytes) -> tuple[int, Any]:
    control.send_raw(raw)
    reply = control.next().message
    return reply["error"]["code"], reply["id"]


def test_blank_lines_are_ignored_and_crlf_is_accepted(control: Via) -> None:
    worker = control.worker
    worker.write(b"\n\r\n   \t\r\n\t\n")
    assert control.replies_before_ping() == []
    request_id = control.new_id()
    worker.write(
        b'{"jsonrpc":"2.0","id":%d,"method":"echo","params":["crlf"]}\r\n' % request_id
    )
    assert control.response(request_id)["result"] == ["crlf"]


INVALID = [  # (message, id of the -32600 answer); spec 4.2
    ({"jsonrpc": "1.0", "id": 5, "method": "echo"}, 5),
    ({"id": 6, "method": "echo"}, 6),
    ({"jsonrpc": 2.0, "id": 6, "method": "echo"}, 6),
    ({"jsonrpc": "2.0", "id": None, "method": "echo"}, None),
    ({"jsonrpc": "2.0", "id": True, "method": "echo"}, None),
    ({"jsonrpc": "2.0", "id": [1], "method": "echo"}, None),
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "echo"}, None),
    ({"jsonrpc": "2.0", "id": 7, "method": 5}, 7),
    ({"jsonrpc": "2.0", "id": 7, "method": None}, 7),
    ({"jsonrpc": "2.0", "id": 8, "method": "echo", "params": "x"}, 8),
    ({"jsonrpc": "2.0", "id": 9, "method": "echo", "params": None}, 9),
    ({"jsonrpc": "2.0", "id": 9, "method": "echo", "params": 3}, 9),
    ({"jsonrpc": "2.0", "id": 10, "method": "echo", "result": 1}, 10),
    ({"jsonrpc": "2.0", "id": 11, "method": "echo", "error": None}, 11),
    ({"jsonrpc": "2.0"}, None),
    ({}, None),
    (5, None),
    (None, None),
    ("a string", None),
]


@pytest.mark.parametrize(
    ("message", "answer_id"), INVALID, ids=[str(i) for i, _ in INVALID]
)
def test_invalid_messages_get_invalid_request(
    via: Via, message: Any, answer_id: Any
) -> None:
    via.send(message)
    error_of(via.next().message, -32600, answer_id)
    assert via.replies_before_ping() == []


UNANSWERED = [  # responses, valid or not, are never answered (4.3)
    {"jsonrpc": "2.0", "id": 99999, "result": 1},
    {"jsonrpc": "2.0", "id": "nobody", "error": {"code": 1, "message": "m"}},
    {"jsonrpc": "2.0", "id": None, "error": {"code": 1, "message": "m"}},
    {"jsonrpc": "2.0", "id": 99998, "error": {"code": "x", "message": 1}},
    {"jsonrpc": "2.0", "id": 99997, "result": 1, "error": {"code": 1, "message": "m"}},
    {"jsonrpc": "2.0", "result": 1},
    {"id": 99996, "result": 1},
    {"jsonrpc": "1.0", "id": 99995, "error": {"code": 1, "message": "m"}},
]


@pytest.mark.parametrize(
    "message", UNANSWERED, ids=[str(i) for i in range(len(UNANSWERED))]
)
def test_responses_nobody_waits_for_are_dropped(via: Via, message: Any) -> None:
    via.send(message)
    assert via.replies_before_ping() == []


@pytest.mark.parametrize(
    "request_id",
    [0, -1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, "", "1", "é 🙂 \u0000", "x" * 300],
    ids=lambda v: repr(v)[:20],
)
def test_ids_are_echoed_exactly(via: Via, request_id: Any) -> None:
    via.send(request("echo", [request_id], request_id))
    reply = via.next().message  # not by id: a changed id would only show as a timeout
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id), reply
    assert reply["result"] == [request_id] and type(reply["result"][0]) is type(
        request_id
    )


def test_requests_run_concurrently(via: Via) -> None:
    slow, quick = via.new_id(), via.new_id()
    via.send(request("sleep", {"seconds": 1.0, "tag": "concurrent"}, slow))
    via.send(request("$/ping", request_id=quick))
    first = via.next(timeout=10).message
    assert first.get("id") == quick, (
        f"a slow request held up a later one (4.5): {first}"
    )
    assert via.response(slow, timeout=10)["result"] == "done"


def test_cancel_request_cancels_a_running_handler(via: Via) -> None:
    worker = via.worker
    tag = f"cancel-{via.name}-{uuid.uuid4().hex[:6]}"
    request_id = via.new_id()
    via.send(request("sleep", {"seconds": 30, "tag": tag}, request_id))
    assert via.call("$/ping")["result"] == {}  # the sleep is running by now
    via.send(
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}}
    )
    error = error_of(via.response(request_id), -32002, request_id)
    assert error["message"], error
    observed = worker.control.notification("cancelObserved")
    assert observed["params"] == {"tag": tag}


def test_the_worker_calls_and_notifies_its_parent(via: Via) -> None:
    worker, data = via.worker, via.data
    assert data is not None
    call_id = via.new_id()
    params = {"method": "fp.question", "params": {"n": [1, "two"]}, "via": via.name}
    via.send(request("callParent", params, call_id))
    asked = (via.connection or worker.control).take(
        lambda item: (
            isinstance(item.message, dict)
            and item.message.get("method") == "fp.question"
        )
    )
    question = asked.message
    assert question["params"] == {"n": [1, "two"]} and "id" in question, question
    via.send({"jsonrpc": "2.0", "id": question["id"], "result": {"answer": 42}})
    assert via.response(call_id)["result"] == {"answer": 42}
    other = "control" if via.name == "data" else "data"
    notify = {"method": "fp.news", "params": ["x"], "via": other}
    assert via.call("notifyParent", notify)["result"] is None
    target = worker.control if other == "control" else data
    assert target.notification("fp.news")["params"] == ["x"]


def test_handler_failures_are_error_responses(via: Via) -> None:
    reply = via.call("fail", {"message": "boom"})
    error = error_of(reply, -32000, reply["id"])
    assert error["message"] == "boom" and isinstance(error["data"]["type"], str), error
    typed = {"message": "typed", "code": 4711, "data": {"k": [1, None]}}
    reply = via.call("fail", typed)
    error = error_of(reply, 4711, reply["id"])
    assert error == {"code": 4711, "message": "typed", "data": {"k": [1, None]}}


def test_stray_stdout_goes_to_stderr(control: Via) -> None:
    worker = control.worker
    text = f"stray-{uuid.uuid4().hex}"
    assert worker.call("print", {"text": text})["result"] is None
    assert worker.call("$/ping")["result"] == {}
    assert not [item for item in worker.control.items if text.encode() in item.raw]
    assert worker.wait_stderr(text), worker.stderr()[-500:]


def test_a_child_writing_to_the_inherited_stdout_reaches_stderr(control: Via) -> None:
    # PROTOCOL.md 1.5: the SDKs point descriptor 1 at stderr. A child that inherits it and
    # writes a line without a newline would otherwise glue itself to the worker's next message
    # on the control channel, and that message (the answer below) would be lost.
    worker = control.worker
    text = f"child-{uuid.uuid4().hex} without a newline"
    assert worker.call("childPrint", {"text": text})["result"] is None
    assert worker.call("$/ping")["result"] == {}
    assert not [item for item in worker.control.items if text.encode() in item.raw]
    # The foreign parent reads stderr by lines: a newline of the worker's own ends the text's.
    assert worker.call("stderr", {"text": " and its end"})["result"] is None
    assert worker.wait_stderr(f"{text} and its end"), worker.stderr()[-500:]


# A child that reads the stdin it inherits as interactive tools do; prints the bytes it read.
STDIN_READER = Path(__file__).parent / "workers" / "stdin_reader.py"


def test_a_child_reading_the_inherited_stdin_takes_no_message(control: Via) -> None:
    # PROTOCOL.md 1.5: the SDKs point descriptor 0 at /dev/null. A child that inherits the
    # worker's stdin would otherwise read the parent's messages: the requests sent while it runs.
    worker = control.worker
    child_id = worker.new_id()
    argv = [sys.executable, str(STDIN_READER), "1.5"]
    worker.send(
        {
            "jsonrpc": "2.0",
            "id": child_id,
            "method": "childStdin",
            "params": {"argv": argv},
        }
    )
    time.sleep(
        0.3
    )  # the child is running, reading: each request below would be its to take
    for n in range(5):
        assert worker.call("add", {"a": n, "b": 1})["result"] == n + 1
    assert worker.control.response(child_id, timeout=10.0)["result"].strip() == "0"


def test_the_token_is_not_left_in_the_environment(control: Via) -> None:
    worker = control.worker
    assert worker.call("getEnv", {"name": "ASPECT_IPC_TOKEN"})["result"] is None
    assert worker.call("childEnv", {"name": "ASPECT_IPC_TOKEN"})["result"] is None
    assert (
        worker.call("getEnv", {"name": "ASPECT_IPC_WORKER_ID"})["result"]
        == worker.worker_id
    )
