"""What a Python worker answers when a handler raises what is not an ``Exception`` (real worker
processes): asyncio's CancelledError of the handler's own (it awaited a future that other code
cancelled) or a BaseException subclass of its own is the handler's failure, answered -32000 on
both channels, and the worker goes on. Both used to end the worker: exit code 0, as if it had
been told to stop (so no restart), or, for a plain function on the data channel, no answer.
Also: an ``async def`` lifecycle hook is refused when registered (it was never awaited)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError, WorkerState
from aspect_ipc.worker import Worker
from workers import namespace

pytestmark = pytest.mark.anyio

_WORKER = """
import asyncio

from aspect_ipc.worker import Worker

worker = Worker()


class Abort(BaseException):
    pass


async def cancelled_job(params):
    job = asyncio.get_running_loop().create_future()
    job.cancel()  # another part of the program gave up on it
    return await job


def plain_cancelled(params):
    raise asyncio.CancelledError("the job was cancelled")


def plain_abort(params):
    raise Abort("stop this request")


async def async_abort(params):
    raise Abort("stop this request")


for register in (worker.control, worker.data):
    register("cancelledJob")(cancelled_job)
    register("plainCancelled")(plain_cancelled)
    register("plainAbort")(plain_abort)
    register("asyncAbort")(async_abort)
worker.run()
"""


@pytest.mark.parametrize(
    ("method", "remote_type"),
    [
        ("cancelledJob", "CancelledError"),
        ("plainCancelled", "CancelledError"),
        ("plainAbort", "Abort"),
        ("asyncAbort", "Abort"),
    ],
)
async def test_a_handler_raising_a_base_exception_is_answered_and_the_worker_goes_on(
    tmp_path: Path, method: str, remote_type: str
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w",
            executable=sys.executable,
            args=[str(script)],
            data_channel=DataChannelOptions(enabled=True),
        )
        for call in (handle.request, handle.request_via_data):
            with pytest.raises(RemoteError) as info:
                await call(method, None, timeout=20)  # no answer: RequestTimeout
            assert info.value.code == -32000 and info.value.remote_type == remote_type
        # Answered on the data channel after the control channel: the worker went on, and still
        # runs (it used to exit 0 or crash after the first).
        assert handle.state is WorkerState.RUNNING and handle.exit_code is None


def test_an_async_lifecycle_hook_is_refused_when_registered() -> None:
    worker = Worker()

    async def warm_up(info: object) -> None:
        pass

    with pytest.raises(TypeError, match=r"the ready hook .* is async"):
        worker.on("ready")(warm_up)
