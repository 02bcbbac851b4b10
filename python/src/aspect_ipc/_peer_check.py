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
    peer = f"the socket's peer is pid {credentials.pid} (uid {credentials.uid})"
    if credentials.uid != os.getuid():
        why = f"{peer}, another user than this process's (uid {os.getuid()})"
    elif type(announced) is not int:
        why = (
            f"worker {worker_id} announced no pid in $/ready ({announced!r:.40}), which the check "
            f"needs (spec 7.2, 7.5); {peer}"
        )
    elif not is_descendant(announced, child_pid):
        why = (
            f"worker {worker_id} announced pid {announced} in $/ready, which is neither the "
            f"process started (pid {child_pid}) nor one of its descendants; {peer}"
        )
    elif credentials.pid != announced:
        why = (
            f"{peer}, not worker {worker_id} (pid {announced}, as announced in $/ready): "
            "another process listens on the worker's path"
        )
    else:
        return
    raise Unauthorized(ErrorCode.UNAUTHORIZED, f"unauthorized peer on {path}: {why}")
