"""A worker that lies to its parent: plain Python, no aspect-ipc SDK, wrong on purpose.

``liar.py [START]`` runs the worker side of spec/PROTOCOL.md by hand, so that it can break it.

START says how start-up goes (default ``honest``):

| START | what the liar does |
|---|---|
| ``honest`` | listens on ``ASPECT_IPC_DATA_PATH``, sends ``$/ready``, answers ``$/hello`` |
| ``ready-protocol-2`` | announces protocol 2 in ``$/ready`` |
| ``ready-protocol-float`` | announces protocol ``1.0`` (a float: not 1, spec 3.1) |
| ``ready-not-a-map`` | sends ``$/ready`` with params ``[1, 2]`` |
| ``ready-twice`` | sends a second ``$/ready`` (another ``dataPath``) once running |
| ``hello-other-worker`` | answers ``$/hello`` as another worker (``workerId``) |
| ``hello-protocol-2`` | answers ``$/hello`` with ``protocol`` 2 |
| ``ready-no-data-path`` | does not listen; ``$/ready`` has ``dataPath`` null |
| ``ready-other-path`` | listens on ``<ASPECT_IPC_DATA_PATH>.x`` instead, and announces that |
| ``ready-not-listening`` | announces the data path it was given, but never listens on it |
| ``ready-parent-pid`` | announces its parent's pid instead of its own |
| ``ready-no-pid`` | announces no pid |
| ``ready-as-request`` | sends ``$/ready`` as a request (with an id) |
| ``ready-no-protocol`` / ``ready-protocol-string`` | ``$/ready`` without ``protocol`` / with ``"1"`` |
| ``squatted`` | does not listen: waits until someone else listens on the data path, then |
|  | sends ``$/ready`` with its own pid |
| ``hello-refuse`` / ``hello-version`` | answers ``$/hello`` with -32003 / -32007 |
| ``hello-silent`` / ``hello-close`` | never answers ``$/hello`` / closes the connection on it |
| ``hello-oversize`` | answers ``$/hello`` with a frame header above the parent's limit |
| ``stdout-close`` | closes its stdout once ready, and lives on |

Once running, requests on either channel are answered by method:

| method | answer |
|---|---|
| ``echo`` | the params |
| ``dupe`` | the params, then a second response ``"DUPLICATE"`` with the same id |
| ``unknownIds`` | responses and errors to ids never issued, then the params |
| ``badResponse`` | ``{"shape": s}``: one malformed response with this id (see ``_bad_response``) |
| ``garbage`` | undecodable and invalid messages on that channel, then how many it sent |
| ``oversize`` | control: a line over 1 MiB, then the params; data: a header above the limit |
| ``oversizeAnswer`` | control: answers with a result line over the limit (spec 4.9 says -32005) |
| ``flood`` | ``{"count": n, "size": s}``: n notifications ``tick`` ``{"i", "pad"}``, then n |
| ``hugeNumber`` | control: a notification ``tick`` with a 5000-digit integer, then the params |
| ``loneSurrogate`` | control: calls the parent's ``echo`` with ``["\\ud800"]``, then the params |
| ``$/ping``, ``$/shutdown`` | as the spec says (shutdown exits with code 0) |

Whatever the parent sends that is not a request (its replies to the garbage, for instance) is
reported on stderr as ``<channel> got <json>``, so that a test can read it from the parent's
``output`` events. The liar exits when its stdin reaches EOF, and removes its socket file.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from typing import Any

import msgpack

START = sys.argv[1] if len(sys.argv) > 1 else "honest"
DATA_PATH = os.environ.get("ASPECT_IPC_DATA_PATH", "")
TOKEN = os.environ.pop("ASPECT_IPC_TOKEN", "")
MAX_FRAME = int(os.environ.get("ASPECT_IPC_MAX_FRAME_SIZE", str(64 << 20)))
MAX_LINE = 1 << 20


def log(text: str) -> None:
    os.write(2, text.encode("utf-8", "replace") + b"\n")


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


class Liar:
    def __init__(self) -> None:
        self.server: socket.socket | None = None
        self.listen_path = ""
        self.conn: socket.socket | None = None
        self.greeted = False
        self.control_in = b""
        self.data_in = b""
        self.stdout_open = True

    # -- output ---------------------------------------------------------------------------------

    def send(self, channel: str, message: Any) -> None:
        if channel == "control":
            self.write_stdout(
                json.dumps(message, separators=(",", ":")).encode() + b"\n"
            )
        else:
            self.send_data(frame(msgpack.packb(message, use_bin_type=True)))

    def write_stdout(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.stdout_open:
            view = view[os.write(1, view) :]

    def send_data(self, data: bytes) -> None:
        if self.conn is not None:
            try:
                self.conn.sendall(data)
            except OSError:
                self.drop_connection()

    def raw(self, channel: str, data: bytes) -> None:
        if channel == "control":
            self.write_stdout(data)
        else:
            self.send_data(data)

    # -- start-up -------------------------------------------------------------------------------

    def listen(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        os.chmod(path, 0o600)
        self.server.listen(8)
        self.listen_path = path

    def start(self) -> None:
        announced: str | None = DATA_PATH
        pid = os.getpid()
        if START == "ready-no-data-path":
            announced = None
        elif START == "ready-other-path":
            announced = DATA_PATH + ".x"
            self.listen(announced)
        elif START == "ready-not-listening":
            pass
        elif START == "squatted":
            deadline = time.monotonic() + 10
            while not os.path.exists(DATA_PATH) and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            self.listen(DATA_PATH)
        if START == "ready-parent-pid":
            pid = os.getppid()
        protocols = {
            "ready-protocol-2": 2,
            "ready-protocol-float": 1.0,
            "ready-protocol-string": "1",
        }
        params: Any = {
            "protocol": protocols.get(START, 1),
            "sdk": "liar",
            "sdkVersion": "0",
            "language": "python",
            "pid": pid,
            "dataPath": announced,
        }
        if START == "ready-no-protocol":
            del params["protocol"]
        if START == "ready-no-pid":
            del params["pid"]
        if START == "ready-not-a-map":
            params = [1, 2]
        ready = {"jsonrpc": "2.0", "method": "$/ready", "params": params}
        if START == "ready-as-request":
            ready["id"] = 1
        self.send("control", ready)
        if START == "ready-twice":
            again = {**params, "dataPath": "/tmp/elsewhere.sock"}
            self.send(
                "control", {"jsonrpc": "2.0", "method": "$/ready", "params": again}
            )

    def hello(self, message: Any) -> None:
        request_id = message.get("id") if isinstance(message, dict) else None
        params = message.get("params") if isinstance(message, dict) else None
        good = (
            isinstance(params, dict)
            and message.get("method") == "$/hello"
            and params.get("token") == TOKEN
        )
        if START == "hello-silent":
            return
        if START == "hello-close" or not good:
            self.drop_connection()
            return
        if START == "hello-oversize":
            self.send_data((MAX_FRAME + 1).to_bytes(4, "big"))
            return
        if START in ("hello-refuse", "hello-version"):
            code = -32003 if START == "hello-refuse" else -32007
            error = {"code": code, "message": "no", "data": {"supported": [7]}}
            self.send("data", {"jsonrpc": "2.0", "id": request_id, "error": error})
            return
        result = {
            "protocol": 2 if START == "hello-protocol-2" else 1,
            "workerId": os.environ.get("ASPECT_IPC_WORKER_ID"),
            "pid": 0,
        }
        if START == "hello-other-worker":
            result["workerId"] = "somebody-else"
        self.greeted = True
        self.send("data", {"jsonrpc": "2.0", "id": request_id, "result": result})
        if START == "stdout-close":
            os.close(1)
            self.stdout_open = False

    # -- requests -------------------------------------------------------------------------------

    def handle(self, channel: str, message: Any) -> None:
        if not (isinstance(message, dict) and "method" in message and "id" in message):
            log(f"{channel} got {json.dumps(message, default=repr)}")
            return
        request_id, method = message["id"], message["method"]
        params: Any = message.get("params")

        def answer(result: Any) -> None:
            self.send(channel, {"jsonrpc": "2.0", "id": request_id, "result": result})

        if method == "echo" or method == "$/ping":
            answer({} if method == "$/ping" else params)
        elif method == "$/shutdown":
            answer(None)
            self.exit()
        elif method == "dupe":
            answer(params)
            answer("DUPLICATE")
        elif method == "unknownIds":
            for other in (10**9, "nope", -7):
                self.send(channel, {"jsonrpc": "2.0", "id": other, "result": "stray"})
            error = {"code": -32000, "message": "stray"}
            self.send(channel, {"jsonrpc": "2.0", "id": 10**9 + 1, "error": error})
            self.send(channel, {"jsonrpc": "2.0", "id": None, "error": error})
            answer(params)
        elif method == "badResponse":
            self.send(channel, _bad_response(request_id, params["shape"]))
        elif method == "garbage":
            items = CONTROL_GARBAGE if channel == "control" else DATA_GARBAGE
            for item in items:
                self.raw(channel, item)
            answer(len(items))
        elif method == "oversize":
            if channel == "control":
                self.write_stdout(b"x" * (MAX_LINE + 16) + b"\n")
                answer(params)
            else:
                self.send_data((MAX_FRAME + 1).to_bytes(4, "big") + b"\x00" * 64)
        elif method == "oversizeAnswer" and channel == "control":
            pad = "x" * (MAX_LINE + 16)
            self.send(channel, {"jsonrpc": "2.0", "id": request_id, "result": pad})
        elif method == "hugeNumber" and channel == "control":
            digits = b"1" * 5000  # legal JSON; Python refuses to convert it by default
            self.write_stdout(
                b'{"jsonrpc":"2.0","method":"tick","params":[' + digits + b"]}\n"
            )
            answer(params)
        elif method == "loneSurrogate" and channel == "control":
            # Legal JSON text whose string no UTF-8 encoder can write back.
            self.write_stdout(
                b'{"jsonrpc":"2.0","id":"s1","method":"echo","params":["\\ud800"]}\n'
            )
            answer(params)
        elif method == "flood":
            self.flood(channel, int(params["count"]), int(params["size"]))
            answer(params["count"])
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            self.send(channel, {"jsonrpc": "2.0", "id": request_id, "error": error})

    def flood(self, channel: str, count: int, size: int) -> None:
        pad, batch = "x" * size, []
        for i in range(count):
            note = {"jsonrpc": "2.0", "method": "tick", "params": {"i": i, "pad": pad}}
            if channel == "control":
                batch.append(json.dumps(note, separators=(",", ":")).encode() + b"\n")
            else:
                batch.append(frame(msgpack.packb(note)))
            if len(batch) == 1000 or i == count - 1:
                self.raw(channel, b"".join(batch))
                batch = []

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        while True:
            sources: list[Any] = [0]
            if self.server is not None:
                sources.append(self.server)
            if self.conn is not None:
                sources.append(self.conn)
            for source in select.select(sources, [], [])[0]:
                if source == 0:
                    self.read_control()
                elif source is self.server:
                    conn, _ = self.server.accept()
                    if self.conn is None:
                        self.conn = conn
                    else:
                        conn.close()
                else:
                    self.read_data()

    def read_control(self) -> None:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            self.exit()
        self.control_in += chunk
        while b"\n" in self.control_in:
            line, self.control_in = self.control_in.split(b"\n", 1)
            if line.strip():
                self.handle("control", json.loads(line))

    def read_data(self) -> None:
        assert self.conn is not None
        try:
            chunk = self.conn.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.drop_connection()
            return
        self.data_in += chunk
        while len(self.data_in) >= 4 and self.conn is not None:
            size = int.from_bytes(self.data_in[:4], "big")
            if len(self.data_in) < 4 + size:
                return
            payload, self.data_in = self.data_in[4 : 4 + size], self.data_in[4 + size :]
            message = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if self.greeted:
                self.handle("data", message)
            else:
                self.hello(message)

    def drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.data_in = None, b""

    def exit(self) -> None:
        if self.listen_path and os.path.exists(self.listen_path):
            os.unlink(self.listen_path)
        os._exit(0)


def _bad_response(request_id: Any, shape: str) -> dict[str, Any]:
    """A response to ``request_id`` that breaks spec 4.2 in one way."""
    base: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    shapes: dict[str, dict[str, Any]] = {
        "error-not-map": {**base, "error": "boom"},
        "code-not-int": {**base, "error": {"code": "x", "message": "boom"}},
        "message-not-str": {**base, "error": {"code": -1, "message": 5}},
        "result-and-error": {
            **base,
            "result": 1,
            "error": {"code": -1, "message": "m"},
        },
        "no-jsonrpc": {"id": request_id, "result": "forged"},
        "id-as-string": {**base, "id": str(request_id), "result": "forged"},
        "id-as-float": {**base, "id": float(request_id), "result": "forged"},
    }
    return shapes[shape]


CONTROL_GARBAGE = [
    b"\xff\xfe\xfd not UTF-8\n",
    b"not json at all\n",
    b"[1, 2, 3]\n",
    b'{"jsonrpc": "2.0"}\n',
    b'{"jsonrpc": "2.0", "method": 42, "id": 1}\n',
    b"\x00\x01\x02\x03\n",
]
DATA_GARBAGE = [
    frame(b"\xc1"),  # a byte MessagePack never uses
    frame(b"\x01\x02"),  # trailing bytes after the object
    frame(b"\xd4\x01\x00"),  # an ext type
    frame(b"\x81\x01\x02"),  # a map with an integer key
    frame(b"\xdb\xff\xff\xff\xff"),  # a str declaring 4 GiB, absent
    frame(msgpack.packb([{"jsonrpc": "2.0", "method": "x"}])),  # a batch
    frame(msgpack.packb({"jsonrpc": "2.0", "method": "x", "id": None})),  # a null id
]


if __name__ == "__main__":
    log(f"liar: starting as {START!r}")  # what a start-up error's stderr tail must show
    Liar().run()
