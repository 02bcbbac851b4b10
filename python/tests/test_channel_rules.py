"""Spec 1.1 rules of a channel, on in-memory transports, on asyncio and trio: oversized
responses of any kind (D1), an oversized frame (D7), the id of an undecodable message (D10),
notification order (D16) and exact sizes in size errors (D17)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aspect_ipc import (
    ChannelBuilder,
    ErrorCode,
    JsonCodec,
    LengthPrefixedFraming,
    LineDelimitedFraming,
    MessagePackCodec,
    RemoteError,
)
from aspect_ipc.channel import Channel
from aspect_ipc.errors import SizeLimitError
from memory import MemoryTransport, transport_pair

pytestmark = pytest.mark.anyio
LIMIT = 4096


def _channel(transport: MemoryTransport, codec: str, limit: int = LIMIT) -> Channel:
    builder = ChannelBuilder().with_transport(transport).with_options(name="worker side")
    if codec == "json":
        framing: Any = LineDelimitedFraming(limit)
        return builder.with_framing(framing).with_codec(JsonCodec()).build()
    framing = LengthPrefixedFraming(limit)
    return builder.with_framing(framing).with_codec(MessagePackCodec()).build()


def _wire(codec: str, message: Any) -> bytes:
    if codec == "json":
        return JsonCodec().encode(message) + b"\n"
    return LengthPrefixedFraming().encode(MessagePackCodec().encode(message))


async def _reply(peer: MemoryTransport, codec: str) -> Any:
    data = await peer.receive()
    if codec == "json":
        return JsonCodec().decode(data.rstrip(b"\n"))
    return MessagePackCodec().decode(data[4:])


def _raise_big(params: Any) -> None:
    raise RemoteError(-32099, "with a large data member", "x" * 2 * LIMIT)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("method", ["bigResult", "bigError", "bigException"])
async def test_any_oversized_response_is_answered_32005_with_the_same_id(
    codec: str, method: str
) -> None:
    a, b = transport_pair()
    async with _channel(b, codec) as worker:
        worker.on_request("bigResult", lambda p: "x" * 2 * LIMIT)
        worker.on_request("bigError", _raise_big)
        worker.on_request("bigException", lambda p: 1 / 0 if p else _fail("y" * 2 * LIMIT))
        await a.send(_wire(codec, {"jsonrpc": "2.0", "id": "r-7", "method": method}))
        reply = await _reply(a, codec)
    error = reply["error"]
    assert reply["id"] == "r-7" and error["code"] == ErrorCode.MESSAGE_TOO_LARGE
    limit = "max_line_length" if codec == "json" else "max_frame_size"
    size = error["data"]["size"]
    assert error["data"] == {"size": size, "limit": LIMIT} and size > LIMIT
    assert error["message"] == f"response of {size} bytes exceeds {limit} of {LIMIT} bytes"


def _fail(text: str) -> None:
    raise ValueError(text)


async def test_an_oversized_frame_header_is_answered_once_with_exact_numbers_then_closed() -> None:
    a, b = transport_pair()
    async with _channel(b, "msgpack"):
        await a.send((LIMIT + 1).to_bytes(4, "big") + b"\x00" * 16)
        reply = await _reply(a, "msgpack")
        assert await a.receive() == b""  # closed: nothing after the header was waited for
    assert reply["id"] is None and reply["error"]["code"] == ErrorCode.MESSAGE_TOO_LARGE
    assert reply["error"]["data"] == {"size": LIMIT + 1, "limit": LIMIT}
    assert reply["error"]["message"].startswith(
        f"frame of {LIMIT + 1} bytes exceeds max_frame_size of {LIMIT} bytes"
    )


async def test_an_over_long_line_is_answered_with_exact_numbers_and_reading_goes_on() -> None:
    a, b = transport_pair()
    async with _channel(b, "json") as worker:
        worker.on_request("ok", lambda p: "ok")
        await a.send(b'"' + b"x" * (LIMIT + 10) + b'"\n')
        await a.send(b'{"jsonrpc":"2.0","id":1,"method":"ok"}\n')
        too_long, answer = await _reply(a, "json"), await _reply(a, "json")
    error = too_long["error"]
    assert error["code"] == ErrorCode.MESSAGE_TOO_LARGE and error["data"]["limit"] == LIMIT
    size = error["data"].get("size")
    text = f"more than {LIMIT}" if size is None else str(size)
    assert error["message"].startswith(
        f"line of {text} bytes exceeds max_line_length of {LIMIT} bytes"
    )
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": "ok"}


def test_local_size_errors_state_exact_bytes() -> None:
    with pytest.raises(SizeLimitError) as frame:
        LengthPrefixedFraming(4096).encode(b"x" * 4097)
    assert str(frame.value).startswith("frame of 4097 bytes exceeds max_frame_size of 4096 bytes")
    assert frame.value.data == {"size": 4097, "limit": 4096}
    with pytest.raises(SizeLimitError) as line:
        LineDelimitedFraming(1024).encode(b"x" * 1025)
    assert str(line.value).startswith("line of 1025 bytes exceeds max_line_length of 1024 bytes")
    decoder = LineDelimitedFraming(1024).decoder()
    decoder.feed(b"x" * 2000)
    with pytest.raises(SizeLimitError) as unfinished:
        decoder.next_frame()
    assert str(unfinished.value).startswith(
        "line of more than 1024 bytes exceeds max_line_length of 1024 bytes"
    )
    assert unfinished.value.data == {"limit": 1024}


UNDECODABLE = {
    "json": [
        (b'{"jsonrpc":"2.0","id":7,"method":"m","params":["\\ud800"]}', 7),
        (b'{"jsonrpc":"2.0","id":"a","method":"m","params":' + b"[" * 600 + b"]" * 600 + b"}", "a"),
        (b'{"jsonrpc":"2.0","id":8,"method":"m","params":[1e400]}', 8),
        (b'{"jsonrpc":"2.0","id":9,"method":"m","params":[18446744073709551616]}', 9),
        (b'{"jsonrpc":"2.0","id":7,"method":"m","params":[1,}', None),  # not JSON at all
        (b'{"jsonrpc":"2.0","method":"m","params":["\\udc00"]}', None),  # a notification
    ],
    "msgpack": [
        (
            bytes.fromhex(
                "84a76a736f6e727063a3322e30a2696407a66d6574686f64a16da6706172616d7391d40501"
            ),
            7,
        ),
        (
            bytes.fromhex(
                "84a76a736f6e727063a3322e30a2696407a66d6574686f64a16da6706172616d73810102"
            ),
            7,
        ),
        (bytes.fromhex("83a76a736f6e727063a3322e30a2696407a66d6574686f64a16dc0"), None),
    ],
}


@pytest.mark.parametrize(
    ("codec", "data", "expected"),
    [(codec, data, expected) for codec, rows in UNDECODABLE.items() for data, expected in rows],
)
async def test_an_undecodable_request_is_answered_with_its_id(
    codec: str, data: bytes, expected: Any
) -> None:
    a, b = transport_pair()
    async with _channel(b, codec, limit=1 << 20) as worker:
        worker.on_request("ok", lambda p: "ok")
        await a.send(data + b"\n" if codec == "json" else LengthPrefixedFraming().encode(data))
        reply = await _reply(a, codec)
        await a.send(_wire(codec, {"jsonrpc": "2.0", "id": 99, "method": "ok"}))
        after = await _reply(a, codec)
    assert reply["error"]["code"] == ErrorCode.PARSE_ERROR and reply["id"] == expected
    assert after["result"] == "ok"  # the channel goes on


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_notification_handlers_run_one_at_a_time_in_order(
    codec: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow async notification handler holds up the next notification, never a request,
    a response or a $/cancelRequest; a failing one does not stop the next, and is logged as a
    WARNING naming the notification (the guide's logging table)."""
    events: list[str] = []
    a, b = transport_pair()
    async with _channel(b, codec) as worker:

        async def note(params: dict[str, Any]) -> None:
            events.append(f"start {params['n']}")
            if params["n"] == 0:
                await anyio.sleep(0.2)
            if params["n"] == 1:
                raise RuntimeError("a failing notification handler")
            events.append(f"end {params['n']}")

        async def slow(params: Any) -> str:
            await anyio.sleep(30)
            return "never"

        worker.on_notification("note", note)
        worker.on_request("quick", lambda p: events.append("request") or "done")
        worker.on_request("slow", slow)
        for n in range(3):
            await a.send(_wire(codec, {"jsonrpc": "2.0", "method": "note", "params": {"n": n}}))
        await a.send(_wire(codec, {"jsonrpc": "2.0", "id": 1, "method": "slow"}))
        await a.send(_wire(codec, {"jsonrpc": "2.0", "id": 2, "method": "quick"}))
        cancel = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}
        await a.send(_wire(codec, cancel))
        with anyio.fail_after(10):
            replies = {r["id"]: r for r in [await _reply(a, codec), await _reply(a, codec)]}
            while len(events) < 6:
                await anyio.sleep(0.01)
    assert replies[2]["result"] == "done"
    assert replies[1]["error"]["code"] == ErrorCode.REQUEST_CANCELLED
    assert events.index("request") < events.index("end 0")  # the request did not wait
    assert [e for e in events if e != "request"] == [
        "start 0",
        "end 0",
        "start 1",
        "start 2",
        "end 2",
    ]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [(r.levelname, r.name) for r in failures] == [("WARNING", "aspect_ipc.channel")]
    assert "notification 'note' failed: RuntimeError('a failing notification handler')" in (
        failures[0].getMessage()
    )
    assert failures[0].exc_info is not None  # with its traceback


