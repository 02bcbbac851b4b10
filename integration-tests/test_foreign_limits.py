"""The foreign parent at the size limits (spec 1.3, 2.2, 2.3, 4.9, 12.1; decisions D1, D7, D17).

The worker is told `ASPECT_IPC_MAX_FRAME_SIZE=4096` and `ASPECT_IPC_MAX_LINE_LENGTH=4096`, and is
given `FOREIGN_BIG`, 5000 bytes, so that `getEnv` returns a result of a size known to the byte.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from foreign_parent import ForeignWorker, fixtures, frame, line, pack, request
from foreign_parent.channels import Via

hygiene = fixtures.hygiene
shared = fixtures.shared
via = fixtures.via
control = fixtures.control
data = fixtures.data
fresh = fixtures.fresh

LIMIT = 4096
BIG = "x" * 5000
WORKER_OPTIONS: dict[str, Any] = {  # read by the fixtures
    "max_frame_size": LIMIT,
    "max_line_length": LIMIT,
    "env": {"FOREIGN_BIG": BIG},
}
FLOOD = 64 << 20  # what a worker that drains instead of closing would swallow


def limit_name(via: Via) -> str:
    return "max_line_length" if via.name == "control" else "max_frame_size"


def oversized_response(via: Via, reply: dict[str, Any], request_id: Any) -> int:
    """Checks the -32005 that replaces a response too large to send (4.9); returns its size."""
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id), reply
    error = reply.get("error", {})
    assert error.get("code") == -32005, reply
    pattern = rf"response of (\d+) bytes exceeds {limit_name(via)} of {LIMIT} bytes"
    found = re.match(pattern, error["message"])
    assert found, error
    size = int(found.group(1))
    assert size > LIMIT and error.get("data") == {"size": size, "limit": LIMIT}, error
    return size


# ---- D1, D17: responses too large for the peer ----------------------------------------------
def test_an_oversized_result_is_replaced_with_the_exact_size(via: Via) -> None:
    request_id = via.new_id()
    via.send(request("getEnv", {"name": "FOREIGN_BIG"}, request_id))
    size = oversized_response(via, via.response(request_id), request_id)
    would_be = {"jsonrpc": "2.0", "id": request_id, "result": BIG}
    # Member order changes nothing to the size: compact JSON / shortest MessagePack (3.1, 3.2).
    expected = len(line(would_be)) - 1 if via.name == "control" else len(pack(would_be))
    assert size == expected


def test_an_oversized_error_response_is_replaced(via: Via) -> None:
    # The request fits, the handler's error response (message + data.type) does not.
    request_id = via.new_id()
    probe = request("fail", {"message": ""}, request_id)
    room = LIMIT - (
        len(line(probe)) - 1 if via.name == "control" else len(pack(probe)) + 2
    )
    via.send(request("fail", {"message": "m" * room}, request_id))
    oversized_response(via, via.response(request_id), request_id)


def test_a_request_of_exactly_the_limit_is_accepted(via: Via) -> None:
    request_id = via.new_id()
    probe = request("echo", [""], request_id)
    base = len(line(probe)) - 1 if via.name == "control" else len(pack(probe))
    text = "a" * (
        LIMIT - base - (2 if via.name == "data" else 0)
    )  # str 16 header: 3 not 1
    message = request("echo", [text], request_id)
    size = len(line(message)) - 1 if via.name == "control" else len(pack(message))
    assert size == LIMIT
    via.send(message)
    assert via.response(request_id)["result"] == [text]


def test_a_line_of_the_limit_plus_cr_is_accepted(control: Via) -> None:
    request_id = control.new_id()
    probe = line(request("echo", [""], request_id))
    text = "c" * (LIMIT - len(probe) + 1)
    raw = line(request("echo", [text], request_id))[:-1]
    assert len(raw) == LIMIT
    control.worker.write(raw + b"\r\n")
    assert control.response(request_id)["result"] == [text]


@pytest.mark.parametrize("size", [LIMIT + 1, 5000, 2 << 20])
def test_a_line_too_long_is_answered_once_and_skipped(control: Via, size: int) -> None:
    request_id = control.new_id()
    head = line(request("echo", [""], request_id))[:-4]  # up to '["'
    raw = head + b"l" * (size - len(head) - 3) + b'"]}'
    assert len(raw) == size
    control.worker.write(raw + b"\n")
    reply = control.next().message
    assert reply["id"] is None and reply["error"]["code"] == -32005, reply
    error = reply["error"]
    exact = f"line of {size} bytes exceeds max_line_length of {LIMIT} bytes"
    early = f"line of more than {LIMIT} bytes exceeds max_line_length of {LIMIT} bytes"
    if error.get("data", {}).get("size") is not None:
        assert error["message"].startswith(exact) and error["data"] == {
            "size": size,
            "limit": LIMIT,
        }, error
    else:
        assert error["message"].startswith(early) and error["data"] == {
            "limit": LIMIT
        }, error
    assert control.replies_before_ping() == [], (
        "one line, one answer; then the channel works"
    )


def test_a_line_too_long_arriving_in_pieces_is_answered_once(control: Via) -> None:
    for _ in range(3):
        control.worker.write(b"z" * 3000)
        time.sleep(0.05)  # a reader that checks early (1.3) sees it grow past the limit
    control.worker.write(b"\n")
    before = control.replies_before_ping()
    assert [(i.message["id"], i.message["error"]["code"]) for i in before] == [
        (None, -32005)
    ]


# ---- 4.9: a result that cannot be encoded is -32603 with the id ------------------------------
@pytest.mark.parametrize("answer", [b"\x00binary", float("nan")], ids=["binary", "nan"])
def test_a_result_control_cannot_carry_is_an_internal_error(
    control: Via, answer: Any
) -> None:
    """The worker asks us on data and returns our answer on control, where JSON has no form
    for it (3.1)."""
    data = control.data
    assert data is not None
    request_id = control.new_id()
    params = {"method": "fp.give", "params": [], "via": "data"}
    control.send(request("callParent", params, request_id))
    asked = data.take(
        lambda item: (
            isinstance(item.message, dict) and item.message.get("method") == "fp.give"
        )
    ).message
    data.send({"jsonrpc": "2.0", "id": asked["id"], "result": answer})
    reply = control.response(request_id)
    assert reply.get("error", {}).get("code") == -32603, reply


# ---- D7: an oversized frame header closes the connection at once ---------------------------
@pytest.mark.parametrize("declared", [LIMIT + 1, 2**32 - 1])
def test_an_oversized_frame_closes_at_once_without_reading(
    fresh: ForeignWorker, declared: int
) -> None:
    connection = fresh.open_data()
    taken, closed_after = connection.flood(
        declared.to_bytes(4, "big"), FLOOD, timeout=3.0
    )
    print(
        f"\n{fresh.language}: header {declared}: closed after {closed_after} s, took {taken}"
    )
    assert closed_after is not None, f"still open after 3 s; it took {taken} bytes"
    assert closed_after < 0.5, f"closed only after {closed_after:.3f} s"
    assert taken < (4 << 20), f"the worker read {taken} bytes after the header"
    frames = connection.drain_now()
    assert len(frames) <= 1, frames
    for (
        item
    ) in frames:  # the optional courtesy reply (2.3), with the exact numbers (12.1)
        assert item.message == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32005,
                "message": item.message["error"]["message"],
                "data": {"size": declared, "limit": LIMIT},
            },
        }, item
        expected = f"frame of {declared} bytes exceeds max_frame_size of {LIMIT} bytes"
        assert item.message["error"]["message"].startswith(expected), item
    again = fresh.connect()
    deadline = time.monotonic() + 2
    while (
        "result" not in (answer := again.hello(fresh.token))
        and time.monotonic() < deadline
    ):
        again = fresh.connect()  # "already connected" until the worker saw the close
    assert "result" in answer, answer
    assert fresh.call("$/ping")["result"] == {}


def test_an_empty_frame_closes_the_connection(fresh: ForeignWorker) -> None:
    connection = fresh.open_data()
    connection.send_raw(b"\x00\x00\x00\x00" + b"\x00" * 16, tolerate_close=True)
    assert connection.wait_closed(2.0), "an empty frame must close the connection (2.2)"
    assert fresh.call("$/ping")["result"] == {}


@pytest.mark.parametrize("cut", [2, 4 + 10], ids=["inside-header", "inside-payload"])
def test_a_connection_closed_inside_a_frame_leaves_the_worker_serving(
    fresh: ForeignWorker, cut: int
) -> None:
    """2.4: EOF inside a header or a payload is a truncated error on that connection only."""
    connection = fresh.open_data()
    connection.send_raw(frame(request("echo", ["never complete"], 5))[:cut])
    connection.close()
    deadline = time.monotonic() + 2
    while "result" not in (answer := fresh.connect().hello(fresh.token)):
        assert time.monotonic() < deadline, (
            answer
        )  # refused until the worker saw the close
        time.sleep(0.02)
    assert fresh.call("$/ping")["result"] == {}
