"""The foreign parent starts workers with odd environments and odd data paths (spec 5, 7.3, 10.3;
decisions D13, D15): what must refuse to start exits with code 2 before `$/ready`, saying why on
stderr; what must start, starts, with the limits it was given."""

from __future__ import annotations

import json
import os
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest
from foreign_parent import ForeignWorker, fixtures

hygiene = fixtures.hygiene
language = fixtures.language

VARIABLES = ["ASPECT_IPC_MAX_FRAME_SIZE", "ASPECT_IPC_MAX_LINE_LENGTH"]
BAD = ["+4096", " 4096", "4096 ", "4096\n", "0", "1023", "4294967296", "99999999999",
       "00000001024", "0x1000", "4_096", "4,096", "4096.0", "1e4", "１０２４", "٤٠٩٦",
       "64MiB", "-4096", "abc"]  # fmt: skip
GOOD = ["", "1024", "01024", "0000001024", "4294967295"]


def refused(
    worker: ForeignWorker, variable: str, value: str | None = None
) -> str | None:
    """None if ``worker`` refused to start as 5.2 says; else what it did instead."""
    if worker.wait_exit(15.0) is None:
        return "still running 15 s later"
    stderr = worker.stderr()
    if worker.process.returncode != 2:
        return (
            f"exit code {worker.process.returncode}, not 2; stderr: {stderr[-500:]!r}"
        )
    if any(
        isinstance(i.message, dict) and i.message.get("method")
        for i in worker.control.items
    ):
        return "it sent $/ready before refusing"
    if variable not in stderr:
        return f"stderr does not name {variable}: {stderr[-500:]!r}"
    if value is not None:
        quoted = {json.dumps(value), json.dumps(value, ensure_ascii=False), repr(value)}
        quoted |= {f'"{value}"', f"'{value}'"}
        if not any(form in stderr for form in quoted):
            return f"stderr does not quote the value {value!r}: {stderr[-500:]!r}"
    if os.path.exists(worker.data_path):
        return "it left a socket file"
    return None


@pytest.mark.parametrize("variable", VARIABLES)
def test_bad_size_values_refuse_to_start(language: str, variable: str) -> None:
    with ExitStack() as stack:
        workers = {
            value: stack.enter_context(ForeignWorker(language, env={variable: value}))
            for value in BAD
        }
        verdicts = {
            value: refused(worker, variable, value) for value, worker in workers.items()
        }
    wrong = {
        value: verdict for value, verdict in verdicts.items() if verdict is not None
    }
    assert wrong == {}, "\n".join(
        f"{value!r}: {verdict}" for value, verdict in wrong.items()
    )


@pytest.mark.parametrize("variable", VARIABLES)
def test_good_size_values_start(language: str, variable: str) -> None:
    with ExitStack() as stack:
        workers = {
            value: stack.enter_context(ForeignWorker(language, env={variable: value}))
            for value in GOOD
        }
        for worker in workers.values():
            assert worker.ready()["protocol"] == 1
        # The limit given is the one used ("01024": 1024, the other limit at its default).
        worker = workers["01024"]
        if variable == "ASPECT_IPC_MAX_LINE_LENGTH":
            worker.write(b"[" + b" " * 1100 + b"]\n")
            reply = worker.control.next().message
            assert reply["error"]["code"] == -32005, reply
            assert reply["error"]["data"]["limit"] == 1024, reply
        else:
            connection = worker.open_data()
            assert connection.call("echo", ["a" * 900])["result"] == ["a" * 900]
            _, closed_after = connection.flood((1025).to_bytes(4, "big"), 1 << 20, 3.0)
            assert closed_after is not None, (
                "a frame of 1025 bytes must close the connection"
            )


@pytest.mark.parametrize("token", [None, ""], ids=["missing", "empty"])
def test_a_data_path_without_a_token_refuses_to_start(
    language: str, token: str | None
) -> None:
    with ForeignWorker(language, env={"ASPECT_IPC_TOKEN": token}) as worker:
        assert refused(worker, "ASPECT_IPC_TOKEN") is None, refused(
            worker, "ASPECT_IPC_TOKEN"
        )


