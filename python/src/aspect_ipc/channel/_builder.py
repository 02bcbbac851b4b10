"""ChannelBuilder: assembles a channel from a transport, a framing, a codec and a protocol."""

from __future__ import annotations

from typing import Any

from ..codecs import Codec, JsonCodec, MessagePackCodec
from ..framing import Framing, LengthPrefixedFraming, LineDelimitedFraming
from ..jsonrpc import JsonRpcProtocol
from ..transports import Transport
from ._channel import Channel

__all__ = ["ChannelBuilder"]


class ChannelBuilder:
    """Assembles a :class:`Channel` (the design's builder).

    Defaults: a transport that prefers lines (pipes: ``prefers_lines = True``) gets
    line-delimited JSON, any other transport length-prefixed MessagePack; the protocol is
    :class:`JsonRpcProtocol`.
    """

    def __init__(self) -> None:
        self._transport: Transport | None = None
        self._framing: Framing | None = None
        self._codec: Codec | None = None
        self._protocol: JsonRpcProtocol | None = None
        self._options: dict[str, Any] = {}

    def with_transport(self, transport: Transport) -> ChannelBuilder:
        """Use ``transport`` (required)."""
        self._transport = transport
        return self

    def with_framing(self, framing: Framing) -> ChannelBuilder:
        """Use ``framing`` instead of the transport's default."""
        self._framing = framing
        return self

    def with_codec(self, codec: Codec) -> ChannelBuilder:
        """Use ``codec`` instead of the framing's default (JSON on lines, else MessagePack)."""
        self._codec = codec
        return self

    def with_protocol(self, protocol: JsonRpcProtocol) -> ChannelBuilder:
        """Use ``protocol`` (it numbers this side's requests)."""
        self._protocol = protocol
        return self

    def with_options(
        self,
        *,
        name: str | None = None,
        max_concurrent_handlers: int | None = None,
        max_queued_notifications: int | None = None,
        default_timeout: float | None = None,
    ) -> ChannelBuilder:
        """Set the channel's name (used in errors and logs), limits and default timeout."""
        given = {
            "name": name,
            "max_concurrent_handlers": max_concurrent_handlers,
            "max_queued_notifications": max_queued_notifications,
            "default_timeout": default_timeout,
        }
        self._options.update({k: v for k, v in given.items() if v is not None})
        return self

    def build(self) -> Channel:
        """Return the channel; ``async with`` it to run it."""
        if self._transport is None:
            raise ValueError("ChannelBuilder needs a transport: call with_transport() first")
        on_lines = bool(getattr(self._transport, "prefers_lines", False))
        framing = self._framing or (LineDelimitedFraming() if on_lines else LengthPrefixedFraming())
        codec = self._codec or (
            JsonCodec() if isinstance(framing, LineDelimitedFraming) else MessagePackCodec()
        )
        return Channel(self._transport, framing, codec, self._protocol, **self._options)
