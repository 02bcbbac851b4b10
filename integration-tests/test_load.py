"""Load: a fleet of Python, Node and Go workers, each with many requests in flight on both
channels at once, payloads from small dicts to 1 MiB: every request gets its own answer,
and memory (parent and workers) stays bounded round after round.

``ASPECT_IPC_LOAD_SCALE=full`` (``make soak``) runs the issue's 32 workers x 1000 in flight.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable

import anyio
import pytest
from _load_kit import (
    LANGUAGES,
    MIB,
    Ledger,
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
from aspect_ipc import ProcessHandle, ProcessManager

pytestmark = pytest.mark.anyio


async def _round(
    handles: list[ProcessHandle],
    ledger: Ledger,
    number: int,
    in_flight: int,
    timeout: float,
) -> None:
    async with anyio.create_task_group() as task_group:
        for handle in handles:
            for n in range(in_flight):
                marker = f"{handle.id}/{number}/{n}"
                task_group.start_soon(ledger.call, handle, marker, n, timeout)


async def test_every_request_gets_its_own_answer_and_memory_stays_bounded(
    namespace: str,
) -> None:
    scale = load_scale()
    ledger = Ledger()
    per_worker = volume(range(scale.in_flight))  # payload bytes in flight per worker
    per_round = per_worker * scale.workers
    with loop_exceptions() as escaped:
        async with ProcessManager(
            namespace=namespace,
            request_timeout=scale.request_timeout,
            startup_timeout=120,
        ) as manager:
            handles = await spawn_fleet(manager, fleet_languages(scale.workers))
            pids = {"parent": os.getpid()} | {h.id: h.pid for h in handles if h.pid}
            before = {name: settled_rss(pid) for name, pid in pids.items()}
            after: list[dict[str, int]] = []
            peaks: list[dict[str, int]] = []
            objects: list[int] = []
            for number in range(scale.rounds):
                for pid in pids.values():
                    reset_peak(pid)
                body = functools.partial(
                    _round,
                    handles,
                    ledger,
                    number,
                    scale.in_flight,
                    scale.request_timeout,
                )
                await ledger.guard(scale.guard, body)
                peaks.append({name: peak_rss(pid) for name, pid in pids.items()})
                after.append({name: settled_rss(pid) for name, pid in pids.items()})
                objects.append(len(gc.get_objects()))
            assert [h.restarts for h in handles] == [0] * len(handles)
            assert {h.id: h.pid for h in handles} == {
                k: v for k, v in pids.items() if k != "parent"
            }

    counts = ledger.counts()
    requests = scale.rounds * scale.workers * scale.in_flight
    workers = [name for name in pids if name != "parent"]

    def by_language(value: Callable[[str], int]) -> str:
        return " ".join(
            f"{language}:{mib(max(value(w) for w in workers if w.endswith(language)))}"
            for language in LANGUAGES
        )

    worker_peak = by_language(lambda w: max(p[w] for p in peaks) - before[w])
    worker_drift = by_language(lambda w: after[-1][w] - after[1][w])
    figures(
        f"load ({scale.name})",
        workers=scale.workers,
        in_flight_per_worker=scale.in_flight,
        rounds=scale.rounds,
        requests=requests,
        answered_ok=counts["ok"],
        wrong=len(ledger.wrong),
        failed=len(ledger.others),
        lost=len(ledger.unanswered()),
        peak_in_flight=ledger.peak_in_flight,
        payload_per_round=mib(per_round),
        parent_rss_before=mib(before["parent"]),
        parent_rss_peak=mib(max(p["parent"] for p in peaks)),
        parent_rss_after_rounds="/".join(mib(a["parent"]) for a in after),
        gc_objects_after_rounds="/".join(map(str, objects)),
        worker_rss_before_max=mib(max(before[w] for w in workers)),
        worker_rss_peak_growth_max=f"[{worker_peak}]",
        worker_rss_drift_max=f"[{worker_drift}]",
        loop_exceptions=len(escaped),
    )
    assert ledger.wrong == [] and ledger.duplicates == [] and ledger.others == []
    assert counts == {"ok": requests}, f"lost: {ledger.unanswered()[:50]}"
    # Every request of a round was in flight at once (the test does what it says).
    assert ledger.peak_in_flight == scale.workers * scale.in_flight
    # The parent holds each payload in flight a few times at most (params, frame, answer)...
    for peak in peaks:
        assert peak["parent"] - before["parent"] <= 4 * per_round + 128 * MIB
    # ...and gives it back: once the first round has warmed the allocator up, later
    # identical rounds do not leave more behind.
    assert after[-1]["parent"] - after[1]["parent"] <= per_round // 4 + 16 * MIB
    # No Python object is left behind per request (a leak of one per request shows here).
    assert objects[-1] - objects[1] <= scale.workers * scale.in_flight // 10
    for name in workers:
        assert max(p[name] for p in peaks) - before[name] <= 4 * per_worker + 160 * MIB
        assert after[-1][name] - after[1][name] <= per_worker + 48 * MIB
    assert escaped == [], f"errors escaped to the event loop: {escaped[:5]}"
