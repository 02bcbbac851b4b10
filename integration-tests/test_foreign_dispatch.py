"""The foreign parent pushes on dispatch and cancellation (spec 3.2, 3.4, 4.4-4.6, 9)."""

from __future__ import annotations

import math
import struct
import threading
import time
from typing import Any

import pytest
from foreign_parent import fixtures, frame, line, pack, request
from foreign_parent.channels import Via

hygiene = fixtures.hygiene
shared = fixtures.shared
via = fixtures.via
control = fixtures.control
data = fixtures.data


def test_many_pipelined_requests_are_all_answered_intact(via: Via) -> None:
    """300 requests written at once, of sizes from 0 to 30 KB: every one answered once, with
    its own payload (frames and lines never interleave, nothing is dropped: 2.6, 4.5)."""
    sent = {via.new_id(): ["p" * (n * 101 % 30000), n] for n in range(300)}

    def send_all() -> None:  # in a thread: we must read while the worker answers (2.6)
        for request_id, params in sent.items():
            via.send(request("echo", params, request_id))

    writer = threading.Thread(target=send_all)
    writer.start()
    answered: dict[Any, Any] = {}
    while len(answered) < len(sent):
        message = via.next(timeout=15).message
        assert message["id"] in sent and message["id"] not in answered, message
        answered[message["id"]] = message["result"]
    writer.join()
    assert answered == sent


def test_cancel_request_only_applies_to_its_own_channel(control: Via) -> None:
    """The same id on the other channel is another request (4, 9.1): not cancelled."""
    data = control.data
    assert data is not None
    data.send(request("sleep", {"seconds": 0.5, "tag": "other-channel"}, 4242))
    assert data.call("$/ping")["result"] == {}
    control.send(
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 4242}}
    )
    assert data.response(4242, timeout=10)["result"] == "done"


@pytest.mark.parametrize(
    "params", [None, {}, {"id": None}, {"id": [1]}, [4243], "x"], ids=lambda p: repr(p)
)
def test_a_malformed_cancel_request_is_ignored(via: Via, params: Any) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": "$/cancelRequest"}
    if params is not None:
        message["params"] = params
    request_id = via.new_id()
    via.send(request("sleep", {"seconds": 0.3, "tag": "not-cancelled"}, request_id))
    via.send(message)
    assert via.response(request_id, timeout=10)["result"] == "done"


def test_cancelling_a_finished_request_changes_nothing(via: Via) -> None:
    reply = via.call("echo", ["once"])
    via.send(
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": reply["id"]}}
    )
    assert via.replies_before_ping() == [], "exactly one response per request (9.3)"


def test_an_error_from_the_parent_fails_the_call(via: Via) -> None:
    parent = via.connection or via.worker.control
    request_id = via.new_id()
    params = {"method": "fp.refuse", "params": {}, "via": via.name}
    via.send(request("callParent", params, request_id))
    asked = parent.take(
        lambda item: (
            isinstance(item.message, dict) and item.message.get("method") == "fp.refuse"
        )
    ).message
    error = {"code": 4321, "message": "refused by the foreign parent", "data": [1]}
    via.send({"jsonrpc": "2.0", "id": asked["id"], "error": error})
    reply = via.response(request_id)
    assert reply.get("error", {}).get("code") in (4321, -32000), reply
    assert "refused by the foreign parent" in reply["error"]["message"], reply


def test_binary_is_not_an_id(data: Via) -> None:
    data.send_raw(pack({"jsonrpc": "2.0", "id": b"1", "method": "echo", "params": []}))
    reply = data.next().message
    assert (reply["id"], reply["error"]["code"]) == (None, -32600), reply


def test_binary_stays_binary(data: Via) -> None:
    blobs = [b"", b"\x00\xff" * 100, bytes(range(256))]
    assert data.call("echo", blobs)["result"] == blobs


def test_nan_and_infinities_echo_on_data(data: Via) -> None:
    result = data.call("echo", [math.nan, math.inf, -math.inf])["result"]
    assert math.isnan(result[0]) and result[1:] == [math.inf, -math.inf], result
    assert all(type(value) is float for value in result), result
    assert struct.pack(">d", result[0])[:2] in (b"\x7f\xf8", b"\xff\xf8"), result


def test_a_megabyte_of_open_brackets_is_an_error_not_a_crash(via: Via) -> None:
    """3.4: a decoder rejects any depth without exhausting its stack."""
    if via.name == "control":
        via.send_raw(b"[" * 1_000_000)
    else:
        via.send_raw(b"\x91" * 1_000_000 + b"\xc0")
    reply = via.next(timeout=10).message
    assert (reply["id"], reply["error"]["code"]) == (None, -32700), reply
    assert via.replies_before_ping() == []


def test_messages_split_and_joined_across_writes(via: Via) -> None:
    """Framing does not depend on how the bytes are cut: two messages in one write, one
    message in many writes (1.1, 2.1)."""
    first, second, third = (request("echo", [n], via.new_id()) for n in range(3))
    if via.connection is None:
        blobs = [line(m) for m in (first, second, third)]
        write = via.worker.write
    else:
        blobs = [frame(m) for m in (first, second, third)]
        write = via.connection.send_raw
    write(blobs[0] + blobs[1])
    for index in range(len(blobs[2])):
        write(blobs[2][index : index + 1])
        if index < 8:
            time.sleep(0.002)  # let the worker see the partial header / line
    for message in (first, second, third):
        assert via.response(message["id"])["result"] == message["params"]


