"""The blocking API's requests under the conditions that decide how they travel.

A blocking caller's request is written by its own thread when nothing is queued before it, and
through the loop thread otherwise (docs/blocking.md). Whichever way, a user sees the async API's
behaviour: these tests drive a blocking manager on asyncio and on trio, as a script would, at
the moments where the two ways part: a timeout, a crash, an error answer, a request larger than
the socket takes at once while other threads send, the manager closing under waiting threads,
and the counters of ``stats()``.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aspect_ipc import (
    DataChannelOptions,
    IpcError,
    RemoteError,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
)
from aspect_ipc.sync import ProcessManager

DATA = DataChannelOptions(enabled=True)
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def _wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _in_flight(handle: Any) -> int:
    stats = handle.stats()
    return int(stats.control.in_flight + (stats.data.in_flight if stats.data else 0))


@BACKENDS
def test_a_timeout_cancels_the_request_in_the_worker_and_the_handle_goes_on(
    worker: dict[str, Any], namespace: str, backend: str
) -> None:
    with ProcessManager(namespace, backend=backend) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        observed: list[Any] = []
        for target in (handle, *pool.handles):
            target.on_notification("cancelObserved", observed.append)
        assert handle.request_via_data("add", {"a": 1, "b": 2}) == 3
        with pytest.raises(RequestTimeout) as caught:
            handle.request_via_data("sleep", {"seconds": 30, "tag": "h"}, timeout=0.3)
        assert (
            "worker w: no response to 'sleep' on the data channel within 0.3 s"
            in str(caught.value)
        )
        with pytest.raises(
            RequestTimeout, match="worker p-[01]: no response to 'sleep'"
        ):
            pool.request("sleep", {"seconds": 30, "tag": "p"}, timeout=0.3)
        _wait_for(lambda: len(observed) == 2)
        assert sorted(o["tag"] for o in observed) == ["h", "p"]
        assert handle.request_via_data("add", {"a": 2, "b": 2}) == 4
        assert pool.request_via_data("add", {"a": 3, "b": 2}) == 5
        stats = handle.stats()
        assert stats.data is not None
        assert stats.data.timeouts == 1
        assert stats.data.requests_sent >= 3


@BACKENDS
def test_an_error_answer_and_a_crash_raise_what_the_async_api_raises(
    worker: dict[str, Any], namespace: str, backend: str
) -> None:
    policy = RestartPolicy(enabled=True, max_restarts=3, backoff=0.05)
    with ProcessManager(namespace, backend=backend) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA, restart_policy=policy)
        with pytest.raises(RemoteError) as caught:
            handle.request_via_data(
                "fail", {"message": "no", "code": 4001, "data": [1]}
            )
        error = caught.value
        assert (error.code, error.message, error.data) == (4001, "no", [1])
        assert (error.worker_id, error.channel, error.method) == ("w", "data", "fail")
        assert str(error).startswith("worker w: 'fail' on the data channel failed:")
        with pytest.raises(WorkerCrashed) as crashed:
            handle.request("crash", {"code": 7})
        assert crashed.value.exit_code == 7
        # The next request waits for the restarted worker (the loop's way), then goes direct.
        assert handle.request_via_data("add", {"a": 40, "b": 2}, timeout=20) == 42
        assert handle.restarts == 1
        assert handle.request("add", {"a": 1, "b": 1}) == 2


def test_large_requests_from_threads_arrive_whole_among_small_ones(
    worker: dict[str, Any], namespace: str
) -> None:
    """4 MiB is more than a Unix socket takes in one write: the thread writes what it can and
    the rest goes first in the loop's queue, while seven other threads keep sending."""
    big = [os.urandom(4 << 20) for _ in range(3)]
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        before = handle.stats().data

        def work(n: int) -> bool:
            for i in range(6):
                if n < 3:
                    payload = {"blob": big[n], "i": i}
                    if handle.request_via_data("echo", payload, timeout=60) != payload:
                        return False
                elif handle.request_via_data("add", {"a": n, "b": i}) != n + i:
                    return False
            return True

        with ThreadPoolExecutor(8) as executor:
            assert list(executor.map(work, range(8))) == [True] * 8
        after = handle.stats().data
        assert before is not None and after is not None
        assert after.requests_sent - before.requests_sent == 48


