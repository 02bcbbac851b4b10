"""The public API used the wrong way, as a drill did on purpose: each misuse is a TypeError,
ValueError or RuntimeError that names what is wrong, raised before anything is sent or started,
and the rest of the manager goes on. Before, several passed and failed far away: ``health=5``
ended the manager's supervision (every other worker stopped), ``handle.request("$/shutdown")``
shut the worker down behind the supervisor's back, a closed manager's ``events()`` never ended,
closing the blocking manager from an event callback left its workers running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    CodecError,
    ControlChannelOptions,
    DataChannelOptions,
    HealthCheck,
    JsonCodec,
    MessagePackCodec,
    ProcessManager,
    RemoteError,
    RestartPolicy,
    WorkerIdInUse,
    sync,
)
from aspect_ipc.errors import SizeLimitError
from workers import child_pids, namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


@pytest.mark.parametrize(
    ("option", "value", "error", "words"),
    [
        ("health", 5, TypeError, "health must be a HealthCheck or None, not int"),
        ("health", True, TypeError, "health must be a HealthCheck or None, not bool"),
        ("restart_policy", True, TypeError, "restart_policy must be a RestartPolicy or None"),
        ("restart_policy", {}, TypeError, "restart_policy must be a RestartPolicy or None"),
        ("data_channel", True, TypeError, "data_channel must be a DataChannelOptions or None"),
        ("control_channel", {}, TypeError, "control_channel must be a ControlChannelOptions"),
        ("stderr_tail_lines", -1, ValueError, "stderr_tail_lines must be >= 0, not -1"),
        ("stderr_tail_lines", "x", TypeError, "stderr_tail_lines must be a whole number"),
        ("remote_tracebacks", "no", TypeError, "remote_tracebacks must be True or False"),
        ("metrics", "no", TypeError, "metrics must be True or False or None"),
        ("setup", 5, TypeError, "setup must be a function or None, not int"),
    ],
)
async def test_a_spawn_option_of_the_wrong_type_is_refused_and_harms_nothing(
    option: str, value: Any, error: type[Exception], words: str
) -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        bystander = await manager.spawn("b", **python_worker())
        with pytest.raises(error) as caught:
            await manager.spawn("w", **python_worker(), **{option: value})
        assert words in str(caught.value)
        assert set(manager.handles) == {"b"}
        assert await bystander.request("add", {"a": 1, "b": 1}) == 2  # supervision goes on
        await anyio.sleep(0.2)
        assert bystander.state.value == "running"


def test_option_objects_refuse_fields_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="DataChannelOptions enabled must be True or False"):
        DataChannelOptions(enabled="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DataChannelOptions path must be a string or None"):
        DataChannelOptions(path=5)  # type: ignore[arg-type]
    # Over the socket path limit (107 bytes on Linux): the Node worker bound 108 bytes, the parent
    # could not connect (DataChannelTimeout) and the socket file stayed (deployment drill).
    too_long = "/tmp/" + "p" * (108 - len("/tmp/"))
    with pytest.raises(ValueError, match="is 108 bytes, over the 107-byte limit"):
        DataChannelOptions(enabled=True, path=too_long)
    assert DataChannelOptions(enabled=True, path=too_long[:-1]).path == too_long[:-1]
    with pytest.raises(TypeError, match="DataChannelOptions codec must be a MessagePackCodec"):
        DataChannelOptions(codec=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ControlChannelOptions codec must be a JsonCodec"):
        ControlChannelOptions(codec="json")  # type: ignore[arg-type]
    # The codecs swapped: the start-up timed out ("did not send $/ready") instead.
    with pytest.raises(ValueError) as info:
        ControlChannelOptions(codec=MessagePackCodec())
    assert str(info.value) == (
        "ControlChannelOptions codec must be a JsonCodec (with hooks if you need them), not "
        "MessagePackCodec ('msgpack'): the control channel carries JSON lines in every SDK "
        "(spec sections 1 and 2)"
    )
    with pytest.raises(ValueError, match="the data channel carries MessagePack"):
        DataChannelOptions(enabled=True, codec=JsonCodec(encode_hook=str))
    DataChannelOptions(enabled=True, codec=MessagePackCodec(encode_hook=str))  # hooks are fine
    with pytest.raises(TypeError, match="RestartPolicy enabled must be True or False"):
        RestartPolicy(enabled="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="restart_policy must be a RestartPolicy or None"):
        ProcessManager(restart_policy=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics must be True or False, not str"):
        ProcessManager(metrics="no")  # type: ignore[arg-type]
    assert HealthCheck(interval=1, timeout=1).interval == 1


async def test_handlers_and_methods_of_the_wrong_kind_are_refused_before_anything_is_sent() -> None:
    async def handler(params: Any) -> Any:
        return params

    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(TypeError, match="a method name must be a string, not int"):
            handle.on_request(5, handler)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="the handler of 'm' must be a function"):
            handle.on_request("m", 5)  # type: ignore[arg-type]
        coroutine = handler({})
        with pytest.raises(TypeError, match="without calling it"):
            handle.on_notification("m", coroutine)  # type: ignore[arg-type]
        coroutine.close()
        sent = handle.stats().control.requests_sent
        for call in (
            lambda: handle.request("$/shutdown"),
            lambda: handle.request_via_data("$/hello", {"token": "x", "protocol": 1}),
            lambda: handle.notify("$/cancelRequest", {"id": 1}),
        ):
            with pytest.raises(ValueError, match="method names starting with '\\$/' are reserved"):
                await call()
        with pytest.raises(TypeError, match="a method name must be a string, not NoneType"):
            await handle.request(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="reserved"):
            handle.stream("$/x")
        assert handle.stats().control.requests_sent == sent  # nothing went out
        assert await handle.request("$/ping") == {}  # a read-only check of liveness: allowed
        assert await handle.request("add", {"a": 2, "b": 3}) == 5  # and the worker still runs
        with pytest.raises(KeyError, match="no worker 'nope' in this manager"):
            await manager.request("nope", "add", {"a": 1, "b": 1})
        pool = await manager.spawn_pool("p", 1, **python_worker())
        with pytest.raises(TypeError, match="ordered must be True or False"):
            pool.map("add", [], ordered="no")  # type: ignore[arg-type]


async def test_a_stream_call_with_params_that_cannot_carry_its_descriptor_is_refused() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(ValueError, match=r"\('sumStream'\) must be a dict or None, not list"):
            await handle.request_via_data("sumStream", [1], input=range(3))
        with pytest.raises(ValueError, match="hold '\\$/stream' already"):
            await handle.request_via_data("sumStream", {"$/stream": {}}, input=range(3))
        assert await handle.request_via_data("sumStream", None, input=range(4)) == 6


async def test_an_input_item_that_cannot_be_sent_raises_its_own_error() -> None:
    # It came back as the worker's RemoteError ("input stream failed: SizeLimitError(...)"),
    # which `except FramingError` / `except CodecError` did not catch.
    data = DataChannelOptions(enabled=True, max_frame_size=1 << 20)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data)
        with pytest.raises(
            SizeLimitError, match=r"^notification of .* exceeds max_frame_size"
        ) as info:
            await handle.request_via_data("sumStream", {}, input=[1, "x" * (2 << 20)])
        assert isinstance(info.value.__cause__, RemoteError)  # what the worker answered
        with pytest.raises(CodecError, match="cannot encode datetime"):
            await handle.request_via_data("sumStream", {}, input=[1, datetime.now()])
        stream = handle.stream_via_data("echoStream", {}, input=["a", datetime.now()])
        with pytest.raises(CodecError, match="cannot encode datetime"):
            _ = [item async for item in stream]
        assert await handle.request_via_data("sumStream", {}, input=[1, 2]) == 3


async def test_a_pool_whose_worker_id_is_taken_raises_worker_id_in_use_itself() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        await manager.spawn("c-0", **python_worker())
        with pytest.raises(WorkerIdInUse, match="'c-0' is already in use"):  # not in a group
            await manager.spawn_pool("c", 2, **python_worker())
        assert set(manager.handles) == {"c-0"}


async def test_a_stream_closed_before_its_first_step_sends_nothing() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=DATA)
        sent = handle.stats().data
        assert sent is not None
        stream = handle.stream_via_data("countTo", {"n": 3, "size": 0})
        await stream.aclose()
        assert [item async for item in stream] == []
        after = handle.stats().data
        assert after is not None and after.requests_sent == sent.requests_sent


async def test_a_closed_managers_events_and_closing_it_from_its_own_callback_are_errors() -> None:
    refused: list[str] = []
    manager = ProcessManager(namespace=namespace())
    with anyio.fail_after(30):  # both used to hang for ever
        async with manager:

            async def on_exit(event: Any) -> None:
                try:
                    await manager.__aexit__(None, None, None)
                except RuntimeError as exc:
                    refused.append(str(exc))

            manager.on("exit", on_exit)
            handle = await manager.spawn("w", **python_worker())
            await handle.stop()
            while not refused:
                await anyio.sleep(0.01)
    assert refused[0].startswith("a ProcessManager cannot be closed from one of its own event")
    with pytest.raises(RuntimeError, match="its events\\(\\) ended with it"):
        manager.events()


def test_closing_the_blocking_manager_from_its_callback_is_refused_and_its_exit_still_works(
    anyio_backend: str,
) -> None:
    refused: list[str] = []
    with sync.ProcessManager(namespace(), backend=anyio_backend) as manager:

        def on_exit(event: Any) -> None:
            try:
                manager.close()
            except RuntimeError as exc:
                refused.append(str(exc))

        manager.on("exit", on_exit)
        manager.spawn("w", **python_worker()).stop()
        kept = manager.spawn("w2", **python_worker())
    assert refused and "cannot be called from its own loop thread" in refused[0]
    assert child_pids() == set()  # the with block's exit stopped w2
    # On trio too, in the words of the docs (it was anyio's "This portal is not running").
    with pytest.raises(RuntimeError, match="the blocking manager's event loop has ended"):
        kept.request("add", {"a": 1, "b": 1})
