"""A Python worker whose handler calls ``sys.exit(code)`` ends as a script would (real worker
processes): it exits with that code and writes nothing to stderr, whether the handler is a
plain function or a coroutine function, or an encode hook exits while its answer is encoded, on
either channel, for a request or a notification, on asyncio or on trio. It used to exit with the
task groups' traceback on stderr (which the parent put in the crash's message), and on trio with
code 1 whatever the code asked."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from aspect_ipc import (
    ChannelClosed,
    DataChannelOptions,
    ProcessHandle,
    ProcessManager,
    RestartPolicy,
    WorkerCrashed,
    WorkerState,
)
from workers import namespace

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),  # the parent's: not what is tested
    pytest.mark.parametrize("backend", ["asyncio", "trio"]),  # the worker's
]

_WORKER = """
import sys

from aspect_ipc import JsonCodec, MessagePackCodec
from aspect_ipc.worker import Worker


class Leave:
    def __init__(self, code):
        self.code = code


def leave(value):  # an encode hook that ends the program
    if isinstance(value, Leave):
        sys.exit(value.code)
    return value


worker = Worker(
    control_codec=JsonCodec(encode_hook=leave), data_codec=MessagePackCodec(encode_hook=leave)
)


def plain_exit(params):
    sys.exit(params["code"])


async def async_exit(params):
    sys.exit(params["code"])


async def hook_exit(params):
    return {"leaving": Leave(params["code"])}  # the hook exits while the answer is encoded


for register in (worker.control, worker.data):
    register("plainExit")(plain_exit)
    register("asyncExit")(async_exit)
    register("hookExit")(hook_exit)
worker.control_notification("exit")(async_exit)
worker.run(backend=sys.argv[1])
"""
_NO_RESTARTS = RestartPolicy(enabled=False)


async def _spawn(
    manager: ProcessManager, tmp_path: Path, backend: str, worker_id: str = "w"
) -> ProcessHandle:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    return await manager.spawn(
        worker_id,
        executable=sys.executable,
        args=[str(script), backend],
        data_channel=DataChannelOptions(enabled=True),
    )


@pytest.mark.parametrize("method", ["plainExit", "asyncExit", "hookExit"])
@pytest.mark.parametrize("via", ["control", "data"])
async def test_a_handler_calling_sys_exit_ends_the_worker_with_its_code_and_no_traceback(
    tmp_path: Path, backend: str, method: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace(), restart_policy=_NO_RESTARTS) as manager:
        handle = await _spawn(manager, tmp_path, backend)
        call = handle.request if via == "control" else handle.request_via_data
        with pytest.raises(WorkerCrashed) as info:
            await call(method, {"code": 5}, timeout=30)
        assert info.value.exit_code == 5
        assert info.value.stderr_tail == ""  # was the task groups' traceback
        assert str(info.value) == "worker w crashed (exit code 5)"


async def test_sys_exit_with_zero_or_a_message_means_what_it_means_in_a_script(
    tmp_path: Path, backend: str
) -> None:
    async with ProcessManager(namespace=namespace(), restart_policy=_NO_RESTARTS) as manager:
        handle = await _spawn(manager, tmp_path, backend)
        with pytest.raises(ChannelClosed) as closed:
            await handle.request("plainExit", {"code": 0}, timeout=30)
        assert not isinstance(closed.value, WorkerCrashed)  # it exited on its own, with 0
        assert handle.exit_code == 0
        handle = await _spawn(manager, tmp_path, backend, "w2")
        with pytest.raises(WorkerCrashed) as crashed:
            await handle.request_via_data("asyncExit", {"code": "out of disk"}, timeout=30)
        assert crashed.value.exit_code == 1
        assert crashed.value.stderr_tail == "out of disk"  # what Python prints for it


async def test_a_notification_handler_calling_sys_exit_ends_the_worker_with_its_code(
    tmp_path: Path, backend: str
) -> None:
    async with ProcessManager(namespace=namespace(), restart_policy=_NO_RESTARTS) as manager:
        handle = await _spawn(manager, tmp_path, backend)
        await handle.notify("exit", {"code": 7})
        with anyio.fail_after(30):
            while handle.state is not WorkerState.FAILED:
                await anyio.sleep(0.05)
        assert handle.exit_code == 7
