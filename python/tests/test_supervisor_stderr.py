"""A worker flooding stderr without newlines neither freezes the parent nor grows it.

The flood is ``ASPECT_IPC_STDERR_FLOOD_MB`` MiB (default 20; ``make soak``: 100), written by
the worker's launcher before it starts the SDK, while the parent serves another worker.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import anyio
import pytest

from aspect_ipc import ProcessEvent, ProcessManager, RequestTimeout, WorkerCrashed
from aspect_ipc._stderr import CONTINUED, MAX_LINE_BYTES, LineSplitter
from supervisor_kit import launcher, reset_rss_peak, rss_peak_kib
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
FLOOD_MB = int(os.environ.get("ASPECT_IPC_STDERR_FLOOD_MB", "20"))
ANSWER_BOUND = 0.5  # a request to another worker is answered within this, flood or not


async def test_a_stderr_flood_without_newlines(tmp_path: Path) -> None:
    size = FLOOD_MB * 1024 * 1024
    flooder = launcher(
        tmp_path, "flood", f"head -c {size} /dev/zero | tr '\\000' x >&2; echo ' end' >&2"
    )
    pieces: list[int] = []
    marked: list[bool] = []
    finished = anyio.Event()

    def on_output(event: ProcessEvent) -> None:
        assert event.line is not None
        if event.worker_id != "flood":
            return
        continues = event.info.get("continues", False)
        assert not event.line.endswith(CONTINUED)  # the worker's text only: the pieces join
        pieces.append(len(event.line.encode()))
        marked.append(continues)
        if not continues:
            finished.set()

    async with ProcessManager(namespace=namespace(), startup_timeout=120) as manager:
        manager.on("output", on_output)
        healthy = await manager.spawn("healthy", **python_worker())
        await healthy.request("echo", [0])
        reset_rss_peak()
        rss_before = rss_peak_kib()
        slowest = 0.0
        timeouts: list[float] = []
        started = time.monotonic()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(functools.partial(manager.spawn, "flood", **flooder))
            while not finished.is_set():
                sent = time.monotonic()
                assert await healthy.request("echo", [sent]) == [sent]
                slowest = max(slowest, time.monotonic() - sent)
                if not timeouts:  # a request's own timeout fires on time during the flood
                    with pytest.raises(RequestTimeout):
                        await healthy.request("sleep", {"seconds": 30, "tag": "t"}, timeout=0.3)
                    timeouts.append(time.monotonic() - sent)
                await anyio.sleep(0.01)
        flood_seconds = time.monotonic() - started
        growth_mib = (rss_peak_kib() - rss_before) / 1024
        assert await manager.get("flood").request("echo", ["after"]) == ["after"]
    print(
        f"\nstderr flood {FLOOD_MB} MiB: forwarded in {flood_seconds:.2f} s as {len(pieces)} "
        f"pieces; slowest answer from another worker {slowest * 1000:.0f} ms; a 0.3 s timeout "
        f"fired after {timeouts[0]:.2f} s; parent peak RSS +{growth_mib:.1f} MiB"
    )
    assert sum(pieces) == size + len(" end")
    assert all(length <= MAX_LINE_BYTES for length in pieces)
    assert all(marked[:-1]) and not marked[-1]  # every piece but the last says it continues
    assert slowest < ANSWER_BOUND
    assert timeouts[0] < 0.3 + ANSWER_BOUND
    assert growth_mib < 32, "the parent held the flood in memory"


def test_the_line_splitter_cuts_long_lines_between_characters() -> None:
    splitter = LineSplitter(limit=10)
    assert splitter.feed(b"abc\r\ndef") == [("abc", False)]
    assert splitter.feed(b"ghijklmnopqrstuvwxyz\nx" + "é".encode() * 6) == [
        ("defghijklm", True),
        ("nopqrstuvw", True),
        ("xyz", False),
        ("xéééé", True),  # 9 bytes: the 10th would have split an "é"
    ]
    assert splitter.pending() == "éé"
    assert splitter.finish() == [("éé", False)]
    assert splitter.finish() == []


async def test_the_line_naming_a_runtime_crash_stays_in_the_tail_after_a_long_dump() -> None:
    # A Go runtime's fatal error is followed by goroutine and register dumps far longer than
    # the tail: the crash message showed 20 lines of register values and not the cause.
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), stderr_tail_lines=5)
        await handle.request("stderr", {"text": "starting"})
        await handle.request("stderr", {"text": "fatal error: newosproc"})
        for n in range(30):
            await handle.request("stderr", {"text": f"r{n:02} 0x1ddc"})
        with pytest.raises(WorkerCrashed) as caught:
            await handle.request("crash", {"code": 2})
    lines = caught.value.stderr_tail.splitlines()
    assert lines[:2] == ["fatal error: newosproc", "[... 25 lines ...]"]
    assert lines[2:] == [f"r{n:02} 0x1ddc" for n in range(25, 30)]
