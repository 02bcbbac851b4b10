"""A slow consumer bounds memory (issue 16, Reliability; PROTOCOL.md 13.3): a 1 GiB stream
through a consumer that reads slowly keeps the parent's RSS within 64 MiB of its start, in both
directions, with Python, Node and Go workers.

Each case runs in a parent process of its own (this file run as a script, below), so that the RSS
measured is that of a small program doing one stream, not of pytest and its earlier tests. It
reports its RSS at the start (the worker spawned, nothing streamed yet) and its peak (the kernel's
high-water mark, reset at the start; where the kernel does not allow the reset, the highest RSS
read after every 16 items), as one JSON line.

- ``out``: countTo, 1024 items of 1 MiB, read slowly: the worker waits for credit.
- ``in``: echoStream fed 1024 fresh 1 MiB items from a generator, its echoes read slowly: the
  worker's reading, and so the parent's input credit, follow the slow reader (WORKERS.md), so the
  generator must not be drained ahead of credit (``ahead``: items pulled from the generator and
  not yet read back, at most the two windows and the items in hand). sumStream takes numbers
  only, so echoStream is the one test method with binary input.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager

MIB = 1024 * 1024
ITEMS = 1024  # 1 GiB of items
WINDOW = 16  # the SDKs' default, on both sides
BOUND = 64 * MIB  # issue 16: within 64 MiB of the start
# The slow reader: ~2.5 ms per item, slower than any producer here.
PAUSE_EVERY, PAUSE = 8, 0.02


@pytest.mark.anyio
@pytest.mark.parametrize("direction", ["out", "in"])
async def test_a_slow_consumer_bounds_the_parents_memory(
    worker: dict[str, Any], namespace: str, direction: str
) -> None:
    command = [worker["executable"], *worker["args"]]
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, __file__, direction, namespace, json.dumps(command)],
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    report = json.loads(done.stdout.decode().splitlines()[-1])
    assert report["items"] == ITEMS and report["result"] == {"count": ITEMS}
    growth = report["peak"] - report["start"]
    assert growth <= BOUND, f"the parent grew by {growth / MIB:.1f} MiB: {report}"
    if direction == "in":
        assert report["ahead"] <= 2 * WINDOW + 3, f"the generator ran ahead: {report}"


# -- the parent process ----------------------------------------------------------------------


async def _parent(direction: str, namespace: str, command: list[str]) -> dict[str, Any]:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w",
            executable=command[0],
            args=command[1:],
            data_channel=DataChannelOptions(enabled=True),
        )
        pulled = 0

        def items() -> Any:
            nonlocal pulled
            for i in range(ITEMS):
                pulled += 1
                yield i.to_bytes(8, "big") + bytes(MIB - 8)  # a fresh 1 MiB each time

        if direction == "out":
            call = handle.stream_via_data("countTo", {"n": ITEMS, "size": MIB})
        else:
            call = handle.stream_via_data("echoStream", {}, input=items())
        start, reset = _rss(), _reset_peak()
        highest, ahead, taken, began = start, 0, 0, time.perf_counter()
        async for item in call:
            if len(item) != MIB or int.from_bytes(item[:8], "big") != taken:
                head = bytes(item[:8])
                raise AssertionError(f"item {taken}: {head!r}, {len(item)} B")
            del item
            taken += 1
            ahead = max(ahead, pulled - taken)
            if taken % PAUSE_EVERY == 0:
                await anyio.sleep(PAUSE)
            if taken % 16 == 0:
                highest = max(highest, _rss())
        return {
            "direction": direction,
            "items": taken,
            "result": call.result,
            "start": start,
            "peak": max(_peak(), highest) if reset else highest,
            "peak_source": "VmHWM" if reset else "sampled",
            "ahead": ahead,
            "seconds": round(time.perf_counter() - began, 2),
        }


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    try:  # Linux: "5" resets the peak RSS (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    direction, namespace, command = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(anyio.run(_parent, direction, namespace, command)))
