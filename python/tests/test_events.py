"""Process events: the kinds, the wildcard, ``manager.events()``, async callbacks (real workers),
and a slow subscriber's bounded buffer (in memory)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aspect_ipc import ChannelClosed, EventKind, ProcessEvent, ProcessManager, RestartPolicy
from aspect_ipc._events import Listeners
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


async def _until(predicate: Any) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while not predicate():
            await anyio.sleep(0.01)


async def test_unknown_kinds_are_refused_with_the_list() -> None:
    manager = ProcessManager(namespace=namespace())
    for bad in ("crashed", "stopped", "", "ready "):
        with pytest.raises(ValueError, match=r"unknown event kind .*'crash'.*'\*' for all"):
            manager.on(bad, print)
        with pytest.raises(ValueError, match="unknown event kind"):
            manager.events(bad)
    with pytest.raises(ValueError, match="buffer"):
        manager.events(buffer=0)
    manager.on("crash", print)
    manager.on(EventKind.CRASH, print)
    manager.on("*", print)
    assert [kind.value for kind in EventKind] == [
        "spawn",
        "ready",
        "output",
        "exit",
        "stop",
        "crash",
        "restart",
        "failed",
    ]


async def test_wildcard_and_events_iterate_a_whole_life_in_order() -> None:
    seen: list[ProcessEvent] = []
    streamed: list[ProcessEvent] = []

    async def consume(events: Any) -> None:
        async for event in events:  # ends when the manager closes
            streamed.append(event)

    manager = ProcessManager(namespace=namespace())
    async with anyio.create_task_group() as task_group, manager:
        manager.on("*", seen.append)
        task_group.start_soon(consume, manager.events())
        handle = await manager.spawn("ev-1", **python_worker())
        handle_seen: list[ProcessEvent] = []
        handle.on("*", handle_seen.append)
        await handle.request("stderr", {"text": "hello"})
        await _until(lambda: any(e.kind is EventKind.OUTPUT for e in seen))
        await handle.stop()
        assert [e.kind for e in handle_seen] == ["output", "exit", "stop"]
    kinds = [e.kind for e in seen]
    assert kinds == ["spawn", "ready", "output", "exit", "stop"]
    assert all(isinstance(k, EventKind) for k in kinds)
    assert [e.kind for e in streamed] == kinds  # the iteration ended with the manager
    assert seen[-1].info == {"requested": True} and seen[-2].exit_code == 0
    assert all(e.dropped == 0 for e in streamed)


async def test_events_filtered_by_kind_and_crash_restart_failed() -> None:
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.01)
    got: list[ProcessEvent] = []
    manager = ProcessManager(namespace=namespace(), restart_policy=policy)
    async with manager, manager.events("crash", "restart", "failed") as events:
        handle = await manager.spawn("ev-2", **python_worker())
        with pytest.raises(ChannelClosed):  # WorkerCrashed, as a rule
            await handle.request("crash", {"code": 3})
        await _until(lambda: handle.restarts == 1 and handle.state.value == "running")
        with pytest.raises(ChannelClosed):
            await handle.request("crash", {"code": 4})
        async for event in events:
            got.append(event)
            if event.kind is EventKind.FAILED:
                break
    assert [e.kind for e in got] == ["crash", "restart", "crash", "failed"]
    assert (got[0].exit_code, got[2].exit_code) == (3, 4)
    assert got[1].attempt == 1


async def test_async_callbacks_are_awaited_and_their_failures_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    awaited: list[str] = []

    async def slow(event: ProcessEvent) -> None:
        await anyio.sleep(0.05)
        awaited.append(f"manager {event.kind}")

    async def on_handle(event: ProcessEvent) -> None:
        await anyio.lowlevel.checkpoint()
        awaited.append(f"handle {event.kind}")

    async def broken(event: ProcessEvent) -> None:
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("callback bug")

    caplog.set_level(logging.ERROR, logger="aspect_ipc.manager")
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("ready", slow)
        manager.on("stop", slow)  # still running as the manager closes: awaited, not dropped
        manager.on("spawn", broken)
        handle = await manager.spawn("ev-3", **python_worker())
        handle.on("exit", on_handle)
        await _until(lambda: "manager ready" in awaited)
    assert awaited == ["manager ready", "handle exit", "manager stop"]
    failures = [r for r in caplog.records if "callback" in r.getMessage()]
    assert len(failures) == 1 and "spawn event callback" in failures[0].getMessage()
    assert failures[0].exc_info is not None and "callback bug" in str(failures[0].exc_info[1])


async def test_an_async_callback_without_a_manager_is_refused_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def callback(event: ProcessEvent) -> None:
        raise AssertionError("never run")

    listeners = Listeners()
    listeners.add("spawn", callback)
    caplog.set_level(logging.ERROR, logger="aspect_ipc.manager")
    listeners.emit(ProcessEvent(EventKind.SPAWN, "w"))
    assert "is async and no open ProcessManager can await it" in caplog.text


async def test_a_subscriber_that_falls_behind_loses_the_oldest_and_is_told() -> None:
    listeners = Listeners()
    stream = listeners.subscribe((), buffer=3)
    for n in range(10):
        listeners.emit(ProcessEvent(EventKind.OUTPUT, "w", line=str(n)))
    first = await stream.__anext__()
    assert (first.line, first.dropped) == ("7", 7)  # 0..6 dropped, told on the next one
    rest = [await stream.__anext__() for _ in range(2)]
    assert [(e.line, e.dropped) for e in rest] == [("8", 0), ("9", 0)]
    listeners.emit(ProcessEvent(EventKind.OUTPUT, "w", line="10"))
    await listeners.close(grace=1.0)
    assert [e.line async for e in stream] == ["10"]  # what was buffered, then the end


async def test_a_dropped_iterator_is_unsubscribed() -> None:
    listeners = Listeners()
    listeners.subscribe((), buffer=3)  # never kept: garbage at once
    stream = listeners.subscribe(("exit",), buffer=3)
    assert len(listeners._streams) == 1
    listeners.emit(ProcessEvent(EventKind.SPAWN, "w"))
    await stream.aclose()
    listeners.emit(ProcessEvent(EventKind.EXIT, "w"))
    assert [e async for e in stream] == []


async def test_off_removes_what_on_added() -> None:
    # There was no way to remove a callback: each on() was kept, and called, for the
    # manager's life (the leaks drill: +1,035 objects per 1,000 registrations).
    seen: list[str] = []

    def note(event: ProcessEvent) -> None:
        seen.append(f"note {event.kind}")

    def per_worker(event: ProcessEvent) -> None:
        seen.append(f"worker {event.kind}")

    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", note)
        manager.on("output", note)  # twice: called twice, removed one at a time
        handle = await manager.spawn("off-1", **python_worker())
        handle.on("output", per_worker)
        await handle.request("stderr", {"text": "one"})
        await _until(lambda: len(seen) == 3)
        manager.off("output", note)
        handle.off("output", per_worker)
        handle.off("output", per_worker)  # no longer registered: nothing happens
        await handle.request("stderr", {"text": "two"})
        await _until(lambda: len(seen) == 4)
        manager.off("output", note)
        await handle.request("stderr", {"text": "three"})
        await handle.request("echo", [])
        with pytest.raises(ValueError):
            manager.off("no such kind", note)
    assert sorted(seen) == ["note output"] * 3 + ["worker output"], seen