@pytest.mark.parametrize("path", [None, ""], ids=["absent", "empty"])
def test_without_a_data_path_the_worker_runs_control_only(
    language: str, path: str | None
) -> None:
    with ForeignWorker(language, env={"ASPECT_IPC_DATA_PATH": path}) as worker:
        assert worker.ready()["dataPath"] is None
        assert worker.call("echo", [1])["result"] == [1]
        assert not os.path.exists(worker.data_path)


def test_a_worker_speaking_another_protocol_still_says_ready(language: str) -> None:
    with ForeignWorker(language, env={"ASPECT_IPC_PROTOCOL": "2"}) as worker:
        assert (
            worker.ready()["protocol"] == 1
        )  # its own version: the parent decides (10.3)


def test_a_stale_socket_is_replaced(language: str) -> None:
    def stale(path: str) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path)  # bound, never listening, closed: a connection is refused

    with ForeignWorker(language, prepare=stale) as worker:
        worker.ready()
        assert worker.open_data().call("$/ping")["result"] == {}


def test_a_live_socket_is_left_alone(language: str) -> None:
    with (
        socket.socket(socket.AF_UNIX) as listener,
        ForeignWorker(
            language, prepare=lambda path: (listener.bind(path), listener.listen())
        ) as worker,
    ):
        assert worker.wait_exit(15.0) is not None
        stderr = worker.stderr()
        assert worker.process.returncode == 2, (worker.process.returncode, stderr)
        assert "address in use by a live worker" in stderr, stderr
        assert os.path.exists(worker.data_path)
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(worker.data_path)  # still ours, still listening


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_a_path_that_is_not_a_socket_is_never_removed(language: str, kind: str) -> None:
    def occupy(path: str) -> None:
        if kind == "file":
            with open(path, "w") as f:
                f.write("keep me")
        elif kind == "directory":
            os.mkdir(path)
        else:
            os.symlink(path + ".target", path)

    with ForeignWorker(language, prepare=occupy) as worker:
        assert worker.wait_exit(15.0) is not None
        stderr = worker.stderr()
        assert worker.process.returncode != 0, stderr
        assert "path exists and is not a socket" in stderr, stderr
        assert os.path.lexists(worker.data_path)
        assert worker.control.items == [] or "$/ready" not in str(
            worker.control.items[0]
        )


def test_ready_is_the_first_line_and_nothing_else_is_written(language: str) -> None:
    with ForeignWorker(language) as worker:
        worker.ready()
        worker.open_data()
        assert worker.call("$/ping")["result"] == {}
        worker.close_stdin()
        assert worker.control.wait_closed(5.0)
        rest = [item.message for item in worker.control.items[1:]]
        assert rest == [{"jsonrpc": "2.0", "id": 1, "result": {}}], worker.control.items


TEXT_VARIABLES = [
    "ASPECT_IPC_WORKER_ID",
    "ASPECT_IPC_NAMESPACE",
    "ASPECT_IPC_DATA_PATH",
]


# Node is not among them: process.env has replaced invalid bytes by U+FFFD before a worker can
# see them (spec 5.1 says so); the parent's side, all three languages, is test_locale.py.
@pytest.mark.parametrize("name", ["python", "go"])
@pytest.mark.parametrize("variable", TEXT_VARIABLES)
def test_a_name_that_is_not_utf8_refuses_to_start(
    name: str, variable: str, tmp_path: Path
) -> None:
    # The byte 0xF6 is 'ö' in Latin-1: what a parent encoding by its locale would have sent.
    path = os.fsencode(tmp_path) + b"/w\xf6rker.sock"
    value = os.fsdecode(path if variable == "ASPECT_IPC_DATA_PATH" else b"w\xf6rker")
    with ForeignWorker(name, env={variable: value}) as worker:
        verdict = refused(worker, variable)
        if verdict is None and "not valid UTF-8" not in worker.stderr():
            verdict = f"stderr does not say why: {worker.stderr()[-500:]!r}"
        if verdict is None and "w\\xf6rker" not in worker.stderr():
            verdict = f"stderr does not quote the value: {worker.stderr()[-500:]!r}"
        assert verdict is None, verdict
        assert not os.path.exists(path)
