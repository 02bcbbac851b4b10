"""The peer check of spec 7.5: is the process on the data socket the worker we started?"""

from __future__ import annotations

import os
from typing import Any

from ._process import is_descendant
from .errors import Unauthorized
from .jsonrpc import ErrorCode
from .transports import SocketTransport

__all__ = ["check_peer"]


def check_peer(
    transport: SocketTransport, path: str, announced: Any, child_pid: int, worker_id: str
) -> None:
    """Refuse a peer that is not the worker: another user, or a process that is neither the pid
    the worker announced in ``$/ready`` nor a descendant of the process we started.

    Where the OS does not tell who the peer is (no ``SO_PEERCRED``), the token alone decides.

    Raises:
        Unauthorized: the peer is someone else (the caller closes the connection).
    """
    credentials = transport.peer_credentials()
    if credentials is None:
        return
    if (
        credentials.uid != os.getuid()
        or credentials.pid != announced
        or not (isinstance(announced, int) and is_descendant(announced, child_pid))
    ):
        raise Unauthorized(
            ErrorCode.UNAUTHORIZED,
            f"unauthorized peer on {path}: pid {credentials.pid} uid "
            f"{credentials.uid} is not worker {worker_id} (pid {announced}, child of "
            f"{child_pid})",
        )
