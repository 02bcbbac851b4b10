"""The wire trace (spawn(trace=...), ASPECT_IPC_TRACE) with real worker processes."""

from __future__ import annotations

import logging

import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError, _process
from aspect_ipc._trace import PAYLOAD_LIMIT, trace_mode
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


def _records(caplog: pytest.LogCaptureFixture, worker_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "aspect_ipc.trace" and getattr(r, "worker_id", None) == worker_id
    ]


async def test_trace_logs_every_message_with_its_round_trip(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aspect_ipc.trace")
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA, trace=True)
        assert await handle.request_via_data("add", {"a": 1, "b": 2}) == 3
        with pytest.raises(RemoteError):
            await handle.request("fail", {"message": "no", "code": 4242})
        records = _records(caplog, "w")
    assert all(r.levelno == logging.DEBUG for r in records)
    sent = [r for r in records if r.direction == "send" and r.method == "add"]  # type: ignore[attr-defined]
    assert len(sent) == 1 and sent[0].channel == "data" and sent[0].kind == "request"  # type: ignore[attr-defined]
    answer = [r for r in records if r.direction == "recv" and r.method == "add"]  # type: ignore[attr-defined]
    assert len(answer) == 1 and answer[0].kind == "response"  # type: ignore[attr-defined]
    assert answer[0].request_id == sent[0].request_id and answer[0].rtt > 0  # type: ignore[attr-defined]
    assert answer[0].size > 4  # type: ignore[attr-defined]
    text = answer[0].getMessage()
    assert "recv response" in text and "method=add" in text and "rtt=" in text
    failed = [r for r in records if r.method == "fail" and r.kind == "error"]  # type: ignore[attr-defined]
    assert len(failed) == 1 and failed[0].channel == "control"  # type: ignore[attr-defined]
    # The handshake is traced too: the worker's $/ready, our $/hello; but not its params.
    assert any(r.method == "$/ready" for r in records)  # type: ignore[attr-defined]
    assert any(r.method == "$/hello" for r in records)  # type: ignore[attr-defined]
    assert "payload=" not in text  # payloads only when asked


async def test_payloads_are_truncated_and_the_token_never_appears(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="aspect_ipc.trace")
    token = "c0ffee" * 8  # the data channel's token, known to the test
    monkeypatch.setattr(_process, "new_token", lambda: token)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA, trace="payloads")
        assert await handle.request_via_data("echo", ["y" * 1000]) == ["y" * 1000]
        records = _records(caplog, "w")
    texts = [r.getMessage() for r in records]
    assert not any(token in t for t in texts)  # the data channel's token: never logged
    hello = [t for r, t in zip(records, texts, strict=True) if r.method == "$/hello"]  # type: ignore[attr-defined]
    assert hello and all("payload=<redacted>" in t for t in hello if "send request" in t)
    echo = [t for r, t in zip(records, texts, strict=True) if r.method == "echo"]  # type: ignore[attr-defined]
    assert len(echo) == 2 and all("payload=" in t for t in echo)
    shown = echo[0].split("payload=", 1)[1]
    assert shown.startswith("['yyy") and len(shown) == PAYLOAD_LIMIT + 3  # "..."


async def test_environment_switches_the_trace_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="aspect_ipc.trace")
    async with ProcessManager(namespace=namespace()) as manager:
        monkeypatch.setenv("ASPECT_IPC_TRACE", "1")
        traced = await manager.spawn("on", **python_worker())
        monkeypatch.delenv("ASPECT_IPC_TRACE")
        quiet = await manager.spawn("off", **python_worker())
        await traced.request("echo", [1])
        await quiet.request("echo", [1])
        assert any(r.method == "echo" for r in _records(caplog, "on"))  # type: ignore[attr-defined]
        assert _records(caplog, "off") == []


def test_trace_modes() -> None:
    assert trace_mode(True) == "messages" and trace_mode(False) is None
    assert trace_mode("payloads") == "payloads"
    with pytest.raises(ValueError, match="trace must be"):
        trace_mode("loud")
