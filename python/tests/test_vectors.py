"""Runs every case of every file in spec/vectors against the Python sans-IO core."""

from __future__ import annotations

from typing import Any

import pytest

from aspect_ipc import CodecError, FramingError, IpcError, JsonCodec, MessagePackCodec, PipePath
from aspect_ipc.framing import LengthPrefixedFraming, LineDelimitedFraming
from aspect_ipc.jsonrpc import (
    ABSENT,
    ErrorResponse,
    InvalidMessage,
    JsonRpcProtocol,
    Notification,
    Request,
    Response,
)
from aspect_ipc.recovery import recover_id
from vectors import VECTORS, cases, load, same, untag

FRAMINGS = {
    "framing-length-prefixed.json": ("max_frame_size", LengthPrefixedFraming),
    "framing-line-delimited.json": ("max_line_length", LineDelimitedFraming),
}


def test_every_vector_file_is_covered() -> None:
    covered = {*FRAMINGS, "codec-msgpack.json", "codec-json.json", "jsonrpc.json", "paths.json"}
    covered |= {"handshake.json", "environment.json"}  # test_vectors_worker.py
    covered |= {"streams.json"}  # test_vectors_streams.py
    assert {p.name for p in VECTORS.glob("*.json")} == covered


def _framing(file: str, case: dict[str, Any]) -> Any:
    key, cls = FRAMINGS[file]
    return cls(case.get(key, load(file)[key]))


def _run_decoder(framing: Any, chunks: list[bytes], eof: bool) -> list[dict[str, str]]:
    decoder = framing.decoder()
    events: list[dict[str, str]] = []
    failed = False

    def drain() -> None:
        nonlocal failed
        while not failed:
            try:
                frame = decoder.next_frame()
            except FramingError as exc:
                events.append({"error": exc.kind})
                failed = exc.fatal
                continue
            if frame is None:
                return
            events.append({"frame": frame.hex()})

    for chunk in chunks:
        decoder.feed(chunk)
        drain()
    if eof:
        decoder.feed_eof()
        drain()
    return events


def _chunkings(data: bytes) -> list[list[bytes]]:
    ways = [[data]]
    ways += [[data[:i], data[i:]] for i in range(1, len(data))]
    ways.append([data[i : i + 1] for i in range(len(data))])
    return ways


FRAMING_CASES = [
    pytest.param(file, case, id=f"{file}:{case_id}")
    for file in FRAMINGS
    for case_id, case in cases(file)
]


@pytest.mark.parametrize(("file", "case"), FRAMING_CASES)
def test_framing_decode(file: str, case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["input"])
    for chunks in _chunkings(data):
        events = _run_decoder(_framing(file, case), chunks, case["eof"])
        assert events == case["events"], f"chunked as {[len(c) for c in chunks]}"


@pytest.mark.parametrize(
    ("file", "case"),
    [
        pytest.param(file, case, id=f"{file}:{case_id}")
        for file in FRAMINGS
        for case_id, case in cases(file, "encode_cases")
    ],
)
def test_framing_encode(file: str, case: dict[str, Any]) -> None:
    framing = _framing(file, case)
    payload = bytes.fromhex(case["payload"])
    if "error" in case:
        with pytest.raises(FramingError) as info:
            framing.encode(payload)
        assert info.value.kind == case["error"]
    else:
        assert framing.encode(payload).hex() == case["output"]


@pytest.mark.parametrize(("case_id", "case"), cases("codec-msgpack.json"))
def test_msgpack_roundtrip(case_id: str, case: dict[str, Any]) -> None:
    codec = MessagePackCodec()
    value = untag(case["value"])
    assert codec.encode(value).hex() in case["encodings"]
    for encoding in case["encodings"]:
        decoded = codec.decode(bytes.fromhex(encoding))
        if encoding == case["encodings"][0]:
            assert same(decoded, value), encoding
        else:  # an alternative form (JavaScript's integral floats) decodes to the same number
            assert decoded == value or (decoded != decoded and value != value)


@pytest.mark.parametrize(("case_id", "case"), cases("codec-msgpack.json", "decode_cases"))
def test_msgpack_decode(case_id: str, case: dict[str, Any]) -> None:
    assert same(MessagePackCodec().decode(bytes.fromhex(case["input"])), untag(case["value"]))


