"""Health checks (``spawn(health=HealthCheck(...))``): the parent pings a running worker, and a
worker that misses a deadline is hung; its outcome is a crash whose error is WorkerHung."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ._loggers import library_logger
from ._outcome import Outcome
from .channel import Channel
from .constants import METHOD_PING
from .errors import IpcError, RequestTimeout, WorkerHung
from .options import HealthCheck

__all__ = ["hung_outcome", "ping_until_hung"]

logger = library_logger("aspect_ipc.manager")


async def ping_until_hung(
    worker_id: str, control: Channel, health: HealthCheck, ending: Callable[[], bool]
) -> None:
    """Ping the worker every ``health.interval``; return when it missed a deadline (hung).
    A stop or restart in progress (``ending()``), or a closed channel, is not a miss: it waits
    for the end.
    """
    while True:
        await anyio.sleep(health.interval)
        missed = False
        # The channel's own timeout, and a local one in case the send itself is stuck (a
        # worker that stopped reading fills its stdin pipe).
        with anyio.move_on_after(health.timeout + 0.1) as scope:
            try:
                await control.request(METHOD_PING, None, timeout=health.timeout)
            except RequestTimeout:
                missed = True
            except IpcError:
                pass  # it answered with an error (alive), or the channel closed
        missed = missed or scope.cancelled_caught
        if control.closed or ending():
            await anyio.sleep_forever()
        if missed:
            logger.warning(
                "worker %s: hung: no answer to $/ping within %g s (health check every %g s); "
                "killing its process group",
                worker_id,
                health.timeout,
                health.interval,
                extra={"worker_id": worker_id, "event": "crash"},
            )
            return


def hung_outcome(worker_id: str, health: HealthCheck, outcome: Outcome, tail: str) -> Outcome:
    """The outcome of a worker killed because it hung: a crash, whose error is WorkerHung."""
    text = (
        f"worker {worker_id} hung: it did not answer $/ping within {health.timeout:g} s "
        f"(health check every {health.interval:g} s, timeout {health.timeout:g} s), so it was "
        "killed (SIGKILL to its process group)"
    )
    error = WorkerHung(
        f"{text}; last lines of its stderr:\n{tail}" if tail else text,
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        stderr_tail=tail,
    )
    return Outcome(outcome.exit_code, outcome.signal, True, outcome.uptime, error)
