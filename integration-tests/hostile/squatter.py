"""A process outside the worker's tree that listens on the worker's data path first.

Usage: ``squatter.py PATH``. Binds PATH (mode 0600), prints ``listening``, and accepts every
connection, counting the bytes each one sends. When its stdin reaches EOF it removes PATH and prints
``{"connections": [bytes received on each, in order]}`` as one JSON line.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
from typing import Any


def main() -> None:
    path = sys.argv[1]
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(8)
    print("listening", flush=True)
    totals: dict[socket.socket, int] = {}  # every connection, in accept order
    live: set[socket.socket] = set()
    while True:
        sources: list[Any] = [0, server, *live]
        readable = select.select(sources, [], [])[0]
        if 0 in readable and not os.read(0, 4096):
            break
        if server in readable:
            conn, _ = server.accept()
            totals[conn] = 0
            live.add(conn)
        for conn in live.intersection(readable):
            chunk = conn.recv(65536)
            totals[conn] += len(chunk)
            if not chunk:
                live.discard(conn)
                conn.close()
    os.unlink(path)
    print(json.dumps({"connections": list(totals.values())}), flush=True)


if __name__ == "__main__":
    main()