@pytest.mark.parametrize("params", [{"id": [1]}, {"id": {"a": 1}}, {"id": 1.0}, [1], {}])
async def test_a_malformed_cancel_request_is_ignored(params: Any) -> None:
    a, b = transport_pair()
    async with _channel(b, "msgpack") as worker:
        worker.on_request("ok", lambda p: "ok")
        notice = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": params}
        await a.send(_wire("msgpack", notice))
        await a.send(_wire("msgpack", {"jsonrpc": "2.0", "id": 1, "method": "ok"}))
        assert (await _reply(a, "msgpack"))["result"] == "ok"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_a_request_or_notification_too_large_to_send_says_which(codec: str) -> None:
    peer, b = transport_pair()
    limit = "max_line_length" if codec == "json" else "max_frame_size"
    async with _channel(b, codec) as channel:
        with pytest.raises(SizeLimitError) as request:
            await channel.request("echo", ["x" * 2 * LIMIT])
        with pytest.raises(SizeLimitError) as notification:
            await channel.notify("note", ["x" * 2 * LIMIT])
    await peer.aclose()
    for what, info in (("request", request), ("notification", notification)):
        size = info.value.size
        assert size is not None and size > LIMIT and info.value.data["limit"] == LIMIT
        assert str(info.value).startswith(
            f"{what} of {size} bytes exceeds {limit} of {LIMIT} bytes"
        )


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_an_oversized_request_or_notification_is_refused_by_name_and_nothing_is_sent(
    codec: str,
) -> None:
    # The sender says what could not be sent, with the exact numbers and what to do (D17); the
    # channel goes on: the next message is the first the peer sees.
    limit, advice = (
        ("max_line_length", "use the data channel")
        if codec == "json"
        else ("max_frame_size", "split the payload")
    )
    a, b = transport_pair()
    async with _channel(b, codec) as parent:
        big = {"blob": "x" * 2 * LIMIT}
        for what, send in (
            ("request", lambda: parent.request("echo", big)),
            ("notification", lambda: parent.notify("note", big)),
        ):
            with pytest.raises(SizeLimitError) as refused:
                await send()
            size = refused.value.size
            assert size is not None and size > LIMIT
            assert str(refused.value) == (
                f"{what} of {size} bytes exceeds {limit} of {LIMIT} bytes; raise {limit} or "
                f"{advice}"
            )
            assert refused.value.data == {"size": size, "limit": LIMIT}
        await parent.notify("note", {"small": True})
        first = await _reply(a, codec)
    await a.aclose()
    assert first == {"jsonrpc": "2.0", "method": "note", "params": {"small": True}}
