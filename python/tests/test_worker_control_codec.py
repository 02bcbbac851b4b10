"""A Python worker's control channel takes a codec with hooks, as its data channel does and as
the Node and Go SDKs' control channels do (``Worker(control_codec=JsonCodec(...))``; a real
worker process). Its control channel had a plain ``JsonCodec`` and no way to set one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aspect_ipc import ProcessManager
from workers import namespace

pytestmark = pytest.mark.anyio

_WORKER = """
from aspect_ipc import JsonCodec
from aspect_ipc.worker import Worker


def encode(value):
    if isinstance(value, (set, frozenset)):
        return {"$set": sorted(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode(value):
    return set(value["$set"]) if set(value) == {"$set"} else value


worker = Worker(control_codec=JsonCodec(encode_hook=encode, decode_hook=decode))


@worker.control("union")
def union(params):
    return params["a"] | params["b"]  # two sets, decoded by the hook; a set, encoded by it


worker.run()
"""


async def test_a_python_workers_control_codec_hooks_convert_both_ways(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", executable=sys.executable, args=[str(script)])
        params = {"a": {"$set": [3, 1]}, "b": {"$set": [2, 3]}}
        assert await handle.request("union", params) == {"$set": [1, 2, 3]}
