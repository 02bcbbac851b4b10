"""The foreign parent knocks on the data socket with every shape of first frame (spec 7.4; D14).

The shared worker keeps one authenticated connection (the module's), so each refused case also
shows that a refused connection does not disturb the authenticated one; the cases that must be
accepted run on a worker of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from foreign_parent import (
    DataConnection,
    ForeignWorker,
    fixtures,
    frame,
    pack,
    request,
)
from foreign_parent.channels import Via
from foreign_parent.support import SharedWorker, kept_for_module

hygiene = fixtures.hygiene
shared = fixtures.shared
data = fixtures.data
fresh = fixtures.fresh

FLOOD = 64 << 20
WORKER_OPTIONS = {"worker_id": "fp/ü 1"}  # read by the fixtures (ids unsanitized)
FRESH_OPTIONS = {"worker_id": "fp/ü 2"}


ABSENT: Any = object()  # leave this member out


def present(members: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in members.items() if value is not ABSENT}


def hello(
    token: Any = None, protocol: Any = 1, request_id: Any = 1, **params: Any
) -> Any:
    return request(
        "$/hello", present({"token": token, "protocol": protocol, **params}), request_id
    )


WRONG = "0123456789abcdef" * 4
Build = Callable[
    [str], Any
]  # the right token -> the first frame (a message, or raw bytes)

REFUSED: list[
    tuple[str, Build, int, Any, str]
] = [  # id, first frame, code, reply id, message
    (
        "notification",
        lambda t: {**hello(t), "id": ABSENT},
        -32003,
        None,
        "unauthorized",
    ),
    (
        "response",
        lambda t: {"jsonrpc": "2.0", "id": 1, "result": t},
        -32003,
        None,
        "unauthorized",
    ),
    (
        "error-response",
        lambda t: {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}},
        -32003,
        None,
        "unauthorized",
    ),
    ("invalid", lambda t: {**hello(t), "jsonrpc": "1.0"}, -32003, None, "unauthorized"),
    ("float-id", lambda t: hello(t, request_id=1.0), -32003, None, "unauthorized"),
    ("batch", lambda t: [hello(t)], -32003, None, "unauthorized"),
    ("undecodable", lambda t: b"\xc1", -32003, None, "unauthorized"),
    ("other-method", lambda t: request("echo", [t], 7), -32003, 7, "unauthorized"),
    (
        "ping-first",
        lambda t: request("$/ping", request_id=8),
        -32003,
        8,
        "unauthorized",
    ),
    (
        "crash-first",
        lambda t: request("crash", {"code": 3}, 9),
        -32003,
        9,
        "unauthorized",
    ),
    (
        "shutdown-first",
        lambda t: request("$/shutdown", {}, 10),
        -32003,
        10,
        "unauthorized",
    ),
    (
        "params-array",
        lambda t: request("$/hello", [t, 1], 1),
        -32003,
        1,
        "unauthorized",
    ),
    (
        "params-absent",
        lambda t: request("$/hello", request_id="h"),
        -32003,
        "h",
        "unauthorized",
    ),
    ("token-missing", lambda t: hello(ABSENT), -32003, 1, "unauthorized"),
    ("token-empty", lambda t: hello(""), -32003, 1, "unauthorized"),
    ("token-integer", lambda t: hello(12345), -32003, 1, "unauthorized"),
    ("token-null", lambda t: hello(None), -32003, 1, "unauthorized"),
    ("token-binary", lambda t: hello(t.encode()), -32003, 1, "unauthorized"),
    ("token-wrong", lambda t: hello(WRONG), -32003, 1, "unauthorized"),
    ("token-upper-case", lambda t: hello(t.upper()), -32003, 1, "unauthorized"),
    ("token-prefix", lambda t: hello(t[:-1]), -32003, 1, "unauthorized"),
    ("token-longer", lambda t: hello(t + "0"), -32003, 1, "unauthorized"),
    ("wrong-token-protocol-2", lambda t: hello(WRONG, 2), -32003, 1, "unauthorized"),
    (
        "wrong-token-no-protocol",
        lambda t: hello(WRONG, ABSENT),
        -32003,
        1,
        "unauthorized",
    ),
    ("protocol-missing", lambda t: hello(t, ABSENT), -32602, 1, ""),
    ("protocol-string", lambda t: hello(t, "1"), -32602, 1, ""),
    ("protocol-float", lambda t: hello(t, 1.0), -32602, 1, ""),
    ("protocol-null", lambda t: hello(t, None), -32602, 1, ""),
    # The spec asks only for the first words; the SDKs also agree on the rest.
    (
        "protocol-2",
        lambda t: hello(t, 2),
        -32007,
        1,
        "protocol version mismatch: worker speaks 1, parent speaks 2",
    ),
    (
        "protocol-0",
        lambda t: hello(t, 0),
        -32007,
        1,
        "protocol version mismatch: worker speaks 1, parent speaks 0",
    ),
    (
        "protocol-negative",
        lambda t: hello(t, -1),
        -32007,
        1,
        "protocol version mismatch",
    ),
    (
        "protocol-uint64-max",
        lambda t: hello(t, 2**64 - 1),
        -32007,
        1,
        "protocol version mismatch",
    ),
    # The module's connection is authenticated: rule 7, after the protocol rules.
    (
        "already-connected",
        lambda t: hello(t),
        -32003,
        1,
        "data channel already connected",
    ),
    (
        "already-connected-string-id",
        lambda t: hello(t, request_id="s"),
        -32003,
        "s",
        "data",
    ),
    (
        "already-connected-protocol-2",
        lambda t: hello(t, 2),
        -32007,
        1,
        "protocol version",
    ),
]


def knock(worker: ForeignWorker, first: Any) -> tuple[DataConnection, list[Any]]:
    """Sends one first frame on a new connection; returns it (closed by the worker, or not
    within 3 s) and the frames received."""
    connection = worker.connect()
    payload = present(first) if isinstance(first, dict) else first
    connection.send_raw(frame(payload), tolerate_close=True)
    connection.wait_closed(3.0)
    frames = [item.message for item in connection.drain_now()]
    connection.close()  # ours to close either way: the shared worker outlives the case
    return connection, frames


@pytest.fixture(scope="module")
def lonely(shared: SharedWorker) -> Iterator[ForeignWorker]:
    """A worker of the module's language on which no connection is authenticated."""
    with (
        ForeignWorker(shared.language, worker_id="fp/ü 3") as worker,
        kept_for_module(worker),
    ):
        worker.ready()
        yield worker


