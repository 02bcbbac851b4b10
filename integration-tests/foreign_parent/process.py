"""One test worker spawned as spec section 5 and 7 say, and its control channel (section 1)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Self

from foreign_parent.data import DataConnection
from foreign_parent.locate import worker_command
from foreign_parent.mailbox import Item, Mailbox
from foreign_parent.wire import MISSING, line, request

__all__ = ["ForeignWorker", "alive", "exited", "unstopped"]

_UNSTOPPED: set[str] = set()  # directories of the workers started and not stopped yet


def unstopped() -> set[str]:
    """The private directories of the workers of this process that were not stopped."""
    return set(_UNSTOPPED)


# The intermediate of the parent-death cases: it starts the worker in a session of its own with
# a stdin pipe that only it holds (the worker's stdout and stderr are its own, i.e. ours), prints
# nothing, and waits. When it is killed, the worker's stdin reaches EOF.
LAUNCHER = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, start_new_session=True)
child.wait()
"""


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (/proc/<pid>/stat state field)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


def exited(pids: list[int], timeout: float) -> float | None:
    """Seconds until none of ``pids`` is alive, or None if some still are after ``timeout``."""
    start = time.monotonic()
    while any(alive(pid) for pid in pids):
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.005)
    return time.monotonic() - start


class ForeignWorker:
    """A test worker of ``language`` started with the spec's environment.

    ``env`` adds variables or, with a None value, removes them (``ASPECT_IPC_*`` included), after
    the spec's own: ``ASPECT_IPC_PROTOCOL``, ``WORKER_ID``, ``NAMESPACE``, ``DATA_PATH`` (a socket
    in a private temporary directory), ``TOKEN``, ``MAX_FRAME_SIZE`` and ``MAX_LINE_LENGTH``.
    ``via_launcher`` starts it through the intermediate above (the worker is then not our child).
    ``prepare`` is called with the data path before the worker starts (to put something there).
    ``read_control=False`` leaves stdout to the test (no reader thread, ``control`` stays empty).
    """

    def __init__(
        self,
        language: str,
        *,
        max_frame_size: int = 64 << 20,
        max_line_length: int = 1 << 20,
        env: dict[str, str | None] | None = None,
        worker_id: str | None = None,
        via_launcher: bool = False,
        prepare: Callable[[str], object] | None = None,
        read_control: bool = True,
    ) -> None:
        self.language = language
        self.directory = tempfile.mkdtemp(prefix="foreign-parent-")
        _UNSTOPPED.add(self.directory)
        self.data_path = os.path.join(self.directory, "data.sock")
        self.token = secrets.token_hex(32)
        self.worker_id = worker_id or f"fp-{uuid.uuid4().hex[:8]}"
        self.max_frame_size = max_frame_size
        self.max_line_length = max_line_length
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")
        }
        environment.update(
            ASPECT_IPC_PROTOCOL="1",
            ASPECT_IPC_WORKER_ID=self.worker_id,
            ASPECT_IPC_NAMESPACE="foreign-parent",
            ASPECT_IPC_DATA_PATH=self.data_path,
            ASPECT_IPC_TOKEN=self.token,
            ASPECT_IPC_MAX_FRAME_SIZE=str(max_frame_size),
            ASPECT_IPC_MAX_LINE_LENGTH=str(max_line_length),
        )
        for name, value in (env or {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        if prepare is not None:
            prepare(self.data_path)
        command = worker_command(language)
        if via_launcher:
            command = [sys.executable, "-c", LAUNCHER, *command]
        self.control = Mailbox(f"{language} control")
        self.stderr_lines: list[bytes] = []
        self.connections: list[DataConnection] = []
        self._next_id = 0
        self.ready_params: dict[str, Any] | None = None
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            start_new_session=True,
            bufsize=0,
        )
        self._pidfd = os.pidfd_open(self.process.pid)
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True)]
        if read_control:
            self._readers.append(
                threading.Thread(target=self._read_control, daemon=True)
            )
        for reader in self._readers:
            reader.start()

    # ---- the process -----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The worker's pid as announced in ``$/ready`` (the launcher's child), else ours."""
        if self.ready_params is not None:
            return int(self.ready_params["pid"])
        return self.process.pid

    def ready(self, timeout: float = 15.0) -> dict[str, Any]:
        """Waits for ``$/ready``, which must be the first line on stdout; returns its params."""
        try:
            first = self.control.next(timeout)
        except AssertionError as error:
            self.process.poll()
            raise AssertionError(
                f"{self.language} worker: no $/ready ({error}); exit code "
                f"{self.process.returncode}; stderr: {self.stderr()[-2000:]}"
            ) from None
        message = first.message
        assert isinstance(message, dict) and message.get("method") == "$/ready", (
            f"the first line on stdout is not $/ready: {first!r}; stderr: {self.stderr()}"
        )
        assert "id" not in message, f"$/ready must be a notification: {message}"
        self.ready_params = message["params"]
        return message["params"]  # type: ignore[no-any-return]

    def wait_exit(self, timeout: float) -> float | None:
        """The monotonic time at which our child exited, or None if it still runs after
        ``timeout`` seconds (pidfd: no polling delay in the measure)."""
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        if not readable:
            return None
        at = time.monotonic()
        self.process.wait()
        return at

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def stderr(self) -> str:
        """What the worker wrote on stderr so far (all of it, once it has exited)."""
        if self.process.poll() is not None:
            self._readers[0].join(
                timeout=1.0
            )  # the pipe's end: every line has been read
        else:
            time.sleep(
                0.05
            )  # lines just written may still be on their way to the reader
        return b"".join(self.stderr_lines).decode(errors="replace")

    def wait_stderr(self, text: str, timeout: float = 5.0) -> bool:
        """True once ``text`` has appeared on the worker's stderr (within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() > deadline:
                return False
        return True

    # ---- control channel -------------------------------------------------------------------
    def _read_control(self) -> None:
        assert self.process.stdout is not None
        for raw in _lines(self.process.stdout.fileno()):
            text = raw[:-1] if raw.endswith(b"\n") else raw
            try:
                item = Item(text, json.loads(text), None, time.monotonic())
            except ValueError as error:
                item = Item(
                    text, None, f"{type(error).__name__}: {error}", time.monotonic()
                )
            self.control.put(item)
        self.control.close()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in _lines(self.process.stderr.fileno()):
            self.stderr_lines.append(raw)

    def send(self, message: Any) -> None:
        """Writes ``message`` as one control line of compact JSON."""
        self.write(line(message))

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        view = memoryview(data)
        with contextlib.suppress(BrokenPipeError):
            while view:
                view = view[os.write(self.process.stdin.fileno(), view) :]

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def call(
        self, method: str, params: Any = MISSING, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Sends a control request with a fresh integer id; returns its response message."""
        request_id = self.new_id()
        self.send(request(method, params, request_id))
        return self.control.response(request_id, timeout)

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()

    # ---- data channel ----------------------------------------------------------------------
    def connect(self) -> DataConnection:
        """A new, unauthenticated connection to the data socket."""
        connection = DataConnection(self.data_path, f"{self.language} data")
        self.connections.append(connection)
        return connection

    def open_data(self) -> DataConnection:
        """A new connection on which ``$/hello`` was accepted."""
        connection = self.connect()
        answer = connection.hello(self.token)
        assert "result" in answer, f"$/hello refused: {answer}"
        return connection

    # ---- clean-up --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ends the worker whatever its state: stdin EOF, then SIGKILL to its process group."""
        for connection in self.connections:
            connection.close()
        self.close_stdin()
        if self.wait_exit(2.0) is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # children the worker left in its group
        for reader in self._readers:
            reader.join(timeout=2)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        os.close(self._pidfd)
        shutil.rmtree(self.directory, ignore_errors=True)
        _UNSTOPPED.discard(self.directory)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _lines(fd: int) -> Iterator[bytes]:
    """The lines read from ``fd`` (each with its ``\\n``; a last one without), until EOF."""
    pending = b""
    while chunk := os.read(fd, 1 << 20):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (part + b"\n" for part in complete)
    if pending:
        yield pending
