"""Runs spec/vectors/handshake.json and environment.json against the worker SDK's pure parts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aspect_ipc import FramingError
from aspect_ipc.framing import LengthPrefixedDecoder
from aspect_ipc.hello import UNDECODABLE, hello_verdict
from aspect_ipc.worker_env import SizeSettingError, read_size
from vectors import cases, load, same, untag

HANDSHAKE = load("handshake.json")
ENVIRONMENT = load("environment.json")


@pytest.mark.parametrize(("case_id", "case"), cases("handshake.json"))
def test_hello_verdict(case_id: str, case: dict[str, Any]) -> None:
    message = UNDECODABLE if case.get("undecodable") else untag(case["message"])
    verdict = hello_verdict(
        message,
        token=HANDSHAKE["token"],
        supported=HANDSHAKE["supported"],
        worker_id=HANDSHAKE["worker_id"],
        pid=HANDSHAKE["pid"],
        already_authenticated=case["authenticated_elsewhere"],
        first_frame=case["first_frame"],
    )
    expect = case["expect"]
    assert verdict.accept == expect["keep_open"] == expect["authenticated"]
    want = expect["reply"]
    if want is None:
        assert verdict.reply is None
        return
    reply = verdict.reply
    assert reply is not None and reply["jsonrpc"] == "2.0"
    assert same(reply["id"], untag(want["id"]))
    if "result" in want:
        assert same(reply["result"], untag(want["result"]))
    else:
        assert reply["error"]["code"] == want["error"]["code"]
        assert isinstance(reply["error"]["message"], str)
        if "data" in want["error"]:
            assert same(reply["error"]["data"], untag(want["error"]["data"]))
    shown = json.dumps(reply)
    assert HANDSHAKE["token"] not in shown
    presented = (message.get("params") if isinstance(message, dict) else None) or {}
    token = presented.get("token") if isinstance(presented, dict) else None
    assert not isinstance(token, str) or not token or token not in shown


@pytest.mark.parametrize(("case_id", "case"), cases("handshake.json", "frame_cases"))
def test_pre_hello_frame_limit(case_id: str, case: dict[str, Any]) -> None:
    """The worker's first-frame decoder: the header alone decides, and nothing is replied."""
    limit = min(HANDSHAKE["pre_hello_max_frame_size"], case["max_frame_size"])
    decoder = LengthPrefixedDecoder(limit)
    decoder.feed(bytes.fromhex(case["header"]))
    if case["expect"] == "close":
        with pytest.raises(FramingError) as info:
            decoder.next_frame()
        assert info.value.fatal
    else:
        assert decoder.next_frame() is None  # waits for the payload


@pytest.mark.parametrize(("case_id", "case"), cases("environment.json"))
def test_size_variables(case_id: str, case: dict[str, Any]) -> None:
    environ = {} if case["value"] is None else {case["variable"]: case["value"]}
    default = ENVIRONMENT["defaults"][case["variable"]]
    if case["expect"].get("error"):
        with pytest.raises(SizeSettingError) as info:
            read_size(environ, case["variable"], default)
        quoted = json.dumps(case["value"], ensure_ascii=False)
        assert case["variable"] in str(info.value) and quoted in str(info.value)
    else:
        assert read_size(environ, case["variable"], default) == case["expect"]["limit"]