CASES = [(*case, True) for case in REFUSED] + [
    (*case, False) for case in REFUSED if not case[0].startswith("already-connected")
]


@pytest.mark.parametrize(
    ("first", "code", "reply_id", "words", "elsewhere"),
    [case[1:] for case in CASES],
    ids=[f"{case[0]}-{'authenticated' if case[5] else 'alone'}" for case in CASES],
)
def test_a_first_frame_that_is_not_a_good_hello_is_refused(
    data: Via,
    lonely: ForeignWorker,
    first: Build,
    code: int,
    reply_id: Any,
    words: str,
    elsewhere: bool,
) -> None:
    """``elsewhere``: another connection is authenticated (the module's), or none is."""
    worker = data.worker if elsewhere else lonely
    connection, frames = knock(worker, first(worker.token))
    assert connection.inbox.closed_at is not None, f"not closed; received {frames}"
    assert len(frames) == 1, frames
    [reply] = frames
    assert set(reply) == {"jsonrpc", "id", "error"}, reply
    assert reply["id"] == reply_id and type(reply["id"]) is type(reply_id), reply
    error = reply["error"]
    assert error["code"] == code and error["message"].startswith(words), error
    if code == -32602:
        assert "protocol" in error["message"], error
    if code == -32007:
        assert error.get("data") == {"supported": [1]}, error
    assert worker.token not in repr(reply) and worker.token.upper() not in repr(reply)
    assert data.call("$/ping")["result"] == {}, (
        "the authenticated connection was disturbed"
    )
    assert worker.process.poll() is None


