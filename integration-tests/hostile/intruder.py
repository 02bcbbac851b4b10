"""A foreign process that knocks on a worker's data socket (not the parent, no SDK).

Usage: ``intruder.py PATH`` with a JSON list of attempts on stdin. Each attempt opens its own
connection to PATH, writes ``send`` (hex; may be empty), then reads until the worker closes the
connection or ``wait`` seconds pass (default 10, a hang guard).

``intruder.py PATH hold N`` instead opens N connections that say nothing, prints ``connected``, and
keeps them open until its stdin reaches EOF, so that a test can use the worker meanwhile; then it
reports each of them as an attempt.

Prints one JSON object: ``{"attempts": [{"frames": [...], "closed": bool, "bytes": n}, ...]}``;
``frames`` are the MessagePack frames received, decoded (an undecodable one as ``{"raw": hex}``).
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import msgpack


def decode_frames(data: bytes) -> list[Any]:
    frames: list[Any] = []
    while len(data) >= 4:
        size = int.from_bytes(data[:4], "big")
        payload, data = data[4 : 4 + size], data[4 + size :]
        try:
            frames.append(msgpack.unpackb(payload, raw=False))
        except (ValueError, TypeError):  # msgpack's errors are ValueErrors
            frames.append({"raw": payload.hex()})
    if data:
        frames.append({"raw": data.hex()})
    return frames


def read_until_closed(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    sock.settimeout(wait)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionResetError:
        pass
    return received, True


def attempt(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        try:
            sock.sendall(bytes.fromhex(spec.get("send", "")))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker closed first: what it said before is still readable
        received, closed = read_until_closed(sock, float(spec.get("wait", 10)))
    return {"frames": decode_frames(received), "closed": closed, "bytes": len(received)}


def hold(path: str, count: int) -> list[dict[str, Any]]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        sockets.append(sock)
    print("connected", flush=True)
    sys.stdin.buffer.read()  # until the test closes our stdin
    results = []
    for sock in sockets:
        received, closed = read_until_closed(sock, 0.01)
        results.append(
            {
                "frames": decode_frames(received),
                "closed": closed,
                "bytes": len(received),
            }
        )
        sock.close()
    return results


def main() -> None:
    path = sys.argv[1]
    if sys.argv[2:3] == ["hold"]:
        results = hold(path, int(sys.argv[3]))
    else:
        results = [attempt(path, spec) for spec in json.loads(sys.stdin.buffer.read())]
    print(json.dumps({"attempts": results}, default=repr), flush=True)


if __name__ == "__main__":
    main()
