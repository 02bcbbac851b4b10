"""Shared tools of the load, chaos and soak tests: scales, payloads, fleets, the ledger
of requests, memory readings and the process census. Real processes only; no timing is
asserted anywhere: a deadline here is a hang guard whose failure lists what hung."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import _procfs
import anyio
import pytest
import sniffio
from aspect_ipc import (
    DataChannelOptions,
    IpcError,
    ProcessHandle,
    ProcessManager,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
)
from conftest import WORKERS

KIB = 1024
MIB = 1024 * KIB
DATA = DataChannelOptions(enabled=True)
LANGUAGES = sorted(WORKERS)


# -- scales -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How hard the load and chaos tests push (``ASPECT_IPC_LOAD_SCALE``)."""

    name: str
    workers: int
    in_flight: int  # concurrent requests per worker
    rounds: int  # identical load rounds (the first warms up; the leak check compares the rest)
    kills: int  # SIGKILLs of the chaos test
    request_timeout: float
    guard: float  # seconds after which still-pending requests count as hung


def load_scale() -> Scale:
    """``short`` (default, for ``make test``) or ``full`` (the issue's 32 x 1000)."""
    name = os.environ.get("ASPECT_IPC_LOAD_SCALE", "short")
    if name == "short":
        return Scale(name, 6, 200, 4, 8, 60.0, 180.0)
    if name == "full":
        return Scale(name, 32, 1000, 3, 96, 600.0, 1200.0)
    raise ValueError(f"ASPECT_IPC_LOAD_SCALE must be 'short' or 'full', not {name!r}")


def soak_cycles() -> int:
    """Spawn/request/stop cycles of the soak test (``ASPECT_IPC_SOAK_CYCLES``)."""
    return int(os.environ.get("ASPECT_IPC_SOAK_CYCLES", "6"))


# -- payloads ------------------------------------------------------------------------------

_BASE = random.Random(9).randbytes(MIB)
_BASE_TEXT = _BASE.hex()


def via_of(n: int) -> str:
    """Even request numbers go on the data channel, odd ones on control."""
    return "data" if n % 2 == 0 else "control"


def payload_size(n: int) -> int:
    """Bytes of payload of request number ``n`` (0 for a small structured value).

    Per 200 requests: 1 x 1 MiB binary, 10 x 64 KiB binary and 40 x 4 KiB binary on the data
    channel; 10 x 64 KiB and 50 x 4 KiB text on control (JSON has no binary, and a control
    line is at most 1 MiB); the other 89 are small dicts.
    """
    if n % 2 == 0:
        if n % 200 == 0:
            return MIB
        if n % 20 == 10:
            return 64 * KIB
        return 4 * KIB if n % 4 == 2 else 0
    if n % 20 == 1:
        return 64 * KIB
    return 4 * KIB if n % 4 == 3 else 0


def make_params(marker: str, n: int) -> dict[str, Any]:
    """Unique params for request ``n``: the marker, and a payload stamped with it at both
    ends, so that a mixed-up or stale buffer shows as a wrong answer, not a right one."""
    size = payload_size(n)
    if size == 0:
        value: Any = {"n": n, "s": "héllo ✓", "f": 0.5, "l": [1, -2, 2**40], "z": None}
    else:
        stamp = marker.encode().ljust(40, b".")
        length = size - 2 * len(stamp)
        if via_of(n) == "data":
            value = stamp + _BASE[:length] + stamp
        else:
            value = stamp.decode() + _BASE_TEXT[:length] + stamp.decode()
    return {"marker": marker, "payload": value}


def volume(numbers: Iterable[int]) -> int:
    """Payload bytes of the requests numbered ``numbers``."""
    return sum(payload_size(n) for n in numbers)


# -- fleets --------------------------------------------------------------------------------


def require_built_workers() -> None:
    for language, command in WORKERS.items():
        if not os.path.exists(command[-1]):
            pytest.fail(
                f"the {language} test worker is not built ({command[-1]}): make build"
            )


def fleet_languages(count: int) -> list[str]:
    return [LANGUAGES[i % len(LANGUAGES)] for i in range(count)]


async def spawn_fleet(
    manager: ProcessManager, languages: list[str], *, prefix: str = "w"
) -> list[ProcessHandle]:
    """Spawn one worker per entry of ``languages``, concurrently, all with a data channel."""
    require_built_workers()
    handles: dict[int, ProcessHandle] = {}

    async def spawn(index: int, language: str) -> None:
        command = WORKERS[language]
        handles[index] = await manager.spawn(
            f"{prefix}{index}-{language}",
            executable=command[0],
            args=command[1:],
            data_channel=DATA,
        )

    async with anyio.create_task_group() as task_group:
        for index, language in enumerate(languages):
            task_group.start_soon(spawn, index, language)
    return [handles[i] for i in range(len(languages))]


def chaos_policy() -> RestartPolicy:
    """Restart every time (the chaos decides how often), quickly."""
    return RestartPolicy(
        enabled=True,
        max_restarts=10**6,
        backoff=0.02,
        max_backoff=0.2,
        reset_after=3600,
    )