@pytest.mark.parametrize(
    "head",
    [(65537).to_bytes(4, "big"), b"\xff\xff\xff\xff", b"GET / HTTP/1.1\r\n"],
    ids=["64KiB+1", "4GiB", "http"],
)
def test_an_oversized_first_frame_closes_silently_at_once(
    data: Via, head: bytes
) -> None:
    connection = data.worker.connect()
    taken, closed_after = connection.flood(head, FLOOD, timeout=3.0)
    print(
        f"\n{data.worker.language}: pre-hello {head[:4].hex()}: closed {closed_after} s, {taken}"
    )
    assert closed_after is not None, f"still open after 3 s; it took {taken} bytes"
    assert closed_after < 0.5, f"closed only after {closed_after:.3f} s"
    assert taken < (4 << 20), f"the worker read {taken} bytes after the header"
    assert connection.drain_now() == [], "no courtesy reply before authentication"
    connection.close()
    assert data.call("$/ping")["result"] == {}


def test_an_empty_first_frame_closes_silently(data: Via) -> None:
    connection, frames = knock(data.worker, b"")
    assert connection.inbox.closed_at is not None and frames == []


def test_a_first_frame_of_exactly_64_kib_is_read(data: Via) -> None:
    worker = data.worker
    message = hello(worker.token, request_id=3, pad="")
    message["params"]["pad"] = "p" * (
        65536 - len(pack(message)) - 2
    )  # str 16: 3 bytes, not 1
    assert len(pack(message)) == 65536
    _, frames = knock(worker, message)
    # Read and judged (rule 7 here, the module's connection being authenticated), not dropped.
    assert [(f["id"], f["error"]["code"]) for f in frames] == [(3, -32003)], frames


# ---- accepted hellos, on a worker of their own ------------------------------------------------
@pytest.mark.parametrize(
    "message",
    [
        lambda t: hello(t),
        lambda t: hello(t, request_id="h-1"),
        lambda t: hello(t, request_id=2**64 - 1),
        lambda t: hello(t, client="foreign", x=[1]),
    ],
    ids=["plain", "string-id", "uint64-id", "extra-members"],
)
def test_a_good_hello_is_accepted(fresh: ForeignWorker, message: Build) -> None:
    first = message(fresh.token)
    connection = fresh.connect()
    connection.send(first)
    reply = connection.next().message
    assert reply["id"] == first["id"] and type(reply["id"]) is type(first["id"]), reply
    assert reply.get("result") == {
        "protocol": 1,
        "workerId": "fp/ü 2",
        "pid": fresh.pid,
    }, reply
    assert connection.call("$/ping")["result"] == {}


def test_a_second_hello_on_an_authenticated_connection(fresh: ForeignWorker) -> None:
    connection = fresh.open_data()
    for request_id, token in [(2, fresh.token), ("x", WRONG)]:
        connection.send(hello(token, request_id=request_id))
        reply = connection.next().message
        assert reply["id"] == request_id and reply["error"]["code"] == -32600, reply
        assert reply["error"]["message"].startswith(
            "Invalid Request: already authenticated"
        )
    connection.send(present({**hello(fresh.token), "id": ABSENT}))
    connection.send(request("$/ping", request_id=9))
    assert connection.next().message == {"jsonrpc": "2.0", "id": 9, "result": {}}


def test_the_worker_accepts_a_new_connection_once_the_first_closed(
    fresh: ForeignWorker,
) -> None:
    fresh.open_data().close()
    deadline = time.monotonic() + 2
    while True:
        connection = fresh.connect()
        reply = connection.hello(fresh.token)
        if "result" in reply or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # refused while the worker had not yet seen the close
    assert "result" in reply, reply
