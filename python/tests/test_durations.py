"""Every duration the API takes is refused where it is given when it can never be right, with a
ValueError that names it, and works at the edges it accepts (found by a drill on time: each
of these used to fail later, deep inside, or silently mean something else)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aspect_ipc import (
    DataChannelOptions,
    HealthCheck,
    IpcError,
    ProcessManager,
    RestartPolicy,
    WorkerState,
    sync,
)
from aspect_ipc.worker import Worker
from workers import namespace, python_worker

HUGE = 10**400  # an int no float can hold: it used to pass the checks, then raise OverflowError


def test_the_backoff_of_any_restart_is_a_number_of_seconds() -> None:
    # The 1,025th restart in a row raised OverflowError in the supervisor, which took the whole
    # manager down with it.
    policy = RestartPolicy(backoff=1.0, max_backoff=30.0, max_restarts=10**6)
    assert [policy.delay(n) for n in (1, 2, 3, 6, 1024, 1025, 10**6)] == [
        1.0, 2.0, 4.0, 30.0, 30.0, 30.0, 30.0
    ]  # fmt: skip
    assert RestartPolicy(backoff=0.0).delay(5000) == 0.0
    assert RestartPolicy(backoff=1e-300, max_backoff=7.0).delay(10**9) == 7.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: RestartPolicy(backoff=HUGE),
        lambda: RestartPolicy(reset_after=HUGE),
        lambda: HealthCheck(interval=HUGE),
        lambda: HealthCheck(timeout=HUGE),
        lambda: ProcessManager(request_timeout=HUGE),
        lambda: ProcessManager(shutdown_grace=HUGE),
        lambda: ProcessManager(startup_timeout=None),  # type: ignore[arg-type]
        lambda: ProcessManager(shutdown_grace=None),  # type: ignore[arg-type]
        lambda: Worker(hello_timeout=math.nan),
        lambda: Worker(hello_timeout="5"),  # type: ignore[arg-type]
        lambda: Worker(hello_timeout=None),  # type: ignore[arg-type]
        lambda: Worker(hello_timeout=-1),
        lambda: Worker(shutdown_timeout=math.nan),
        lambda: Worker(shutdown_timeout=-1),
        lambda: Worker(shutdown_timeout=math.inf),
        lambda: Worker(shutdown_timeout=HUGE),
        lambda: Worker(shutdown_timeout=[]),  # type: ignore[arg-type]
    ],
)
def test_a_duration_that_can_never_be_right_is_refused_where_it_is_given(make: Any) -> None:
    with pytest.raises(ValueError, match="seconds"):
        make()


def test_the_durations_a_worker_accepts() -> None:
    worker = Worker(hello_timeout=math.inf, shutdown_timeout=0)
    assert (worker.hello_timeout, worker.shutdown_timeout) == (math.inf, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [math.nan, -math.inf, -1, 0, True, HUGE])
async def test_a_workers_call_to_the_parent_refuses_a_bad_timeout(timeout: Any) -> None:
    # nan and -inf meant "never time out", True one second, -1 and 0 at once.
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        await Worker().request("anything", timeout=timeout)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        await Worker().request_via_data("anything", timeout=timeout)


@pytest.mark.anyio
async def test_stop_all_and_pool_stop_refuse_a_bad_grace_before_stopping_anything() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker())
        pool = await manager.spawn_pool("p", 1, **python_worker())
        for stop in (manager.stop_all, pool.stop):
            with pytest.raises(ValueError, match="grace must be a finite number"):
                await stop(grace=-1)  # was an ExceptionGroup of ValueErrors
        assert handle.state is WorkerState.RUNNING
        assert await pool.request("echo", [1]) == [1]
        # The timeout of a map is checked at the call, an empty input included.
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            pool.map("echo", [], timeout=-1)


def test_the_blocking_api_takes_request_timeout_none_as_no_limit() -> None:
    # The direct path (a request sent from the caller's thread) raised TypeError.
    with sync.ProcessManager(namespace=namespace(), request_timeout=None) as manager:
        handle = manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        assert handle.request("echo", [1]) == [1]
        assert handle.request_via_data("echo", [2]) == [2]


class _BrokenPolicy(RestartPolicy):
    def delay(self, attempt: int) -> float:
        raise RuntimeError("a bug in the backoff")


@pytest.mark.anyio
async def test_a_failing_supervisor_gives_up_on_its_worker_not_on_the_manager() -> None:
    # As the backoff's OverflowError did: the exception left the supervisor, ended the
    # manager's task group, and stopped every other worker with it.
    failures: list[Any] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("failed", failures.append)
        broken = await manager.spawn(
            "broken", **python_worker(), restart_policy=_BrokenPolicy(enabled=True)
        )
        healthy = await manager.spawn("healthy", **python_worker())
        with pytest.raises(IpcError, match="its supervisor failed"):
            await broken.request("crash", {"code": 3})
        assert await broken.wait() == 3
        assert broken.state is WorkerState.FAILED
        assert await healthy.request("echo", ["still here"]) == ["still here"]
    assert [event.worker_id for event in failures] == ["broken"]
    assert "its supervisor failed: RuntimeError('a bug in the backoff')" in str(failures[0].error)