def test_insignificant_json_whitespace_is_accepted(control: Via) -> None:
    raw = b'  {\t"jsonrpc" : "2.0" ,\r "id" : "ws" , "method":"echo","params" : [ 1 , { } ] }  '
    control.send_raw(raw)
    assert control.response("ws")["result"] == [1, {}]


@pytest.mark.parametrize("method", ["ECHO", "echo ", " echo", "$/PING", "$/ping/"])
def test_method_names_are_exact(via: Via, method: str) -> None:
    reply = via.call(method, [])
    assert reply.get("error", {}).get("code") == -32601, reply


def test_a_response_on_the_wrong_channel_does_not_complete_a_call(control: Via) -> None:
    """Each channel has its own pending requests (4): an answer on control to a question asked
    on data is dropped, and the question is still waiting for its answer on data."""
    data = control.data
    assert data is not None
    request_id = control.new_id()
    control.send(
        request("callParent", {"method": "fp.where", "via": "data"}, request_id)
    )
    asked = data.take(
        lambda item: (
            isinstance(item.message, dict) and item.message.get("method") == "fp.where"
        )
    ).message
    control.send({"jsonrpc": "2.0", "id": asked["id"], "result": "wrong channel"})
    assert control.replies_before_ping() == [], "the call must still be pending"
    data.send({"jsonrpc": "2.0", "id": asked["id"], "result": "right channel"})
    assert control.response(request_id)["result"] == "right channel"


def test_wide_messagepack_formats_are_accepted(data: Via) -> None:
    """3.2: a reader accepts every width (map 32, str 8/32, array 32, uint 64), not only the
    shortest form a writer must use."""

    def wide_str(text: str) -> bytes:
        raw = text.encode()
        return b"\xdb" + len(raw).to_bytes(4, "big") + raw

    members = [
        (b"\xd9\x07jsonrpc", wide_str("2.0")),
        (wide_str("id"), b"\xcf" + (88).to_bytes(8, "big")),
        (wide_str("method"), b"\xd9\x04echo"),
        (
            wide_str("params"),
            b"\xdd" + (2).to_bytes(4, "big") + b"\xd0\x05" + wide_str("w"),
        ),
    ]
    payload = (
        b"\xdf" + len(members).to_bytes(4, "big") + b"".join(k + v for k, v in members)
    )
    data.send_raw(payload)
    assert data.next().message == {"jsonrpc": "2.0", "id": 88, "result": [5, "w"]}


@pytest.mark.parametrize("member", ["method", "jsonrpc"])
def test_binary_is_not_a_string(data: Via, member: str) -> None:
    message = {"jsonrpc": "2.0", "id": 61, "method": "echo", "params": []}
    message[member] = message[member].encode()
    data.send_raw(pack(message))
    reply = data.next().message
    assert (reply["id"], reply["error"]["code"]) == (61, -32600), reply


def _notes(via: Via, tag: str) -> list[Any]:
    """What ``note`` recorded on this channel for this case (the worker is shared)."""
    recorded = via.call("notes")["result"]
    return [
        value[1] for value in recorded if isinstance(value, list) and value[0] == tag
    ]


def _note(via: Via, value: Any, delay_ms: Any) -> None:
    params = {"value": value, "delayMs": delay_ms}
    via.send({"jsonrpc": "2.0", "method": "note", "params": params})


def test_notification_handlers_run_one_at_a_time_in_arrival_order(via: Via) -> None:
    """4.5: each ``note`` waits before recording, the first longest. One at a time, the records
    come out 0..9; run concurrently they would come out reversed. A request sent among them is
    answered before they are all done: requests are not queued behind notifications."""
    tag = f"order-{via.new_id()}"
    echo_id = via.new_id()
    for index in range(10):
        _note(via, [tag, index], (10 - index) * 30)  # 1.65 s for the ten, one at a time
        if index == 4:
            via.send(request("echo", ["not queued"], echo_id))
    assert via.response(echo_id)["result"] == ["not queued"]
    assert len(_notes(via, tag)) < 10, "the request waited for the notifications"
    deadline = time.monotonic() + 15
    while len(recorded := _notes(via, tag)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorded == list(range(10))


def test_a_failing_notification_handler_does_not_stop_the_next(via: Via) -> None:
    """4.5: a notification handler that fails (here on its params) is logged, and the next one
    still runs, in order."""
    tag = f"failing-{via.new_id()}"
    _note(via, [tag, 0], 40)
    _note(via, [tag, "bad"], "not a number")
    via.send({"jsonrpc": "2.0", "method": "note", "params": {"delayMs": 0}})
    _note(via, [tag, 1], 0)
    deadline = time.monotonic() + 10
    while len(recorded := _notes(via, tag)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorded == [0, 1]
    assert via.replies_before_ping() == [], "a notification is never answered (4.3)"
