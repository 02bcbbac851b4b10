"""The ``aspect-ipc`` command, run for real: the console script and ``python -m aspect_ipc``,
against the Python, Node and Go test workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _procfs import alive, children_of
from conftest import ROOT, WORKERS

SCRIPT = Path(sys.executable).parent / "aspect-ipc"
MODULE = [sys.executable, "-m", "aspect_ipc"]


def script() -> list[str]:
    if not SCRIPT.exists():
        pytest.fail(
            f"{SCRIPT} is missing: run make setup-python (pip install -e 'python[dev]')"
        )
    return [str(SCRIPT)]


def run(
    entry: list[str], *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*entry, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("via", ["control", "data"])
def test_call_add_and_echo(language: str, via: str, namespace: str) -> None:
    command = WORKERS[language]
    options = ["--namespace", namespace, *(["--data"] if via == "data" else [])]
    added = run(script(), "call", *options, "--", *command, "add", '{"a": 2, "b": 40}')
    assert json.loads(ok(added)) == 42
    value = {"text": "héllo", "list": [1, 2.5, None, True], "big": 18446744073709551615}
    echoed = run(MODULE, "call", *options, "--", *command, "echo", json.dumps(value))
    assert json.loads(ok(echoed)) == value
    by_position = run(script(), "call", *options, "--", *command, "echo", "[1, 2]")
    assert json.loads(ok(by_position)) == [1, 2]


def test_socket_dir_puts_the_data_socket_there(
    language: str, namespace: str, tmp_path: Path
) -> None:
    # With /tmp read-only, the error advised ProcessManager(socket_dir=...), which a command-line
    # user cannot pass (deployment drill).
    directory = tmp_path / "sockets"
    directory.mkdir(mode=0o700)
    command = WORKERS[language]
    options = ["--namespace", namespace, "--socket-dir", str(directory), "--data"]
    path = ok(
        run(
            script(),
            "call",
            *options,
            "--",
            *command,
            "getEnv",
            '{"name": "ASPECT_IPC_DATA_PATH"}',
        )
    )
    assert json.loads(path) == str(directory / f"{namespace}-worker.sock")
    assert list(directory.iterdir()) == []  # removed once the worker stopped


def test_a_socket_dir_too_long_is_a_usage_error(namespace: str) -> None:
    too_long = "/tmp/" + "d" * 120
    result = run(
        script(), "call", "--socket-dir", too_long, "--data", "--", "w", "echo"
    )
    assert result.returncode == 2, result.stderr
    assert "socket_dir: socket directory" in result.stderr
    assert (
        "is too long: no socket name fits within the 107-byte path limit"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_binary_travels_as_bin_objects_on_data(language: str, namespace: str) -> None:
    command = WORKERS[language]
    params = '{"blob": {"$bin": "00ff10"}}'
    result = run(
        script(),
        "call",
        "--data",
        "--namespace",
        namespace,
        "--",
        *command,
        "echo",
        params,
    )
    assert json.loads(ok(result)) == {"blob": {"$bin": "00ff10"}}


def test_params_option_and_pretty_output(namespace: str) -> None:
    result = run(
        script(),
        "call",
        "--pretty",
        "--params",
        '{"a": 1, "b": 2}',
        "--namespace",
        namespace,
        "--",
        *WORKERS["go"],
        "add",
    )
    assert ok(result) == "3\n"
    info = run(
        script(),
        "call",
        "--pretty",
        "--namespace",
        namespace,
        "--",
        *WORKERS["go"],
        "info",
    )
    text = ok(info)
    assert text.startswith("{\n  ") and json.loads(text)["language"] == "go"
    assert not alive(json.loads(text)["pid"])


def test_remote_error_exits_1_naming_the_method(language: str, namespace: str) -> None:
    command = WORKERS[language]
    params = '{"message": "the sky fell"}'
    result = run(
        script(), "call", "--namespace", namespace, "--", *command, "fail", params
    )
    assert result.returncode == 1
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, result.stderr
    assert (
        "'fail'" in error[0]
        and "the sky fell" in error[0]
        and "control channel" in error[0]
    )


def test_worker_that_does_not_exist_is_a_start_up_failure(namespace: str) -> None:
    missing = str(ROOT / "no-such-worker")
    for entry in (script(), MODULE):
        result = run(entry, "call", "--namespace", namespace, "--", missing, "echo")
        assert result.returncode == 3, result.stderr
        assert "error: " in result.stderr and missing in result.stderr
        pinged = run(entry, "ping", "--namespace", namespace, "--", missing)
        assert pinged.returncode == 3 and missing in pinged.stderr


def test_worker_exiting_during_start_up_is_a_start_up_failure(namespace: str) -> None:
    result = run(
        script(),
        "ping",
        "--namespace",
        namespace,
        "--env",
        "TEST_EXIT_BEFORE_READY=7",
        "--",
        *WORKERS["python"],
    )
    assert result.returncode == 3
    assert "exiting early" in result.stderr  # the worker's own words, forwarded


def test_env_and_cwd_reach_the_worker(namespace: str) -> None:
    worker_dir = ROOT / "integration-tests/workers/python"
    result = run(
        script(),
        "call",
        "--namespace",
        namespace,
        "--env",
        "CLI_ONE=1",
        "--env",
        "CLI_TWO=a=b",
        "--cwd",
        str(worker_dir),
        "--",
        sys.executable,
        "worker.py",  # found only if the worker runs in --cwd
        "getEnv",
        '{"name": "CLI_TWO"}',
    )
    assert json.loads(ok(result)) == "a=b"


def test_ping_prints_the_ready_info_and_the_time(language: str, namespace: str) -> None:
    result = run(MODULE, "ping", "--namespace", namespace, "--", *WORKERS[language])
    lines = ok(result).splitlines()
    fields = dict(line.split(": ", 1) for line in lines)
    assert (
        fields["protocol"]
        and fields["sdk"].startswith("aspect-ipc")
        and fields["sdkVersion"]
    )
    assert fields["language"] == language
    assert fields["dataPath"] == f"/tmp/{namespace}-worker.sock"
    assert re.fullmatch(r"\d+(\.\d)? ms", fields["spawn to ready"])
    assert lines[-1].startswith("spawn to ready: ")
    assert not alive(int(fields["pid"]))


def test_ping_json_and_a_control_only_worker(namespace: str) -> None:
    result = run(
        script(),
        "ping",
        "--json",
        "--no-data",
        "--namespace",
        namespace,
        "--",
        *WORKERS["go"],
    )
    info = json.loads(ok(result))
    assert info["language"] == "go" and info["dataPath"] is None
    assert info["spawnToReadyMs"] > 0


def test_timeout_exits_4(namespace: str) -> None:
    params = '{"seconds": 30, "tag": "t"}'
    result = run(
        script(),
        "call",
        "--timeout",
        "0.5",
        "--namespace",
        namespace,
        "--",
        *WORKERS["go"],
        "sleep",
        params,
    )
    assert result.returncode == 4
    assert "error: " in result.stderr and "'sleep'" in result.stderr


def test_a_crash_during_the_call_exits_5(namespace: str) -> None:
    params = '{"code": 9}'
    result = run(
        script(),
        "call",
        "--namespace",
        namespace,
        "--",
        *WORKERS["python"],
        "crash",
        params,
    )
    assert result.returncode == 5, result.stderr
    assert "error: " in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["call", "--", *WORKERS["go"], "echo", "{not json"],
        ["call", "--data", "--", *WORKERS["go"], "echo", '{"x": {"$bin": "zz"}}'],
        ["call", "--params", '"a string"', "--", *WORKERS["go"], "echo"],
        ["call", "--", "echo"],
        ["call", "--timeout", "-1", "--", *WORKERS["go"], "echo"],
        ["call", "--env", "NOEQUALS", "--", *WORKERS["go"], "echo"],
        ["call", *WORKERS["go"], "echo"],
        ["ping"],
        ["launch", "--", *WORKERS["go"]],
        # Not JSON, though Python's json module reads them; what the command prints must be.
        ["call", "--", *WORKERS["go"], "echo", "[NaN]"],
        ["call", "--", *WORKERS["go"], "echo", "[-Infinity]"],
        ["call", "--", *WORKERS["go"], "echo", "[1e400]"],
        # No method to send: empty, or the protocol's own ($/...).
        ["call", "--", *WORKERS["go"], ""],
        ["call", "--", *WORKERS["go"], "$/shutdown"],
        # A namespace that is not text (the byte 0xff): it was a traceback, exit code 1.
        ["call", "--namespace", os.fsdecode(b"a\xffb"), "--", *WORKERS["go"], "echo"],
        # Params that are one binary value, not an object or array: it was a traceback.
        ["call", "--data", "--", *WORKERS["go"], "echo", '{"$bin": "00ff"}'],
        ["call", "--data", "--params", '{"$bin": ""}', "--", *WORKERS["go"], "echo"],
    ],
)
def test_usage_errors_exit_2_before_starting_anything(args: list[str]) -> None:
    result = run(script(), *args)
    assert result.returncode == 2, result
    assert "usage: aspect-ipc" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["call", "--params", "42", "--", *WORKERS["go"], "echo"],
            "--params '42' must be",
        ),
        (
            ["call", "--params", "{oops", "--", *WORKERS["go"], "echo"],
            "--params '{oops' is not",
        ),
        (["call", "--", *WORKERS["go"], "echo", "{oops"], "json-params '{oops' is not"),
        (
            ["call", "--data", "--", *WORKERS["go"], "echo", '{"$bin": "00"}'],
            'json-params \'{"$bin": "00"}\' is one binary value',
        ),
    ],
)
def test_params_usage_error_names_where_the_params_came_from(
    args: list[str], named: str
) -> None:
    result = run(script(), *args)
    assert result.returncode == 2, result
    assert f"aspect-ipc call: error: {named}" in result.stderr


def test_help_explains_every_option_and_exit_code() -> None:
    top = ok(run(script(), "--help"))
    assert "call" in top and "ping" in top
    call = ok(run(script(), "call", "--help"))
    ping = ok(run(MODULE, "ping", "--help"))
    common = ["--startup-timeout", "--namespace", "--env", "--cwd"]
    for option in ["--data", "--timeout", "--params", "--pretty", *common]:
        assert option in call
    for option in ["--no-data", "--json", *common]:
        assert option in ping
    for text in (top, call, ping):
        for code in ("0", "1", "2", "3", "4", "5", "6", "130", "143"):
            assert re.search(rf"^\s+{code}\s+\S", text, re.MULTILINE), (code, text)
    assert "<command...> <method> [json-params]" in call
    assert "the last argument is the method" in call  # the rule that splits them
    assert "$bin" in call


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_ctrl_c_stops_the_worker_and_leaves_nothing(
    namespace: str, signum: signal.Signals, code: int
) -> None:
    socket = Path(f"/tmp/{namespace}-worker.sock")
    params = '{"seconds": 60, "tag": "c"}'
    cli = subprocess.Popen(
        [
            *script(),
            "call",
            "--data",
            "--namespace",
            namespace,
            "--",
            *WORKERS["node"],
            "sleep",
            params,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert socket.exists(), "the worker did not become ready"
        workers = children_of(cli.pid)
        assert len(workers) == 1
        cli.send_signal(signum)
        _, stderr = cli.communicate(timeout=15)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == code, stderr
    assert "interrupted" in stderr
    assert not any(alive(pid) for pid in workers)
    assert not socket.exists()
    assert not [p for p in os.listdir("/tmp") if p.startswith(namespace)]


def test_a_line_on_the_workers_stdout_is_marked_as_such(
    namespace: str, tmp_path: Path
) -> None:
    # docs/cli.md: stderr lines are passed on as "worker: ", a stray stdout line as
    # "worker stdout: " (it is not where a worker writes its diagnostics).
    result = run(
        script(),
        "call", "--namespace", namespace, "--env", "TEST_JUNK_STDOUT=junk line, not JSON",
        "--", *WORKERS["python"], "echo", "[1]",
    )  # fmt: skip
    assert ok(result) == "[1]\n"
    assert "worker stdout: junk line, not JSON" in result.stderr.splitlines()


def test_an_empty_namespace_is_the_default(namespace: str) -> None:
    # docs/cli.md: "default, and for an empty NAME, aspect-ipc-cli-<pid>".
    result = run(
        script(), "call", "--namespace", "", "--", *WORKERS["go"], "echo", "[1]"
    )
    assert json.loads(ok(result)) == [1]


def test_a_result_that_cannot_be_written_exits_6_and_says_so() -> None:
    call = [*script(), "call", "--", *WORKERS["go"], "echo", "[1]"]
    with open("/dev/full", "w") as full:  # every write fails: ENOSPC
        result = subprocess.run(
            call,
            check=False,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert result.returncode == 6, result.stderr
    assert "error: the result cannot be written to stdout: No space left on device" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    closed = subprocess.run(  # stdout closed: the result was lost, and the code said 0
        ["sh", "-c", '"$@" >&-', "sh", *call],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert closed.returncode == 6, closed.stderr
    assert "error: the result cannot be written: stdout is closed" in closed.stderr


def test_with_stderr_closed_nothing_but_the_result_goes_to_stdout() -> None:
    # "On failure nothing goes to stdout": the error line went there when stderr was closed.
    crash = [*script(), "call", "--", *WORKERS["python"], "crash", '{"code": 3}']
    result = subprocess.run(
        ["sh", "-c", '"$@" 2>&-', "sh", *crash],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 5
    assert result.stdout == ""


def test_a_second_ctrl_c_while_stopping_changes_nothing(namespace: str) -> None:
    # It was a traceback (KeyboardInterrupt inside the event loop) and death by SIGINT.
    cli = subprocess.Popen(
        [
            *script(),
            "call",
            "--namespace",
            namespace,
            "--",
            *WORKERS["python"],
            "freeze",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
        while not children_of(cli.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [worker] = children_of(cli.pid)
        time.sleep(1)  # the request is sent and the worker frozen (deaf to SIGTERM)
        cli.send_signal(signal.SIGINT)
        time.sleep(0.5)  # stopping: the worker takes its grace period, then SIGKILL
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130, stderr
    assert "aspect-ipc: still stopping the worker" in stderr
    assert "Traceback" not in stderr
    assert not alive(worker)


_UNDECODABLE = """
import json, os, sys
out = sys.stdout.buffer
ready = {"protocol": 1, "sdk": "raw", "sdkVersion": "0", "language": "python",
         "pid": os.getpid(), "dataPath": None}