@pytest.mark.parametrize(("case_id", "case"), cases("codec-msgpack.json", "error_cases"))
def test_msgpack_decode_error(case_id: str, case: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        MessagePackCodec().decode(bytes.fromhex(case["input"]))


@pytest.mark.parametrize(("case_id", "case"), cases("codec-msgpack.json", "encode_error_cases"))
def test_msgpack_encode_error(case_id: str, case: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        MessagePackCodec().encode(untag(case["value"]))


@pytest.mark.parametrize(("case_id", "case"), cases("codec-json.json", "decode_cases"))
def test_json_decode(case_id: str, case: dict[str, Any]) -> None:
    assert same(JsonCodec().decode(bytes.fromhex(case["input"])), untag(case["value"]))


@pytest.mark.parametrize(("case_id", "case"), cases("codec-json.json", "error_cases"))
def test_json_decode_error(case_id: str, case: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        JsonCodec().decode(bytes.fromhex(case["input"]))


@pytest.mark.parametrize(("case_id", "case"), cases("codec-json.json", "encode_cases"))
def test_json_encode(case_id: str, case: dict[str, Any]) -> None:
    assert JsonCodec().encode(untag(case["value"])).hex() in case["encodings"]


@pytest.mark.parametrize(("case_id", "case"), cases("codec-json.json", "encode_error_cases"))
def test_json_encode_error(case_id: str, case: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        JsonCodec().encode(untag(case["value"]))


def _describe(message: Any) -> dict[str, Any]:
    if isinstance(message, Request):
        out: dict[str, Any] = {"kind": "request", "id": message.id, "method": message.method}
    elif isinstance(message, Notification):
        out = {"kind": "notification", "method": message.method}
    elif isinstance(message, Response):
        return {"kind": "response", "id": message.id, "result": message.result}
    elif isinstance(message, ErrorResponse):
        out = {"kind": "error_response", "id": message.id, "code": message.code}
        out["message"] = message.message
        if message.data is not ABSENT:
            out["data"] = message.data
        return out
    else:
        assert isinstance(message, InvalidMessage)
        return {
            "kind": "invalid",
            "code": int(message.code),
            "id": message.id,
            "reply": message.reply,
        }
    if message.params is not None:
        out["params"] = message.params
    return out


@pytest.mark.parametrize(("case_id", "case"), cases("jsonrpc.json"))
def test_jsonrpc_classify(case_id: str, case: dict[str, Any]) -> None:
    got = _describe(JsonRpcProtocol.parse(untag(case["message"])))
    assert same(got, untag(case["expect"]))


CODECS = {"json": JsonCodec, "msgpack": MessagePackCodec}


@pytest.mark.parametrize(("case_id", "case"), cases("jsonrpc.json", "wire_cases"))
def test_jsonrpc_from_bytes(case_id: str, case: dict[str, Any]) -> None:
    """Bytes to verdict: float ids by their text, and the id of an undecodable message."""
    data = bytes.fromhex(case["input"])
    try:
        value = CODECS[case["codec"]]().decode(data)
    except CodecError:
        got = {"kind": "parse_error", "code": -32700, "id": recover_id(case["codec"], data)}
    else:
        got = _describe(JsonRpcProtocol.parse(value))
    assert same(got, untag(case["expect"]))


@pytest.mark.parametrize(("case_id", "case"), cases("paths.json"))
def test_pipe_path(case_id: str, case: dict[str, Any]) -> None:
    args = (case["namespace"], case["worker_id"])
    kwargs = {"platform": case["platform"], "directory": case.get("directory")}
    if "error" in case:
        with pytest.raises(IpcError, match="too long"):
            PipePath.for_module(*args, **kwargs)
    else:
        assert PipePath.for_module(*args, **kwargs) == case["path"]


@pytest.mark.parametrize(("case_id", "case"), cases("paths.json", "empty_name_cases"))
def test_pipe_path_rejects_empty_names(case_id: str, case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        PipePath.for_module(case["namespace"], case["worker_id"])
