"""Codec hooks across languages (docs/codec-hooks.md): the numpy recipe end to end, and what a
parent that cannot encode a request says and does not send (real processes, sockets)."""

from __future__ import annotations

import datetime
import os
from typing import Any

import numpy as np
import pytest
from _load_kit import peak_rss, reset_peak, rss
from aspect_ipc import (
    CodecError,
    DataChannelOptions,
    MessagePackCodec,
    ProcessManager,
    RemoteError,
)

pytestmark = pytest.mark.anyio
MIB = 1024 * 1024


def encode_ndarray(value: Any) -> Any:
    """The recipe's encode hook: dtype, shape and the array's own buffer (sent uncopied)."""
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                # The buffer in C order: the array's own when it is C-contiguous already.
                "data": np.ascontiguousarray(value).data,
            }
        }
    raise TypeError(f"no conversion for {type(value).__name__}")


# 64 MiB of floats plus the message around them: above the 64 MiB default frame limit.
NUMPY_DATA = DataChannelOptions(
    enabled=True,
    codec=MessagePackCodec(encode_hook=encode_ndarray),
    max_frame_size=65 * MIB,
)


async def test_a_64_mib_float64_array_is_summed_by_the_worker(
    worker: dict[str, Any], namespace: str
) -> None:
    # 8 Mi float64: 64 MiB
    array = np.random.default_rng(16).standard_normal((2048, 4096))
    assert array.nbytes == 64 * MIB
    # In index order, as the workers add (np.sum is pairwise): equal to the last bit.
    expected = float(np.add.accumulate(array.ravel())[-1])
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=NUMPY_DATA)
        reset_peak(os.getpid())
        start = rss(os.getpid())
        result = await handle.request_via_data(
            "sumArray", {"array": array}, timeout=120
        )
        grown = peak_rss(os.getpid()) - start
        assert result == {"sum": expected, "count": array.size}
        # Written from the array's own buffer: a copy would add 64 MiB to the peak.
        assert grown < 32 * MIB, f"the parent grew by {grown / MIB:.1f} MiB"
        small = np.array([[0.5, 1.5], [2.0, -4.0]])
        assert await handle.request_via_data("sumArray", {"array": small}) == {
            "sum": 0.0,
            "count": 4,
        }


async def test_sum_array_names_the_wrong_member(
    worker: dict[str, Any], namespace: str
) -> None:
    cases = {
        "dtype": {"dtype": "<f4", "shape": [2], "data": bytes(8)},
        "shape": {"dtype": "<f8", "shape": [-1], "data": b""},
        "data": {"dtype": "<f8", "shape": [2, 3], "data": bytes(40)},
    }
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        for member, fields in cases.items():
            with pytest.raises(RemoteError) as info:
                await handle.request_via_data(
                    "sumArray", {"array": {"__ndarray__": fields}}
                )
            assert info.value.code == -32602, member
            assert f"array.__ndarray__.{member}" in info.value.message, (
                info.value.message
            )
        empty = {"__ndarray__": {"dtype": "<f8", "shape": [0, 5], "data": b""}}
        assert await handle.request_via_data("sumArray", {"array": empty}) == {
            "sum": 0.0,
            "count": 0,
        }


async def test_an_unencodable_request_names_the_place_and_sends_nothing(
    worker: dict[str, Any], namespace: str
) -> None:
    rows = [{"id": n, "when": n} for n in range(3)]
    rows.append({"id": 3, "when": datetime.datetime(2026, 11, 29)})
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=NUMPY_DATA)
        before = handle.stats().data
        assert before is not None
        with pytest.raises(CodecError) as info:
            await handle.request_via_data("echo", {"rows": rows})
        assert info.value.path == "$.params.rows[3].when"
        # The recipe's hook refused it: its message, and where.
        assert "encode hook failed on datetime at $.params.rows[3].when" in str(
            info.value
        )
        assert "no conversion for datetime" in str(info.value)
        with pytest.raises(CodecError) as info:  # control: JSON, no hook
            await handle.request("echo", {"rows": rows})
        assert info.value.path == "$.params.rows[3].when"
        assert (
            "cannot encode datetime at $.params.rows[3].when as JSON: convert it first"
            in (str(info.value))
        )
        with pytest.raises(CodecError) as info:
            await handle.request("echo", {"counts": {1: 2}})
        assert info.value.path == "$.params.counts"
        assert "map key 1 at $.params.counts is int: keys must be strings" in str(
            info.value
        )
        after = handle.stats().data
        assert after is not None
        assert (after.bytes_out, after.requests_sent) == (
            before.bytes_out,
            before.requests_sent,
        )
        # Nothing half-written: both channels still carry the next requests.
        assert await handle.request_via_data("echo", {"rows": rows[:3]}) == {
            "rows": rows[:3]
        }
        assert await handle.request("echo", {"counts": {"1": 2}}) == {
            "counts": {"1": 2}
        }
