"""Chaos: workers SIGKILLed at random under load, and consumers that stop reading.

Every request ends exactly once: with its own answer, or ``WorkerCrashed``, or
``RequestTimeout``; none hangs, none is lost, none gets another request's answer. A worker
that stops reading makes the parent's senders wait, not the parent's memory grow.
"""

from __future__ import annotations

import functools
import gc
import itertools
import os
import random
import signal
from typing import Any

import anyio
import pytest
from _load_kit import (
    DATA,
    KIB,
    LANGUAGES,
    MIB,
    Ledger,
    chaos_policy,
    figures,
    fleet_languages,
    load_scale,
    loop_exceptions,
    mib,
    peak_rss,
    reset_peak,
    settled_rss,
    spawn_fleet,
    volume,
)
from _procfs import stopped
from aspect_ipc import (
    ProcessEvent,
    ProcessHandle,
    ProcessManager,
    RequestTimeout,
    WorkerCrashed,
    WorkerState,
)
from conftest import WORKERS

pytestmark = pytest.mark.anyio


async def _running(handles: list[ProcessHandle]) -> None:
    with anyio.fail_after(120):  # a hang guard: a restart takes well under a second
        while any(h.state is not WorkerState.RUNNING for h in handles):
            await anyio.sleep(0.01)


async def _answers_on_both_channels(handle: ProcessHandle, marker: str) -> None:
    params = {"marker": marker, "payload": [marker, 1, 2.5]}
    assert await handle.request("echo", params) == params
    params["payload"] = [marker.encode(), 3]
    assert await handle.request_via_data("echo", params) == params


