"""spec/vectors/streams.json against the sans-IO stream layer: message cases, then every scenario
replayed as each of its sides (spec/vectors/README.md, "Replay rule")."""

from __future__ import annotations

from typing import Any

import pytest

from aspect_ipc._stream_messages import (
    DEFAULT_WINDOW,
    MAX_OPEN_STREAMS,
    MAX_WINDOW,
    STREAM_METHODS,
    Credit,
    DescriptorError,
    End,
    Failed,
    Item,
    Malformed,
    descriptor,
    parse_opening,
    parse_stream_message,
)
from aspect_ipc._streams import WAIT, Consumer, EndOfStream, Producer, StreamError, StreamTable
from aspect_ipc.errors import RemoteError
from aspect_ipc.jsonrpc import ErrorResponse, JsonRpcProtocol, Notification, Request
from vectors import cases, load, same, untag

STREAMS = load("streams.json")
LOCAL_CODES = {-32002, -32009, -32010, -32011}  # SDKs word these messages as they wish


def test_constants() -> None:
    assert (
        STREAMS["default_window"],
        STREAMS["max_window"],
        STREAMS["max_open_streams"],
    ) == (DEFAULT_WINDOW, MAX_WINDOW, MAX_OPEN_STREAMS)


def _classify(message: Any) -> dict[str, Any]:
    parsed = JsonRpcProtocol.parse(message)
    if isinstance(parsed, Request):
        try:
            opening = parse_opening(parsed.params)
        except DescriptorError:
            return {"kind": "invalid_open", "code": -32602, "id": parsed.id}
        if opening is None:
            return {"kind": "not_stream"}
        out: dict[str, Any] = {"kind": "open", "id": parsed.id, "method": parsed.method}
        out["params"] = opening.params
        if opening.out_window is not None:
            out["out"] = {"window": opening.out_window}
        if opening.has_input:
            out["in"] = {}
        return out
    if isinstance(parsed, ErrorResponse):
        return {"kind": "error_response", "id": parsed.id, "code": parsed.code, "data": parsed.data}
    assert isinstance(parsed, Notification) and parsed.method in STREAM_METHODS
    msg = parse_stream_message(parsed.method, parsed.params)
    if msg is None:
        return {"kind": "unnamed"}
    named = {"stream": msg.stream, "dir": msg.dir}
    if isinstance(msg, Item):
        return {"kind": "item", **named, "seq": msg.seq, "value": msg.value}
    if isinstance(msg, Credit):
        return {"kind": "credit", **named, "add": msg.add}
    if isinstance(msg, End):
        return {"kind": "end", **named}
    if isinstance(msg, Failed):
        got = {"kind": "error", **named, "code": msg.code, "message": msg.message}
        return got | ({"data": msg.data} if msg.has_data else {})
    assert isinstance(msg, Malformed)
    return {"kind": "malformed", **named}


@pytest.mark.parametrize(("case_id", "case"), cases("streams.json", "messages"))
def test_stream_message(case_id: str, case: dict[str, Any]) -> None:
    assert same(_classify(untag(case["message"])), untag(case["expect"]))


def _error_response(table: StreamTable, msg_id: Any, code: int) -> dict[str, Any]:
    """The -32009 / -32010 answers the table builds, checked against the message cases' shape."""
    if code == -32009:
        for i in range(MAX_OPEN_STREAMS):
            table.accept(1000 + i, parse_opening({"$/stream": {"in": {}}}))  # type: ignore[arg-type]
        with pytest.raises(RemoteError) as info:
            table.accept(msg_id, parse_opening({"$/stream": {"in": {}}}))  # type: ignore[arg-type]
        return {"id": msg_id, "code": info.value.code, "data": info.value.data}
    raise AssertionError(code)


def test_limit_answer_shape() -> None:
    case = next(c for i, c in cases("streams.json", "messages") if "32009" in str(c["expect"]))
    got = _error_response(StreamTable("data", in_window=2), 77, -32009)
    assert same({"kind": "error_response", **got}, untag(case["expect"]))


