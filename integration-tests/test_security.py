"""Who can reach a worker, and where its secret goes (spec 5, 6, 7.3, 7.4).

The data socket is the user's alone (mode 0600, in a directory others cannot tamper with); the
token reaches the worker and nobody else: not a log record, an error, a repr, the worker's own
environment after start, nor its children; namespaces and ids never take a socket out of its
directory.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    DataChannelOptions,
    MessagePackCodec,
    PipePath,
    ProcessEvent,
    ProcessManager,
    RemoteError,
    RequestTimeout,
    RestartPolicy,
    WorkerCrashed,
)
from aspect_ipc.framing import LengthPrefixedFraming
from conftest import HOSTILE, WORKERS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DATA = DataChannelOptions(enabled=True)
HEX = set("0123456789abcdef")


@pytest.fixture
def private_dir(namespace: str) -> Iterator[str]:
    """A short directory of our own under /tmp (mode 0700), removed afterwards."""
    path = tempfile.mkdtemp(prefix=f"{namespace}d", dir="/tmp")
    yield path
    os.rmdir(path)  # fails if a socket file was left in it


def _check_private_socket(path: str) -> None:
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode), f"{path} is not a socket"
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == os.getuid()
    directory = os.stat(os.path.dirname(path))
    writable_by_others = directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    # Others may write to the directory only if the sticky bit stops them removing or
    # replacing our socket (like /tmp); and the directory is ours or root's.
    assert not writable_by_others or directory.st_mode & stat.S_ISVTX
    assert directory.st_uid in (0, os.getuid())


@pytest.mark.anyio
async def test_the_socket_is_the_users_alone(
    worker: dict[str, Any], namespace: str, private_dir: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        in_tmp = await manager.spawn("w", **worker, data_channel=DATA)
        assert in_tmp.spec.data_path is not None
        assert os.path.dirname(in_tmp.spec.data_path) == "/tmp"
        _check_private_socket(in_tmp.spec.data_path)
    async with ProcessManager(namespace=namespace, socket_dir=private_dir) as manager:
        inside = await manager.spawn("w", **worker, data_channel=DATA)
        assert inside.spec.data_path is not None
        assert os.path.dirname(inside.spec.data_path) == private_dir
        _check_private_socket(inside.spec.data_path)
        assert await inside.request_via_data("echo", ["ok"]) == ["ok"]
    assert os.listdir(private_dir) == [], "the socket file outlived its worker"


def _texts_of(error: BaseException) -> Iterator[str]:
    """Everything an error shows: str, repr, args, attributes, its cause and context."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(vars(current))
        stack += [current.__cause__, current.__context__]


async def _intrude(path: str, attempts: list[dict[str, Any]]) -> list[Any]:
    command = [sys.executable, str(HOSTILE / "intruder.py"), path]
    done = await anyio.run_process(command, input=json.dumps(attempts).encode())
    results: list[Any] = json.loads(done.stdout)["attempts"]
    return results


