"""``spawn(setup=...)``: the parent's handlers are in place before the worker runs (real worker
processes).

A worker may call or notify the parent as soon as it runs; handlers registered on the handle
after ``spawn()`` returned came too late: the worker's first request got -32601 and its first
notification was dropped. And a pool's replacement workers had none of the handlers put on the
first ones. ``setup`` is called before each process starts, a pool's replacements included."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from aspect_ipc import ProcessHandle, ProcessManager, WorkerState
from aspect_ipc import sync as blocking
from workers import namespace

pytestmark = pytest.mark.anyio

_WORKER = """
import asyncio

from aspect_ipc.worker import Worker

worker = Worker()
first: asyncio.Future = None


async def call_at_once():
    await worker.notify("hello", {"at": "start"})
    first.set_result(await worker.request("config", None))


@worker.on("ready")
def at_once(info):  # the moment $/ready is written
    global first
    first = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().create_task(call_at_once())


@worker.control("first")
async def first_answer(params):
    return await first


@worker.control("ask")
async def ask(params):
    return await worker.request("who", None)


worker.run()
"""


def _worker(tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    return {"executable": sys.executable, "args": [str(script)]}


async def test_handlers_given_in_setup_answer_the_workers_first_calls(tmp_path: Path) -> None:
    hellos: list[Any] = []
    seen: list[tuple[WorkerState, int | None]] = []

    def setup(handle: ProcessHandle) -> None:
        seen.append((handle.state, handle.pid))
        handle.on_request("config", lambda params: {"threads": 4})
        handle.on_notification("hello", hellos.append)

    async with ProcessManager(namespace=namespace()) as manager:
        for round_ in range(3):  # a race, lost every time without setup: more than once
            handle = await manager.spawn(f"w{round_}", **_worker(tmp_path), setup=setup)
            assert await handle.request("first", None, timeout=20) == {"threads": 4}
    assert hellos == [{"at": "start"}] * 3
    assert all(pid is None for _, pid in seen)  # called before the process started


async def test_a_pools_replacement_workers_get_the_handlers_of_setup(tmp_path: Path) -> None:
    def setup(handle: ProcessHandle) -> None:
        handle.on_request("who", lambda params: f"handler of {handle.id}")

    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "p", 2, **_worker(tmp_path), setup=setup, max_requests_per_worker=2
        )
        answers = [await pool.request("ask", None, timeout=20) for _ in range(12)]
    # Six workers answered in turn (each recycled after two requests), every one with its own
    # handler: the replacements' calls were answered -32601 before.
    assert len(set(answers)) > 2
    assert all(answer.startswith("handler of p-") for answer in answers)


async def test_a_setup_that_raises_starts_nothing_and_an_async_one_is_refused(
    tmp_path: Path,
) -> None:
    def broken(handle: ProcessHandle) -> None:
        raise LookupError("no config")

    async def coroutine(handle: ProcessHandle) -> None:
        pass

    async with ProcessManager(namespace=namespace()) as manager:
        with pytest.raises(LookupError, match="no config"):
            await manager.spawn("w", **_worker(tmp_path), setup=broken)
        with pytest.raises(TypeError, match="is async"):
            await manager.spawn("w", **_worker(tmp_path), setup=coroutine)
        assert manager.handles == {}
        handle = await manager.spawn("w", **_worker(tmp_path))  # the id is free
        await handle.stop()


def test_the_blocking_api_takes_setup_too(tmp_path: Path) -> None:
    with blocking.ProcessManager(namespace=namespace()) as manager:
        handle = manager.spawn(
            "w",
            **_worker(tmp_path),
            setup=lambda h: h.on_request("config", lambda params: "from setup"),
        )
        assert handle.request("first", None, timeout=20) == "from setup"