async def test_random_sigkills_under_load_lose_and_mix_up_nothing(
    namespace: str,
) -> None:
    scale = load_scale()
    seed = int(os.environ.get("ASPECT_IPC_CHAOS_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    ledger = Ledger()
    events: dict[str, list[ProcessEvent]] = {"crash": [], "restart": [], "failed": []}
    kills: list[str] = []
    sequence = itertools.count()
    killing_done = anyio.Event()

    async def lane(handle: ProcessHandle, n: int) -> None:
        # One request at a time per lane, again and again: the load never lets up.
        while not killing_done.is_set():
            marker = f"{handle.id}/{n}/{next(sequence)}"
            await ledger.call(handle, marker, n, scale.request_timeout)

    async def killer(handles: list[ProcessHandle]) -> None:
        killed: set[int] = set()
        for _ in range(scale.kills):
            await anyio.sleep(rng.uniform(0.02, 0.25))  # a random moment of the load
            while not (
                eligible := [
                    h
                    for h in handles
                    if h.state is WorkerState.RUNNING and h.pid and h.pid not in killed
                ]
            ):
                await anyio.sleep(0.01)
            victim = rng.choice(eligible)
            assert victim.pid is not None
            killed.add(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)
            kills.append(victim.id)
        killing_done.set()

    async def chaos(handles: list[ProcessHandle]) -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(killer, handles)
            for handle in handles:
                for n in range(scale.in_flight):
                    task_group.start_soon(lane, handle, n)

    gc.collect()
    objects_before = len(gc.get_objects())
    with loop_exceptions() as escaped:
        async with ProcessManager(
            namespace=namespace,
            request_timeout=scale.request_timeout,
            startup_timeout=120,
            restart_policy=chaos_policy(),
        ) as manager:
            for kind, seen in events.items():
                manager.on(kind, seen.append)
            handles = await spawn_fleet(manager, fleet_languages(scale.workers))
            base = settled_rss(os.getpid())
            reset_peak(os.getpid())
            await ledger.guard(scale.guard, functools.partial(chaos, handles))
            peak = peak_rss(os.getpid())
            await _running(handles)
            for handle in handles:
                await _answers_on_both_channels(handle, f"{handle.id}/after")
            restarts = sum(h.restarts for h in handles)
        del handles
    gc.collect()
    objects_after = len(gc.get_objects())

    counts = ledger.counts()
    figures(
        f"chaos ({scale.name}, seed {seed})",
        workers=scale.workers,
        lanes_per_worker=scale.in_flight,
        requests=len(ledger.started),
        kills=len(kills),
        restarts=restarts,
        succeeded=counts["ok"],
        worker_crashed=counts["crashed"],
        request_timeout=counts["timeout"],
        other_errors=counts["other"],
        wrong_answers=counts["wrong"],
        answered_twice=len(ledger.duplicates),
        lost=len(ledger.unanswered()),
        loop_exceptions=len(escaped),
        parent_rss_before=mib(base),
        parent_rss_peak=mib(peak),
        gc_objects_before_after=f"{objects_before}/{objects_after}",
    )
    context = f"(seed {seed})"
    assert ledger.others == [], f"{context} other errors: {ledger.others[:20]}"
    assert ledger.wrong == [], f"{context} wrong answers: {ledger.wrong[:20]}"
    assert ledger.duplicates == [], (
        f"{context} answered twice: {ledger.duplicates[:20]}"
    )
    assert ledger.unanswered() == [], f"{context} lost: {ledger.unanswered()[:20]}"
    assert set(counts) <= {"ok", "crashed", "timeout"}, context
    assert sum(counts.values()) == len(ledger.started), context
    # The kills hit requests in flight, and the load went on around them.
    assert counts["crashed"] >= 1 and counts["ok"] >= 1, context
    assert set(ledger.crash_signals) == {signal.SIGKILL}, context
    # Each kill is one crash and one restart; nobody gave up.
    assert len(kills) == scale.kills == restarts, context
    assert [e.signal for e in events["crash"]] == [signal.SIGKILL] * len(kills), context
    assert len(events["restart"]) == len(kills) and events["failed"] == [], context
    per_round = volume(range(scale.in_flight)) * scale.workers
    assert peak - base <= 4 * per_round + 128 * MIB, context
    assert escaped == [], f"errors escaped to the event loop {context}: {escaped[:5]}"
    # What the failed requests held (frames, params) is not kept after they ended.
    assert objects_after - objects_before <= 1000 + 100 * scale.kills, context


async def test_a_crash_gives_each_pending_request_an_error_of_its_own(
    namespace: str,
) -> None:
    """The requests pending at a crash all fail with WorkerCrashed, each with a traceback
    of its own: one error object shared by all would collect every caller's frames (and
    the params they hold) and keep them for as long as anyone keeps the error."""
    command = WORKERS["go"]  # the parent's side is under test: the quickest worker
    caught: list[tuple[WorkerCrashed, int]] = []
    count = 200

    async def call(handle: ProcessHandle, n: int) -> None:
        method = handle.request_via_data if n % 2 else handle.request
        try:
            await method("sleep", {"seconds": 60, "tag": f"pending/{n}"})
        except WorkerCrashed as exc:
            caught.append((exc, _depth(exc)))

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", executable=command[0], args=command[1:], data_channel=DATA
        )
        async with anyio.create_task_group() as task_group:
            for n in range(count):
                task_group.start_soon(call, handle, n)
            # Sent after all of them on each channel: once answered, they are all pending.
            assert await handle.request("add", {"a": 1, "b": 1}) == 2
            assert await handle.request_via_data("add", {"a": 1, "b": 1}) == 2
            assert handle.pid is not None
            os.kill(handle.pid, signal.SIGKILL)
    assert len(caught) == count
    assert {exc.signal for exc, _ in caught} == {signal.SIGKILL}
    depths = sorted(depth for _, depth in caught)
    assert depths[-1] <= 40, (
        f"tracebacks carry other callers' frames: depths {depths[-5:]}"
    )


def _depth(error: BaseException) -> int:
    frames, traceback = 0, error.__traceback__
    while traceback is not None:
        frames, traceback = frames + 1, traceback.tb_next
    return frames


# -- slow consumers ------------------------------------------------------------------------

SENDERS = 16  # concurrent senders per blocked worker and channel
REPEATS = 6  # requests each sender makes, one after the other
BLOB = bytes(range(256)) * (4 * KIB)  # 1 MiB, on the data channel
TEXT = "slow consumer " * (256 * KIB // 14)  # ~256 KiB, on control (JSON)


async def _flood(
    handle: ProcessHandle, ledger: Ledger, timeout: float, repeats: int = REPEATS
) -> None:
    """SENDERS concurrent senders per channel, ``repeats`` large requests each."""

    async def sender(via: str, index: int) -> None:
        for repeat in range(repeats):
            marker = f"{handle.id}/{via}/{index}/{repeat}"
            params = {"marker": marker, "payload": BLOB if via == "data" else TEXT}
            await ledger.echo(handle, via, params, timeout)

    async with anyio.create_task_group() as task_group:
        for via in ("data", "control"):
            for index in range(SENDERS):
                task_group.start_soon(sender, via, index)


async def test_frozen_workers_make_senders_wait_not_the_parent_grow(
    namespace: str,
) -> None:
    ledger = Ledger()
    healthy_answers = 0

    async def keep_working(handle: ProcessHandle) -> None:
        nonlocal healthy_answers
        for n in range(20):
            await _answers_on_both_channels(handle, f"{handle.id}/{n}")
            healthy_answers += 1

    with loop_exceptions() as escaped:
        async with ProcessManager(
            namespace=namespace, shutdown_grace=0.5, startup_timeout=60
        ) as manager:
            frozen = await spawn_fleet(manager, LANGUAGES, prefix="frozen")
            healthy = await spawn_fleet(manager, LANGUAGES, prefix="healthy")
            async with anyio.create_task_group() as task_group:
                for handle in frozen:  # stops reading both channels, for good
                    task_group.start_soon(_freeze, handle)
            base = settled_rss(os.getpid())
            reset_peak(os.getpid())

            async def flood_and_work() -> None:
                async with anyio.create_task_group() as task_group:
                    for handle in frozen:
                        task_group.start_soon(_flood, handle, ledger, 0.25)
                    for handle in healthy:
                        task_group.start_soon(keep_working, handle)

            await ledger.guard(60, flood_and_work)
            peak = peak_rss(os.getpid())
            for handle in frozen:
                await handle.stop()
                assert handle.state is WorkerState.STOPPED
                assert handle.signal in (signal.SIGTERM, signal.SIGKILL)
            for handle in healthy:
                await _answers_on_both_channels(handle, f"{handle.id}/after")

    counts = ledger.counts()
    requests = len(frozen) * 2 * SENDERS * REPEATS
    blocked_at_once = len(frozen) * SENDERS * (len(BLOB) + len(TEXT))
    attempted = blocked_at_once * REPEATS
    figures(
        "slow consumer (frozen python, node, go workers)",
        requests=requests,
        request_timeout=counts["timeout"],
        answered=counts["ok"],
        other_errors=counts["other"],
        healthy_answers=healthy_answers,
        loop_exceptions=len(escaped),
        payload_attempted=mib(attempted),
        payload_blocked_at_once=mib(blocked_at_once),
        parent_rss_before=mib(base),
        parent_rss_peak=mib(peak),
    )
    assert ledger.others == [], ledger.others[:20]
    assert counts == {"timeout": requests}
    assert healthy_answers == 20 * len(healthy)
    # Waiting senders hold their own request (and at most its encoded frame); nothing piles
    # up behind them. Buffering what was attempted would cost `attempted`, far above this.
    bound = blocked_at_once + 64 * MIB
    assert bound < attempted / 2
    assert peak - base <= bound, f"the parent grew by {mib(peak - base)}"
    assert escaped == [], f"errors escaped to the event loop: {escaped[:5]}"


async def _freeze(handle: ProcessHandle) -> None:
    with pytest.raises(RequestTimeout):
        await handle.request("freeze", timeout=0.5)
    # Until a probe goes unanswered the worker may not be frozen yet (30 s: a hang guard).
    with anyio.fail_after(30):
        while True:
            try:
                await handle.request("info", timeout=0.5)
            except RequestTimeout:
                return


async def test_a_paused_worker_resumes_with_both_channels_intact(
    worker: dict[str, Any], namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP makes the worker a consumer that stops reading mid-stream; the senders' timeouts
    end while their large frames are half-written. After SIGCONT every frame the worker reads
    must still be whole: both channels keep working."""
    ledger = Ledger()
    async with ProcessManager(namespace=namespace, shutdown_grace=1) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        assert handle.pid is not None
        os.kill(handle.pid, signal.SIGSTOP)
        try:
            with anyio.fail_after(10):  # a hang guard
                while not stopped(handle.pid):
                    await anyio.sleep(0.001)
            await ledger.guard(30, functools.partial(_flood, handle, ledger, 0.3, 2))
        finally:
            os.kill(handle.pid, signal.SIGCONT)
        assert ledger.others == [], ledger.others[:20]
        assert ledger.counts() == {"timeout": 2 * SENDERS * 2}
        after = Ledger()  # two requests per channel, at once; 5 s: a hang guard
        async with anyio.create_task_group() as task_group:
            for via, n in itertools.product(("data", "control"), range(2)):
                marker = f"resumed/{via}/{n}"
                payload = marker.encode() if via == "data" else marker
                params = {"marker": marker, "payload": [payload]}
                task_group.start_soon(after.echo, handle, via, params, 5)
        lost = {m: kind for m, kind in sorted(after.outcomes.items()) if kind != "ok"}
        assert lost == {}, f"requests after SIGCONT not answered: {lost}"
        assert handle.restarts == 0 and handle.state is WorkerState.RUNNING
    # The worker never saw a broken frame or line (it would have answered a parse error).
    complaints = [
        r.getMessage() for r in caplog.records if "reported an error" in r.message
    ]
    assert complaints == []