@pytest.mark.anyio
async def test_the_token_never_leaves_the_worker(
    worker: dict[str, Any],
    namespace: str,
    spawned_token: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole life: spawn, requests on both channels, errors, a timeout, refused intruders
    (one with the real token), a crash, the restart, a stop, all logged at DEBUG. Neither
    incarnation's token shows up anywhere but in the worker's start-up environment."""
    # A token the parent was itself given must not be passed on (spec 5).
    inherited = "e" * 64
    monkeypatch.setenv("ASPECT_IPC_TOKEN", inherited)
    monkeypatch.setenv("ASPECT_IPC_SOMETHING", "inherited")
    caplog.set_level(logging.DEBUG)
    policy = RestartPolicy(enabled=True, max_restarts=1, backoff=0.05)
    events: list[ProcessEvent] = []
    errors: list[BaseException] = []
    tokens: list[str] = []
    codec, framing = MessagePackCodec(), LengthPrefixedFraming()
    async with ProcessManager(namespace=namespace, restart_policy=policy) as manager:
        for kind in ("spawn", "ready", "exit", "crash", "restart", "output"):
            manager.on(kind, events.append)
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        for incarnation in range(2):
            assert handle.pid is not None
            token = spawned_token(handle.pid)
            assert token is not None and len(token) == 64 and set(token) <= HEX
            tokens.append(token)
            for name in ("ASPECT_IPC_TOKEN", "ASPECT_IPC_SOMETHING"):
                assert await handle.request("getEnv", {"name": name}) is None
                assert await handle.request_via_data("childEnv", {"name": name}) is None
            assert (
                await handle.request("getEnv", {"name": "ASPECT_IPC_WORKER_ID"}) == "w"
            )
            await handle.request("stderr", {"text": f"incarnation {incarnation}"})
            try:
                await handle.request_via_data("fail", {"message": "no"})
            except RemoteError as exc:
                errors.append(exc)
            try:
                await handle.request("sleep", {"seconds": 30, "tag": "t"}, timeout=0.2)
            except RequestTimeout as exc:
                errors.append(exc)
            assert handle.spec.data_path is not None
            hello = {"jsonrpc": "2.0", "id": 1, "method": "$/hello"}
            attempts = [  # the right token (the channel is taken), then wrong ones
                {"params": {"token": token, "protocol": 1}},
                {"params": {"token": token, "protocol": 9}},
                {"params": {"token": token[::-1], "protocol": 1}},
            ]
            sends = [
                framing.encode(codec.encode({**hello, **a})).hex() for a in attempts
            ]
            replies = await _intrude(
                handle.spec.data_path, [{"send": s} for s in sends]
            )
            for reply in replies:
                assert reply["closed"] and token not in json.dumps(reply)
                assert token[::-1] not in json.dumps(reply)
            if incarnation == 0:
                with pytest.raises(WorkerCrashed) as info:
                    await handle.request("crash", {"code": 3})
                errors.append(info.value)
                with anyio.fail_after(10):
                    while handle.restarts == 0 or handle.state.value != "running":
                        await anyio.sleep(0.01)
        shown = [repr(handle), str(handle.spec), repr(manager.handles)]
        await handle.stop()
    assert tokens[0] != tokens[1], "a restart must get a fresh token"
    assert inherited not in tokens
    assert (
        "ASPECT_IPC_TOKEN" not in os.environ
        or os.environ["ASPECT_IPC_TOKEN"] == inherited
    )
    shown += [repr(event) for event in events]
    for error in errors:
        shown += list(_texts_of(error))
    for record in caplog.records:
        shown += [record.getMessage(), repr(record.args), str(record.exc_text)]
    # The scan saw the records: the worker's stderr is forwarded at INFO.
    assert "incarnation 1" in [record.getMessage() for record in caplog.records]
    for token in tokens:
        leaks = [text for text in shown if token in text]
        assert leaks == [], f"the token leaked into: {leaks[:3]}"


# -- names ------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    ("..", ".."),
    (".", "."),
    ("../../etc", "passwd"),
    ("ns", "../../../../tmp/escaped"),
    ("ns", "/etc/passwd"),
    ("a/b", "c/d"),
    ("ns", "back\\slash\\..\\x"),
    ("ns", "nul\x00byte"),
    ("nul\x00", "id"),
    ("ns", "line\nbreak\r\t"),
    ("ünï", "çødé ✓ 日本 🙂"),
    ("ns", "x" * 10_000),
    ("../" * 50, "../" * 50),
    ("ns", "\udcff\ud800"),  # lone surrogates
]
DIRECTORIES = {"linux": ["/tmp", "/run/user/1000/aspect"], "darwin": ["/tmp"]}
LIMITS = {"linux": 107, "darwin": 103}


def _check_inside(directory: str, path: str, platform: str) -> None:
    assert path.startswith(directory + "/"), path
    name = path[len(directory) + 1 :]
    assert name not in ("", ".", "..") and "/" not in name and "\x00" not in name
    assert name.isascii() and name.endswith(".sock"), name
    assert os.path.normpath(path) == path
    assert len(path.encode()) <= LIMITS[platform]


def test_for_module_keeps_hostile_names_inside_the_directory() -> None:
    for platform, directories in DIRECTORIES.items():
        for directory in directories:
            paths = set()
            for namespace, worker_id in HOSTILE_NAMES:
                path = PipePath.for_module(
                    namespace, worker_id, directory=directory, platform=platform
                )
                _check_inside(directory, path, platform)
                paths.add(path)
            assert len(paths) == len(HOSTILE_NAMES), "two hostile names share a path"
    for namespace, worker_id in HOSTILE_NAMES:
        pipe = PipePath.for_module(namespace, worker_id, platform="win32")
        assert pipe.startswith("\\\\.\\pipe\\") and len(pipe) <= 256
        name = pipe[len("\\\\.\\pipe\\") :]
        assert name.isascii() and not set(name) & set("\\/:\x00") and name != ".."


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    namespace=st.text(min_size=1, max_size=300),
    worker_id=st.text(min_size=1, max_size=300),
    platform=st.sampled_from(sorted(DIRECTORIES)),
)
def test_for_module_never_escapes_for_any_name(
    namespace: str, worker_id: str, platform: str
) -> None:
    for directory in DIRECTORIES[platform]:
        path = PipePath.for_module(
            namespace, worker_id, directory=directory, platform=platform
        )
        _check_inside(directory, path, platform)


E2E_NAMES = [
    "../../../../tmp/escaped",
    "/etc/passwd",
    "çødé ✓/..",
    "y" * 300,
]


@pytest.mark.anyio
async def test_spawn_with_hostile_names_stays_in_the_socket_directory(
    worker: dict[str, Any], namespace: str, private_dir: str
) -> None:
    """End to end: each worker listens (its $/ready says where) inside the socket directory,
    and receives its namespace and id unsanitized (spec 5)."""
    hostile_namespace = f"../{namespace}/.."
    ready: dict[str, ProcessEvent] = {}
    async with ProcessManager(
        namespace=hostile_namespace, socket_dir=private_dir
    ) as manager:
        manager.on("ready", lambda event: ready.setdefault(event.worker_id, event))
        async with anyio.create_task_group() as task_group:
            for worker_id in E2E_NAMES:
                task_group.start_soon(
                    lambda i: manager.spawn(i, **worker, data_channel=DATA), worker_id
                )
        for worker_id in E2E_NAMES:
            handle = manager.get(worker_id)
            path = handle.spec.data_path
            assert path is not None
            _check_inside(private_dir, path, "linux")
            assert ready[worker_id].info["dataPath"] == path
            _check_private_socket(path)
            env = {"name": "ASPECT_IPC_WORKER_ID"}
            assert await handle.request_via_data("getEnv", env) == worker_id
            env = {"name": "ASPECT_IPC_NAMESPACE"}
            assert await handle.request("getEnv", env) == hostile_namespace
        assert len(os.listdir(private_dir)) == len(E2E_NAMES)
    assert not os.path.exists("/tmp/escaped.sock")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("namespace_suffix", "worker_id"), [("", "nul\x00id"), ("\x00nul", "w")]
)
async def test_a_nul_in_a_name_is_refused_cleanly(
    namespace: str, namespace_suffix: str, worker_id: str
) -> None:
    """A NUL cannot travel in an environment variable: spawn refuses the name with a clear
    error, and leaves no descriptor, process or file behind (before any worker starts, so
    one language is enough)."""
    go = WORKERS["go"]
    before = len(os.listdir("/proc/self/fd"))
    if namespace_suffix:  # refused by the manager itself
        with pytest.raises(ValueError, match="namespace .* contains a NUL character"):
            ProcessManager(namespace=namespace + namespace_suffix)
        return
    async with ProcessManager(namespace=namespace) as manager:
        with pytest.raises(ValueError) as info:
            await manager.spawn(worker_id, executable=go[0], data_channel=DATA)
        assert worker_id not in manager.handles
    assert "worker_id 'nul\\x00id' cannot be used: it contains a NUL character" in str(
        info.value
    )
    assert len(os.listdir("/proc/self/fd")) == before, (
        "the refused spawn leaked descriptors"
    )
