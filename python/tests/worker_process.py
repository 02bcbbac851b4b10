"""A worker process started the way a parent starts one, driven by hand from a test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aspect_ipc import MessagePackCodec
from aspect_ipc.framing import LengthPrefixedFraming
from workers import PYTHON_WORKER

CODEC, FRAMING = MessagePackCodec(), LengthPrefixedFraming()
TOKEN = "ab" * 32


class WorkerProcess:
    """A worker process started the way a parent starts one (own session, piped stdio)."""

    def __init__(self, args: list[str], tmp_path: Path, *, data: bool = True, **env: str) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ASPECT_IPC_")}
        self.path = str(tmp_path / "w.sock")
        if data:
            full |= {"ASPECT_IPC_DATA_PATH": self.path, "ASPECT_IPC_TOKEN": TOKEN}
        full |= env
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full,
            start_new_session=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        ready = json.loads(self.stdout.readline())
        assert ready["method"] == "$/ready", ready
        self.sock: socket.socket | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.stdin.flush()

    def receive(self) -> dict[str, Any]:
        return json.loads(self.stdout.readline())  # type: ignore[no-any-return]

    def connect(self) -> socket.socket:
        """Open and authenticate the data connection."""
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(self.path)
        params = {"token": TOKEN, "protocol": 1}
        sock.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "$/hello", "params": params}))
        self.decoder = FRAMING.decoder()
        assert "result" in read_frame(sock, self.decoder)
        self.sock = sock
        return sock

    def data_send(self, message: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.sendall(frame({"jsonrpc": "2.0", **message}))

    def data_receive(self) -> Any:
        assert self.sock is not None
        return read_frame(self.sock, self.decoder)

    def exit_time(self, start: float) -> tuple[int, float]:
        code = self.process.wait(timeout=30)
        return code, time.monotonic() - start

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.stdin, self.stdout, self.process.stderr, self.sock):
            if stream is not None:
                stream.close()


def frame(message: dict[str, Any]) -> bytes:
    return FRAMING.encode(CODEC.encode(message))


def read_frame(sock: socket.socket, decoder: Any = None) -> Any:
    """The next message on ``sock``; pass the same ``decoder`` to read several in a row."""
    decoder = decoder or FRAMING.decoder()
    while (payload := decoder.next_frame()) is None:
        chunk = sock.recv(65536)
        assert chunk, "the worker closed the data connection"
        decoder.feed(chunk)
    return CODEC.decode(payload)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Any]:
    workers: list[WorkerProcess] = []

    def start(args: list[str] | None = None, **kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(args or [PYTHON_WORKER], tmp_path, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.close()
