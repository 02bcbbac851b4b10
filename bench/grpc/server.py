"""The benchmark's gRPC peer in Python: grpcio's server, one raw-bytes echo method on a Unix socket.

Like server.go: no generated code. ``grpc.method_handlers_generic_handler`` serves
/bench.Echo/Echo with no request deserializer and no response serializer, so the handler gets the
message bytes and returns them untouched. Started by bench/grpc_links.py as
``python bench/grpc/server.py SOCKET``; prints "ready" once it listens and serves until stdin is
closed (its parent went away).
"""

from __future__ import annotations

import sys
from concurrent import futures

import grpc

MAX_MESSAGE = 64 << 20
"""Allows the benchmark's largest echo (16 MiB) and its gRPC overhead."""

SERVICE, METHOD = "bench.Echo", "Echo"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def main(socket_path: str) -> None:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    # Threads serve the requests in flight (up to the benchmark's 64); the GIL makes them take
    # turns, as in any grpcio server.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
    )
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin or goes away
    server.stop(grace=None)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: server.py SOCKET_PATH")
    main(sys.argv[1])
