"""The worker's side of the handshake (spec 7): the ``$/ready`` params, the data connection's
first message ``$/hello``, and the reserved methods a data channel refuses."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import anyio

from .codecs import MessagePackCodec
from .constants import PRE_HELLO_MAX_FRAME_SIZE, PROTOCOL_VERSION, SDK_NAME, SDK_VERSION
from .errors import CodecError, FramingError, IpcError, RemoteError, TransportError
from .framing import LengthPrefixedDecoder, LengthPrefixedFraming
from .hello import ALREADY_AUTHENTICATED, UNDECODABLE, hello_verdict
from .jsonrpc import ErrorCode
from .transports import SocketTransport

__all__ = ["authenticate", "hello_again", "ready_params", "shutdown_on_data"]


async def authenticate(
    transport: SocketTransport,
    framing: LengthPrefixedFraming,
    *,
    token: str,
    worker_id: str,
    timeout: float,
    already_authenticated: Callable[[], bool],
    on_accept: Callable[[], None],
) -> LengthPrefixedDecoder | None:
    """Read the first frame and answer it per spec 7.4; the decoder if it was accepted.

    Until then a frame may not declare more than 64 KiB: a larger header closes the
    connection at once, silently, without reading further. ``on_accept`` runs before the
    answer is sent (the worker's ``data_ready`` and ``ready`` hooks); ``already_authenticated()``
    says, once the frame is read, whether another connection holds the data channel.
    """
    codec = MessagePackCodec()
    decoder = LengthPrefixedDecoder(min(PRE_HELLO_MAX_FRAME_SIZE, framing.max_frame_size))
    frame: bytes | bytearray | memoryview | None = None
    with anyio.move_on_after(timeout):
        try:
            while (frame := decoder.next_frame()) is None:
                data = await transport.receive()
                if not data:
                    return None
                decoder.feed(data)
        except (FramingError, TransportError):
            return None
    if frame is None:
        return None  # no $/hello within the hello timeout
    try:
        message = codec.decode(frame)
    except CodecError:
        message = UNDECODABLE
    verdict = hello_verdict(
        message,
        token=token,
        supported=[PROTOCOL_VERSION],
        worker_id=worker_id,
        pid=os.getpid(),
        already_authenticated=already_authenticated(),
    )
    if verdict.accept:
        on_accept()
    elif verdict.reply is not None and "error" in verdict.reply:
        # Spec 7.4: seen in the parent's logs, through our stderr. The message holds no token.
        message = verdict.reply["error"]["message"]
        print(f"aspect-ipc worker: data connection refused: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(IpcError):
        await transport.send_all(framing.encode_parts(codec.encode(verdict.reply)))
    if not verdict.accept:
        return None
    decoder.max_frame_size = framing.max_frame_size
    return decoder


def ready_params(data_path: str | None) -> dict[str, Any]:
    """The params of ``$/ready`` (spec 7.2)."""
    return {
        "protocol": PROTOCOL_VERSION,
        "sdk": SDK_NAME,
        "sdkVersion": SDK_VERSION,
        "language": "python",
        "pid": os.getpid(),
        "dataPath": data_path,
    }


def hello_again(params: Any) -> None:
    """``$/hello`` on an authenticated connection: refused."""
    raise RemoteError(*ALREADY_AUTHENTICATED)


def shutdown_on_data(params: Any) -> None:
    """``$/shutdown`` belongs on the control channel."""
    raise RemoteError(ErrorCode.METHOD_NOT_FOUND, "$/shutdown is a control-channel method")