class _Side:
    """One side of a scenario: the table, and which request its app steps are about."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.table = StreamTable("data", in_window=scenario.get("in_window", DEFAULT_WINDOW))
        self.current: Any = None
        self.outcome: tuple[str, Any] | None = None
        self.last_error: tuple[int, str] | None = None
        self.mine: dict[str, Consumer | Producer] = {}
        self.theirs: dict[str, Consumer | Producer] = {}
        for i in range(scenario.get("open_streams", 0)):
            self.feed(
                {
                    "jsonrpc": "2.0",
                    "id": 1001 + i,
                    "method": "countTo",
                    "params": {"n": 1, "size": 0, "$/stream": {"out": {"window": 16}}},
                }
            )
        assert not self.table.outbox

    def feed(self, message: dict[str, Any]) -> None:
        parsed = JsonRpcProtocol.parse(message)
        if isinstance(parsed, Request):
            opening = parse_opening(parsed.params)
            assert opening is not None
            try:
                self.theirs = self.table.accept(parsed.id, opening).streams
            except RemoteError as exc:
                self._emit_error(parsed.id, exc.code, exc.message, exc.data)
            self.current = parsed.id
        elif isinstance(parsed, Notification):
            if parsed.method == "$/cancelRequest":
                assert isinstance(parsed.params, dict)
                self.table.on_peer_cancel(parsed.params["id"])
            else:
                self.table.feed(parsed.method, parsed.params)
        elif isinstance(parsed, ErrorResponse):
            assert parsed.id is not None
            error = RemoteError(parsed.code, parsed.message, parsed.data)
            if self.table.on_response(parsed.id, None, error):
                self.outcome = ("err", parsed.code)
        else:
            if self.table.on_response(parsed.id, parsed.result, None):  # type: ignore[union-attr]
                self.outcome = ("ok", parsed.result)  # type: ignore[union-attr]

    def _emit_error(self, msg_id: Any, code: int, message: str, data: Any = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.table.outbox.append({"jsonrpc": "2.0", "id": msg_id, "error": error})

    def _step(self, action: Any) -> Any:
        try:
            return ("ok", action())
        except EndOfStream as end:
            return ("end", end.value)
        except (StreamError, RemoteError) as exc:
            self.last_error = (exc.code, exc.message)
            return ("fail", exc.code)

    def act(self, step: dict[str, Any]) -> None:
        app, table = step["app"], self.table
        # The requester consumes "out" and produces "in"; the responder the other way round.
        producing = app in ("send", "send_blocks", "send_fails", "close", "abort")
        requester = (step.get("dir") == "in") == producing
        stream = (self.mine if requester else self.theirs).get(step.get("dir", ""))
        if app == "open":
            self.current = step["id"]
            self.mine = table.open(
                step["id"], step.get("out", {}).get("window"), "in" in step
            ).streams
            params = {
                **step["params"],
                "$/stream": descriptor(step.get("out", {}).get("window"), "in" in step),
            }
            table.outbox.append(
                {"jsonrpc": "2.0", "id": step["id"], "method": step["method"], "params": params}
            )
        elif app in ("send", "send_blocks", "send_fails"):
            assert isinstance(stream, Producer)
            got = self._step(lambda: table.send(stream, step.get("value")))
            expect = {"send": ("ok", None), "send_blocks": ("ok", WAIT)}.get(
                app, ("fail", step.get("code"))
            )
            assert got == expect, (got, step)
        elif app in ("take", "end", "fails") and "dir" in step:
            assert isinstance(stream, Consumer)
            got = self._step(lambda: table.take(stream))
            expect = {"take": ("ok", step.get("value")), "end": ("end", step.get("result"))}
            assert got == expect.get(app, ("fail", step.get("code"))), (got, step)
        elif app == "fails":
            assert self.outcome == ("err", step["code"]) or self._local_failure(step["code"])
        elif app == "result":
            assert self.outcome == ("ok", step["result"])
        elif app == "break":
            table.cancel(self.current)
        elif app in ("close", "abort"):
            assert isinstance(stream, Producer)
            error = RemoteError(step["code"], step["message"]) if app == "abort" else None
            table.end_input(stream, error)
        elif app in ("fail", "propagate", "return"):
            if not table.answer(self.current):
                return
            if app == "return":
                table.outbox.append(
                    {"jsonrpc": "2.0", "id": self.current, "result": step["result"]}
                )
                return
            code, message = (step["code"], step["message"]) if app == "fail" else self.last_error  # type: ignore[misc]
            self._emit_error(self.current, code, message)
        else:
            raise AssertionError(f"unknown app step {app}")

    def _local_failure(self, code: int) -> bool:
        return any(
            isinstance(s.failure, StreamError) and s.failure.code == code
            for s in self.mine.values()
        )


def _comparable(message: Any) -> Any:
    error = message.get("error") if isinstance(message, dict) else None
    if isinstance(error, dict) and error.get("code") in LOCAL_CODES:
        return {**message, "error": {k: v for k, v in error.items() if k != "message"}}
    return message


SCENARIOS = [
    pytest.param(scenario, side, id=f"{scenario['id']}:{side}")
    for scenario in STREAMS["scenarios"]
    for side in scenario["sides"]
]


@pytest.mark.parametrize(("scenario", "side"), SCENARIOS)
def test_stream_scenario(scenario: dict[str, Any], side: str) -> None:
    x = _Side(scenario)
    for i, step in enumerate(scenario["steps"]):
        if "app" in step:
            if step["at"] == side:
                x.act(step)
        elif step["wire"][0] == side:
            assert x.table.outbox, f"step {i}: expected {step['message']}, X sent nothing"
            got = x.table.outbox.pop(0)
            assert same(_comparable(got), _comparable(untag(step["message"]))), f"step {i}: {got}"
        else:
            x.feed(untag(step["message"]))
    assert not x.table.outbox, f"X sent more: {x.table.outbox}"