# -- the ledger ----------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every request issued, and the one thing that became of it."""

    started: set[str] = field(default_factory=set)
    outcomes: dict[str, str] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    crash_signals: Counter[int | None] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0

    async def call(
        self, handle: ProcessHandle, marker: str, n: int, timeout: float
    ) -> None:
        """Send request ``n`` (echo) to ``handle`` and record what became of it."""
        await self.echo(handle, via_of(n), make_params(marker, n), timeout)

    async def echo(
        self, handle: ProcessHandle, via: str, params: dict[str, Any], timeout: float
    ) -> None:
        """Send ``params`` (with a unique ``marker``) to ``echo`` on ``via``; record."""
        marker = params["marker"]
        assert marker not in self.started, f"the test reused marker {marker}"
        self.started.add(marker)
        method = handle.request_via_data if via == "data" else handle.request
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            result = await method("echo", params, timeout=timeout)
        except WorkerCrashed as exc:
            self.crash_signals[exc.signal] += 1
            self._record(marker, "crashed")
        except RequestTimeout:
            self._record(marker, "timeout")
        except IpcError as exc:  # anything else fails the test outright
            self.others.append(f"{marker}: {type(exc).__name__}: {exc}")
            self._record(marker, "other")
        else:
            if result == params:
                self._record(marker, "ok")
            else:
                got = result.get("marker") if isinstance(result, dict) else None
                self.wrong.append(f"{marker}: answered with marker {got!r}")
                self._record(marker, "wrong")
        finally:
            self.in_flight -= 1

    def _record(self, marker: str, kind: str) -> None:
        if marker in self.outcomes:
            self.duplicates.append(f"{marker}: {self.outcomes[marker]} then {kind}")
        else:
            self.outcomes[marker] = kind

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def unanswered(self) -> list[str]:
        return sorted(self.started - self.outcomes.keys())

    async def guard(self, seconds: float, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body``; if it is still running after ``seconds``, fail listing the hung
        requests (a hang is a failure; the guard is far above any expected duration)."""
        with anyio.move_on_after(seconds) as scope:
            await body()
        if scope.cancelled_caught:
            hung = self.unanswered()
            pytest.fail(
                f"{len(hung)} of {len(self.started)} requests were still unanswered after "
                f"the {seconds:g} s hang guard (each had its own timeout): {hung[:50]}"
            )


# -- the event loop -----------------------------------------------------------------------


@contextlib.contextmanager
def loop_exceptions() -> Iterator[list[str]]:
    """Collect what reaches the asyncio loop's exception handler meanwhile ("Exception in
    callback", "Task was destroyed but it is pending"...): each one is something the
    library let escape. Trio has no such handler (its errors propagate)."""
    found: list[str] = []
    if sniffio.current_async_library() != "asyncio":
        yield found
        return
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def record(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        cause = f" {type(error).__name__}: {error}" if error is not None else ""
        found.append(f"{context.get('message')}{cause} ({context.get('handle')!r})")

    loop.set_exception_handler(record)
    try:
        yield found
    finally:
        loop.set_exception_handler(previous)


# -- memory --------------------------------------------------------------------------------


def _status_kib(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise LookupError(f"no {name} in /proc/{pid}/status")


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS)."""
    return _status_kib(pid, "VmRSS") * KIB


def peak_rss(pid: int) -> int:
    """Peak resident set size of ``pid`` since the last :func:`reset_peak` (VmHWM)."""
    return _status_kib(pid, "VmHWM") * KIB


def reset_peak(pid: int) -> None:
    """Start a new peak for ``pid`` (``5`` to clear_refs resets VmHWM to VmRSS)."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def settled_rss(pid: int) -> int:
    """The parent's RSS after a full collection (what is really still referenced)."""
    if pid == os.getpid():
        gc.collect()
    return rss(pid)


def mib(size: float) -> str:
    return f"{size / MIB:.1f} MiB"


# -- the census of the soak test ---------------------------------------------------------


def child_processes() -> tuple[set[int], set[int]]:
    """This process's children: (live, zombies)."""
    return _procfs.child_processes(os.getpid())


def async_tasks() -> int:
    """Tasks alive in the running event loop (asyncio) or task tree (trio)."""
    if sniffio.current_async_library() == "asyncio":
        return len(asyncio.all_tasks())
    import trio

    def tree(task: trio.lowlevel.Task) -> int:
        return 1 + sum(
            tree(child)
            for nursery in task.child_nurseries
            for child in nursery.child_tasks
        )

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return tree(root)


def census(namespace: str) -> dict[str, int]:
    """What a leak would make grow: fds, threads, tasks, children, socket files."""
    live, zombies = child_processes()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
        "tasks": async_tasks(),
        "children": len(live),
        "zombies": len(zombies),
        "socket_files": len([p for p in os.listdir("/tmp") if p.startswith(namespace)]),
    }


async def settled_census(namespace: str, expected: dict[str, int]) -> dict[str, int]:
    """The census once it equals ``expected``, or after a 10 s hang guard (a thread or a
    child that is ending is not a leak; one still there after 10 s is)."""
    with anyio.move_on_after(10):
        while census(namespace) != expected:
            await anyio.sleep(0.02)
    return census(namespace)


def figures(title: str, **values: Any) -> None:
    """Print one line of figures (shown by ``make soak``, which runs pytest with -s)."""
    text = " ".join(f"{key}={value}" for key, value in values.items())
    print(f"\n[figures] {title}: {text}", flush=True)
