"""Channels: JSON-RPC 2.0 over a framed, encoded transport (see :mod:`._channel`).

The parts, as in the Node SDK's ``channel/``: :mod:`._core` (shared state, close),
:mod:`._outbox` (the write queue), :mod:`._outgoing` (our requests and notifications),
:mod:`._pending` (their answers and deadlines), :mod:`._inbound` (the read loop),
:mod:`._dispatch` (the peer's messages), :mod:`._handlers` (handlers and the HandlerTable),
:mod:`._builder` (ChannelBuilder), :mod:`._stream_io` and :mod:`._stream_ends` (streams, spec 13).
"""

from __future__ import annotations

from ._builder import ChannelBuilder
from ._channel import Channel
from ._core import BadInputHook
from ._dispatch import current_request
from ._handlers import Handler, HandlerTable, check_request_method, check_user_method
from ._stream_ends import RequestStreams, StreamReader, StreamWriter, current_streams
from ._stream_io import StreamCall

__all__ = [
    "BadInputHook",
    "Channel",
    "ChannelBuilder",
    "Handler",
    "HandlerTable",
    "RequestStreams",
    "StreamCall",
    "StreamReader",
    "StreamWriter",
    "check_request_method",
    "check_user_method",
    "current_request",
    "current_streams",
]