out.write(json.dumps({"jsonrpc": "2.0", "method": "$/ready", "params": ready}).encode() + b"\\n")
out.flush()
for line in sys.stdin.buffer:
    msg = json.loads(line)
    if msg.get("method") == "$/shutdown":
        out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}).encode() + b"\\n")
        out.flush()
        sys.exit(0)
    if "id" in msg:  # an integer no SDK may send (spec 3.1)
        out.write(b'{"jsonrpc":"2.0","id":%d,"result":[18446744073709551616]}\\n' % msg["id"])
        out.flush()
"""


def test_an_answer_that_does_not_decode_is_said_once(tmp_path: Path) -> None:
    # It was printed twice: a log line of the channel's, then "error:" with the same text.
    worker = tmp_path / "undecodable.py"
    worker.write_text(_UNDECODABLE)
    result = run(script(), "call", "--", sys.executable, str(worker), "anything")
    assert result.returncode == 5, result.stderr
    assert result.stderr.count("does not decode") == 1, result.stderr
    assert result.stderr.startswith("error: 'anything' failed: "), result.stderr


def test_text_is_text_whatever_the_locale(namespace: str) -> None:
    # Under LC_ALL=C with UTF-8 mode off Python hands non-ASCII arguments over as lone
    # surrogates: every one was refused ("holds a lone surrogate"). And a result's text was
    # printed as \u escapes (text drill).
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    value = {"s": "héllo 😀 עברית"}
    done = subprocess.run(
        [*script(), "call", "--namespace", f"{namespace}-ñ", "--", *WORKERS["go"]]
        + ["echo", json.dumps(value, ensure_ascii=False)],
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert done.stdout.decode("utf-8") == '{"s": "héllo 😀 עברית"}\n'


def test_a_long_stderr_line_is_passed_on_whole(namespace: str) -> None:
    # It comes in 16 KiB pieces (output events); the command writes it back as one line.
    text = "y" * 40_000
    result = run(
        script(),
        "call", "--namespace", namespace,
        "--", *WORKERS["go"], "stderr", json.dumps({"text": text}),
    )  # fmt: skip
    assert ok(result) == "null\n"
    assert f"worker: {text}" in result.stderr.splitlines()
