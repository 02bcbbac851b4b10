"""What a Python worker answers when a handler raises what is not an ``Exception`` (real worker
processes): asyncio's CancelledError of the handler's own (it awaited a future that other code
cancelled) or a BaseException subclass of its own is the handler's failure, answered -32000 on
both channels, and the worker goes on. Both used to end the worker: exit code 0, as if it had
been told to stop (so no restart), or, for a plain function on the data channel, no answer.
Also: an ``async def`` lifecycle hook is refused when registered (it was never awaited); and a
cancelled request whose handler awaits an ``asyncio.gather`` of children that catch their
cancellation is cancelled and nothing more, in a worker and in the parent."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from aspect_ipc import (
    DataChannelOptions,
    ProcessHandle,
    ProcessManager,
    RemoteError,
    RequestTimeout,
    WorkerState,
)
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


async def patient_gather(params):
    # Children that catch their cancellation and return: asyncio's gather then raises a
    # CancelledError of its own making when the request is cancelled.
    async def patient():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "caught"
    return await asyncio.gather(patient(), patient())


async def ask_parent(params):
    try:
        return await worker.request(params["method"], None, timeout=0.5)
    except Exception as exc:
        return type(exc).__name__


for register in (worker.control, worker.data):
    register("askParent")(ask_parent)
    register("patientGather")(patient_gather)
    register("cancelledJob")(cancelled_job)
    register("plainCancelled")(plain_cancelled)
    register("plainAbort")(plain_abort)
    register("asyncAbort")(async_abort)
worker.run()
"""


async def _spawn(manager: ProcessManager, tmp_path: Path, *, data: bool = True) -> ProcessHandle:
    """The worker above, with or without a data channel."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    return await manager.spawn(
        "w",
        executable=sys.executable,
        args=[str(script)],
        data_channel=DataChannelOptions(enabled=data),
    )


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
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await _spawn(manager, tmp_path)
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


async def test_a_cancelled_request_whose_gather_children_catch_their_cancellation_is_only_that(
    tmp_path: Path,
) -> None:
    # On asyncio, gather re-raised the request's cancellation as a CancelledError of its own,
    # which the request's cancel scope let through: it ended the channel's task group, and the
    # worker exited with code 0 (so it was never restarted), nothing on stderr.
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await _spawn(manager, tmp_path)
        for call in (handle.request, handle.request_via_data):
            with pytest.raises(RequestTimeout):
                await call("patientGather", None, timeout=0.5)
        with pytest.raises(RemoteError):  # the worker still reads and answers both channels
            await handle.request_via_data("asyncAbort", None, timeout=20)
        with pytest.raises(RemoteError):
            await handle.request("asyncAbort", None, timeout=20)
        assert handle.state is WorkerState.RUNNING and handle.exit_code is None


async def _patient_gather(params: object) -> object:
    async def patient() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "caught"
        return "slept"

    return await asyncio.gather(patient(), patient())


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asyncio.gather: the parent's loop
async def test_the_parents_handler_whose_gather_children_catch_their_cancellation_too(
    tmp_path: Path,
) -> None:
    # The same in the parent: the worker gives up on its request ($/cancelRequest); the
    # parent's control channel used to end with it (its task group), and every request after.
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await _spawn(manager, tmp_path, data=False)
        handle.on_request("patientGather", _patient_gather)
        params = {"method": "patientGather"}
        assert await handle.request("askParent", params, timeout=20) == "RequestTimeout"
        assert await handle.request("askParent", params, timeout=20) == "RequestTimeout"
        assert handle.state is WorkerState.RUNNING