@BACKENDS
def test_leaving_the_manager_fails_the_threads_still_waiting(
    worker: dict[str, Any], namespace: str, backend: str
) -> None:
    outcomes: list[BaseException | None] = []
    started = threading.Barrier(5)

    def wait_forever(handle: Any, via: str) -> None:
        call = handle.request_via_data if via == "data" else handle.request
        started.wait()
        try:
            call("sleepBusy", {"seconds": 30}, timeout=120)
        except BaseException as exc:  # noqa: BLE001  # what each thread sees is the assertion
            outcomes.append(exc)
        else:
            outcomes.append(None)

    with ProcessManager(namespace, backend=backend, shutdown_grace=0.5) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        threads = [
            threading.Thread(target=wait_forever, args=(target, via))
            for target, via in [
                (handle, "data"),
                (handle, "control"),
                (pool, "data"),
                (pool, "control"),
            ]
        ]
        for thread in threads:
            thread.start()
        started.wait()
        _wait_for(lambda: sum(_in_flight(h) for h in (handle, *pool.handles)) == 4)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert len(outcomes) == 4
    assert all(isinstance(o, IpcError) for o in outcomes), outcomes


@BACKENDS
def test_notifications_from_threads_arrive_in_each_threads_order(
    worker: dict[str, Any], namespace: str, backend: str
) -> None:
    with ProcessManager(namespace, backend=backend) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)

        def send(n: int) -> None:
            notify = handle.notify_via_data if n % 2 else handle.notify
            for i in range(100):
                notify("note", {"value": [n, i], "delayMs": 0})
                if i % 10 == 0:  # a request between them, from the same thread
                    assert handle.request_via_data("add", {"a": n, "b": i}) == n + i

        with ThreadPoolExecutor(4) as executor:
            list(executor.map(send, range(4)))
        for via, threads in [("control", (0, 2)), ("data", (1, 3))]:
            call = handle.request_via_data if via == "data" else handle.request
            # Notification handlers run after the requests that overtook them: wait for all.
            _wait_for(lambda call=call: len(call("notes")) == 200)
            notes = call("notes")
            for n in threads:
                assert [i for m, i in notes if m == n] == list(range(100)), via
        stats = handle.stats()
        assert stats.data is not None
        assert stats.control.notifications_sent == stats.data.notifications_sent == 200


def test_a_pool_request_whose_worker_crashes_is_retried_on_the_other(
    worker: dict[str, Any], namespace: str
) -> None:
    policy = RestartPolicy(enabled=True, max_restarts=3, backoff=0.05)
    with ProcessManager(namespace) as manager:
        pool = manager.spawn_pool(
            "p", 2, **worker, data_channel=DATA, restart_policy=policy
        )
        for retries, expected in [(1, "done"), (0, WorkerCrashed)]:
            _wait_for(lambda: all(h.state.value == "running" for h in pool.handles))
            outcome: list[Any] = []

            def call(retries: int = retries, outcome: list[Any] = outcome) -> None:
                params = {"seconds": 1.0, "tag": "r"}
                try:
                    outcome.append(
                        pool.request_via_data("sleep", params, retries=retries)
                    )
                except WorkerCrashed as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=call)
            thread.start()
            _wait_for(lambda: any(_in_flight(h) for h in pool.handles))
            busy = next(h for h in pool.handles if _in_flight(h))
            with pytest.raises(WorkerCrashed):
                busy.request("crash", {"code": 3})
            thread.join(timeout=30)
            assert not thread.is_alive() and len(outcome) == 1
            if expected == "done":
                assert outcome == ["done"]
            else:
                assert isinstance(outcome[0], WorkerCrashed)
        assert sum(h.restarts for h in pool.handles) == 2


def test_a_call_after_the_block_is_left_says_the_loop_has_ended(
    worker: dict[str, Any], namespace: str
) -> None:
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        assert handle.request_via_data("add", {"a": 1, "b": 1}) == 2
    for call in (handle.request, handle.request_via_data, pool.request, handle.notify):
        with pytest.raises(RuntimeError, match="event loop has ended"):
            call("add", {"a": 1, "b": 1})
