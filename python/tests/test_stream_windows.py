"""Per-handler input windows (spec 13.3) and ``$/stream/end``/``$/stream/error`` with
``dir: "out"`` (13.5), against a raw peer that writes and reads the wire itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from aspect_ipc._streams import StreamError
from aspect_ipc.channel import Channel, current_streams
from aspect_ipc.worker import Worker
from memory import transport_pair
from test_channel import _channel

pytestmark = pytest.mark.anyio


class _Raw:
    """The far end of a memory transport, speaking line-delimited JSON by hand."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.buffer = raw, bytearray()

    async def send(self, *messages: Any) -> None:
        await self.raw.send(b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    async def read(self) -> Any:
        while b"\n" not in self.buffer:
            self.buffer += await self.raw.receive()
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        return json.loads(line)


@asynccontextmanager
async def _raw_peer(name: str = "right") -> AsyncIterator[tuple[Channel, _Raw]]:
    ours, raw = transport_pair()
    async with _channel(ours, "json", name) as channel:
        yield channel, _Raw(raw)
    await raw.aclose()


def _note(method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


async def _sum(params: Any) -> int:
    return sum([item async for item in current_streams().input])


async def _grant_for(channel: Channel, raw: _Raw, method: str, msg_id: int) -> int:
    """The first credit the handler of ``method`` grants for an input stream."""
    request = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": {"$/stream": {"in": {}}}}
    await raw.send(request)
    grant = await raw.read()
    assert grant["method"] == "$/stream/credit"
    assert (grant["params"]["stream"], grant["params"]["dir"]) == (msg_id, "in")
    await raw.send(_note("$/stream/end", stream=msg_id, dir="in"))
    assert await raw.read() == {"jsonrpc": "2.0", "id": msg_id, "result": 0}
    add: int = grant["params"]["add"]
    return add


async def test_channel_input_window_is_the_first_credit() -> None:
    async with _raw_peer() as (right, raw):
        right.on_request("sumStream", _sum)
        right.on_request("sumDefault", _sum)
        right.set_input_window("sumStream", 4)
        assert await _grant_for(right, raw, "sumStream", 1) == 4
        assert await _grant_for(right, raw, "sumDefault", 2) == 16
        right.set_input_window("sumStream", None)  # back to the default
        assert await _grant_for(right, raw, "sumStream", 3) == 16


async def test_worker_input_window_option() -> None:
    worker = Worker()

    @worker.data("sumStream", input_window=4)
    async def sum_stream(params: Any) -> int:
        return await _sum(params)

    async with _raw_peer("data") as (channel, raw):
        worker._install(channel, "data")  # what the worker does with each data connection
        assert await _grant_for(channel, raw, "sumStream", 7) == 4


@pytest.mark.parametrize("bad", [0, 1025, -1, True, 4.0, "4"])
def test_bad_input_window_is_refused_at_registration(bad: Any) -> None:
    worker = Worker()
    for register in (worker.data, worker.control):
        with pytest.raises(ValueError, match=r"handler 'sumStream': input_window must be"):
            register("sumStream", input_window=bad)


async def test_bad_input_window_is_refused_by_the_channel() -> None:
    async with _raw_peer() as (right, _):
        with pytest.raises(ValueError, match=r"handler 'sumStream'.*1 to 1024"):
            right.set_input_window("sumStream", 2048)


@pytest.mark.parametrize("method", ["$/stream/end", "$/stream/error"])
async def test_end_with_dir_out_fails_our_output_stream(method: str) -> None:
    """13.5: it names the output stream we consume: -32010, $/cancelRequest, response dropped."""
    async with _raw_peer("left") as (left, raw):
        call = left.stream("countTo", {"n": 3}, window=4)
        seen: list[Any] = []

        async def peer() -> None:
            request = await raw.read()
            sid = request["id"]
            extra = {"error": {"code": -32000, "message": "x"}} if method.endswith("error") else {}
            await raw.send(
                _note("$/stream/item", stream=sid, dir="out", seq=0, value=0),
                _note(method, stream=sid, dir="out", **extra),
            )
            seen.append(await raw.read())
            await raw.send({"jsonrpc": "2.0", "id": sid, "result": {"count": 1}})  # dropped
            seen.append(sid)

        async with anyio.create_task_group() as tg:
            tg.start_soon(peer)
            with pytest.raises(StreamError) as info:
                async for _ in call:
                    await anyio.sleep(0.05)  # let both messages arrive before the next take
        sid = seen[1]
        assert info.value.code == -32010
        assert info.value.message == (
            f"stream {sid} (out) on control: {method} is sent for input streams only"
        )
        assert info.value.data == {"stream": sid, "dir": "out"}
        assert seen[0] == _note("$/cancelRequest", id=sid)


async def test_end_with_dir_out_naming_none_of_ours_is_dropped() -> None:
    """The peer names its own request (whose output stream we produce): nothing of ours, dropped."""

    async def count_to(params: dict[str, Any]) -> dict[str, int]:
        for i in range(params["n"]):
            await current_streams().output.send(i)
        return {"count": params["n"]}

    async with _raw_peer() as (right, raw):
        right.on_request("countTo", count_to)
        opening = {"n": 1, "$/stream": {"out": {"window": 2}}}
        await raw.send(
            {"jsonrpc": "2.0", "id": 5, "method": "countTo", "params": opening},
            _note("$/stream/end", stream=5, dir="out"),
            _note("$/stream/error", stream=5, dir="out", error={"code": -32000, "message": "x"}),
        )
        assert await raw.read() == _note("$/stream/item", stream=5, dir="out", seq=0, value=0)
        assert await raw.read() == {"jsonrpc": "2.0", "id": 5, "result": {"count": 1}}


@pytest.mark.parametrize("bad", [0, 1025, True, 1.5, 2.0, "4"])
async def test_a_bad_output_window_is_refused_before_anything_is_sent(bad: Any) -> None:
    # A worker would answer -32602, or (a lax one) take 2.0 as 2: the parent decides, at once.
    from aspect_ipc import DataChannelOptions, ProcessManager
    from workers import namespace, python_worker

    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        for open_stream in (handle.stream, handle.stream_via_data):
            with pytest.raises(ValueError, match=r"^window must be an integer from 1 to 1024"):
                open_stream("countTo", {"n": 2}, window=bad)
        # Raised by the call itself, before a loop could await anything: nothing was sent.
        assert await handle.request("echo", [1]) == [1]
