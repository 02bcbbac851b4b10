"""Codecs: values to bytes and back (spec section 3). Sans-IO.

Both codecs carry the JSON data model (null, bool, int, float, str, list, dict with str keys);
:class:`MessagePackCodec` adds binary (``bytes``, ``bytearray``, ``memoryview`` in, ``bytes`` out).
Anything else is refused on the sending side with :class:`CodecError`, before a byte is written,
naming the place in the message (``$.params.rows[3].when``) and the conversion to make; or it is
converted first by the codec's ``encode_hook`` (and maps after decoding by its ``decode_hook``:
see :mod:`._codec_hooks`).
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any, Protocol, runtime_checkable

import msgpack

from ._codec_checks import check_depth, check_structure, has_suspect, may_be_too_deep
from ._codec_hooks import (
    PLACEHOLDER_HEADER,
    DecodeHook,
    EncodeHook,
    apply_decode_hook,
    convert,
    without_large_binaries,
)
from ._codec_path import encode_error, refuse_json, refuse_msgpack
from ._compiled import DECLINED, fast_pack, fast_unpack
from ._framing_split import SplitFrame
from .constants import INT_MAX, INT_MIN, MAX_DEPTH
from .errors import CodecError

__all__ = ["Codec", "DecodeHook", "EncodeHook", "JsonCodec", "MessagePackCodec", "PartsCodec"]

Buffer = bytes | bytearray | memoryview
_CONTAINERS = (dict, list, tuple)


@runtime_checkable
class Codec(Protocol):
    """A serialization: ``encode`` a value to bytes, ``decode`` bytes to a value.

    Implementations raise :class:`CodecError` for values they cannot represent and for bytes they
    cannot decode.
    """

    name: str

    def encode(self, value: Any) -> bytes: ...
    def decode(self, data: Buffer) -> Any: ...


@runtime_checkable
class PartsCodec(Codec, Protocol):
    """A codec that can encode into several buffers (optional capability).

    ``encode_parts(value)`` returns buffers whose concatenation is ``encode(value)``, leaving
    large binaries uncopied: with a :class:`~aspect_ipc.framing.HeaderFraming` a channel writes
    them as they are.
    """

    def encode_parts(self, value: Any) -> list[Buffer]: ...


class JsonCodec:
    """UTF-8 JSON, compact, without NaN/Infinity and without binary (spec 3.1).

    Args:
        encode_hook: called with each value JSON cannot carry (a datetime, a set, an object...);
            returns a value it can, which is encoded (and checked) in its place, and which may
            itself hold values for the hook. Like ``json.dumps``'s ``default``.
        decode_hook: called with each decoded map, innermost first, the message itself last;
            its result replaces the map. Like ``json.loads``'s ``object_hook``: return the map
            unchanged when you do not recognize it.
    """

    name = "json"

    def __init__(
        self, *, encode_hook: EncodeHook | None = None, decode_hook: DecodeHook | None = None
    ) -> None:
        self.encode_hook = encode_hook
        self.decode_hook = decode_hook

    def encode(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        if self.encode_hook is not None:
            value = convert(value, self.encode_hook, "JSON")
        try:
            check_structure(value, integers=True)
            text = json.dumps(
                value,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
                default=refuse_json,
            )
        except CodecError as exc:
            raise encode_error(value, "JSON", exc) from None
        except ValueError as exc:
            raise encode_error(value, "JSON", CodecError(f"cannot encode as JSON: {exc}")) from None
        except RecursionError:
            raise CodecError("cannot encode as JSON: value is nested too deeply") from None
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise encode_error(
                value,
                "JSON",
                CodecError(
                    "cannot encode as JSON: a string holds a lone surrogate "
                    f"({exc.object[exc.start]!r}), which is not Unicode text"
                ),
            ) from None

    def decode(self, data: Buffer) -> Any:
        """Decode one JSON text; anything else (or invalid UTF-8) raises :class:`CodecError`."""
        try:
            text = bytes(data).decode("utf-8")
            value = json.loads(
                text, parse_constant=_no_constant, parse_int=_json_int, parse_float=_json_float
            )
        except UnicodeDecodeError as exc:
            raise CodecError(f"line is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
        except json.JSONDecodeError as exc:
            raise CodecError(f"line is not valid JSON: {exc}") from None
        except RecursionError:
            raise CodecError(
                f"line is not valid JSON for aspect-ipc: containers are nested deeper than "
                f"{MAX_DEPTH} levels"
            ) from None
        # Both checks only where they can fail: 513 levels need 513 brackets, and a surrogate
        # (paired or lone: json joins the pairs) needs an escape "\\uD800" to "\\uDFFF".
        raw = data if isinstance(data, bytes) else bytes(data)
        if len(raw) > 2 * MAX_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
            check_depth(value)
        if b"\\" in raw and (b"\\ud" in raw or b"\\uD" in raw):
            try:
                _ = json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise CodecError(
                    "line is not valid JSON for aspect-ipc: a \\u escape is a lone surrogate, "
                    "which is not a Unicode character"
                ) from None
        if self.decode_hook is not None:
            return apply_decode_hook(value, self.decode_hook, "JSON")
        return value


class MessagePackCodec:
    """MessagePack with the spec's mapping (3.2): str keys, bin for bytes, float64, no ext types.

    Args:
        encode_hook: called with each value the wire cannot carry (a datetime, a numpy array...);
            returns a value it can, which is encoded (and checked) in its place, and which may
            itself hold values for the hook. Any C-contiguous buffer it returns is binary: from
            64 KiB on, :meth:`encode_parts` sends it uncopied (do not change it until the call
            that sends it has returned). Like ``json.dumps``'s ``default``.
        decode_hook: called with each decoded map, innermost first, the message itself last;
            its result replaces the map. Like ``json.loads``'s ``object_hook``: return the map
            unchanged when you do not recognize it.
    """

    name = "msgpack"

    def __init__(
        self, *, encode_hook: EncodeHook | None = None, decode_hook: DecodeHook | None = None
    ) -> None:
        self.encode_hook = encode_hook
        self.decode_hook = decode_hook
        self._packer = _packer()
        self._pack_lock = threading.Lock()
        # Stands in for a large binary while the rest is packed: random, so no payload holds it.
        self._marker = secrets.token_bytes(16)

    def encode(self, value: Any) -> bytes:
        """Encode ``value``; unsupported types and out-of-range integers raise CodecError."""
        if self.encode_hook is not None:
            value = convert(value, self.encode_hook, "MessagePack")
        elif fast_pack is not None:
            packed = fast_pack(value)  # None: not a plain message, the path below decides
            if packed is not None:
                return packed
        try:
            check_structure(value)
        except CodecError as exc:
            raise encode_error(value, "MessagePack", exc) from None
        return self._pack(value)

    def _pack(self, value: Any) -> bytes:
        # One Packer, one buffer: a second thread (a blocking caller encodes its own requests)
        # must not pack into it while Python code runs inside a pack (a dict subclass's items()).
        with self._pack_lock:
            try:
                packed: bytes = self._packer.pack(value)
                if len(packed) > _PACKER_KEEPS:
                    # Its buffer has grown to the message's size and would stay so: a large
                    # message's worth of memory held for good. A new one starts small.
                    self._packer = _packer()
                return packed
            except CodecError as exc:
                self._packer.reset()
                failure = exc
            except (BufferError, OverflowError, TypeError, ValueError) as exc:
                self._packer.reset()
                failure = CodecError(f"cannot encode as MessagePack: {exc}")
        raise encode_error(value, "MessagePack", failure) from None

    def encode_parts(self, value: Any) -> list[Buffer]:
        """Like :meth:`encode`, as buffers to write in order, without copying large binaries.

        The bytes are the same as :meth:`encode`'s. ``bytes`` values of 64 KiB or more are not
        packed: each is returned as a buffer of its own (the object itself, not a copy), after
        its ``bin 32`` header. Mutable binaries (``bytearray``, ``memoryview``) are copied as
        usual, so that changing them after a send cannot change what is sent; buffers of 64 KiB
        or more returned by the encode hook are not (see the class).
        """
        if self.encode_hook is None and fast_pack is not None:
            packed = fast_pack(value)  # None for binaries of _LARGE_BINARY or more, too
            if packed is not None:
                return [packed]
        large: list[memoryview | bytes] | None = None
        if self.encode_hook is not None:
            large = []
            value = convert(
                value, self.encode_hook, "MessagePack", large=large, marker=self._marker
            )
        try:
            found = check_structure(value, large=True)
        except CodecError as exc:
            raise encode_error(value, "MessagePack", exc) from None
        if found:
            large = [] if large is None else large
            value = without_large_binaries(value, large, self._marker)
        elif not large:
            return [self._pack(value)]
        packed = self._pack(value)
        parts: list[Buffer] = []
        position, marker_size = 0, len(self._marker)
        with memoryview(packed) as view:
            for _ in large:  # the placeholders, in the order packed (not the order found)
                marker = packed.index(self._marker, position)
                blob = large[int.from_bytes(view[marker + marker_size : marker + marker_size + 4])]
                parts.append(view[position : marker - PLACEHOLDER_HEADER])
                parts.append(b"\xc6" + len(blob).to_bytes(4, "big"))
                parts.append(blob)
                position = marker + marker_size + 4
            if position < len(packed):
                parts.append(view[position:])
        return parts

    def decode(self, data: Buffer) -> Any:
        """Decode exactly one MessagePack object under the spec's mapping.

        A :class:`~._framing_split.SplitFrame` (a frame whose large binary was received into a
        ``bytes`` of its own) decodes to the same value as its frame, that ``bytes`` in place.
        """
        split = type(data) is SplitFrame
        if fast_unpack is not None and not split:
            value = fast_unpack(data, DECLINED)  # checked as decoded; DECLINED: see below
            if value is not DECLINED:
                if self.decode_hook is not None:
                    return apply_decode_hook(value, self.decode_hook, "MessagePack")
                return value
        try:
            if isinstance(data, SplitFrame):
                value = msgpack.unpackb(
                    data, raw=False, strict_map_key=True, ext_hook=_placeholder(data)
                )
            else:
                value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext)
        except msgpack.ExtraData:
            raise CodecError(
                "frame is not valid MessagePack: trailing bytes after the object "
                "(do both sides use MessagePackCodec?)"
            ) from None
        except msgpack.StackError:  # msgpack's own limit (1024 levels), past the spec's
            raise CodecError(
                f"frame is not valid MessagePack for aspect-ipc: containers are nested deeper "
                f"than {MAX_DEPTH} levels"
            ) from None
        except CodecError:
            raise
        except UnicodeDecodeError as exc:  # MessagePack, but not the spec's mapping (3.2)
            raise CodecError(
                f"frame is not valid MessagePack for aspect-ipc: a string is not valid UTF-8 "
                f"({exc.reason} at byte {exc.start} of the string); binary data goes as bin"
            ) from None
        except Exception as exc:  # ValueError, msgpack's FormatError, ...
            key_type = _refused_key_type(exc)
            if key_type is not None:  # MessagePack, but not the spec's mapping (3.2)
                raise CodecError(
                    "frame is not valid MessagePack for aspect-ipc: map keys must be strings, "
                    f"got {key_type} key"
                ) from None
            raise CodecError(
                f"frame is not valid MessagePack: {str(exc) or type(exc).__name__} "
                "(do both sides use MessagePackCodec?)"
            ) from None
        if isinstance(value, _CONTAINERS) and (
            split  # the binary's bin header is not there for has_suspect to see
            or has_suspect(data)
            # 513 levels need 513 bytes and 513 container headers: counted in C, walked if so.
            or (len(data) > MAX_DEPTH and may_be_too_deep(value, data))
        ):
            check_structure(value, received=True)
        elif type(value) is msgpack.Timestamp:
            raise CodecError("frame is not valid MessagePack for aspect-ipc: ext type -1")
        if self.decode_hook is not None:
            return apply_decode_hook(value, self.decode_hook, "MessagePack")
        return value


_PACKER_KEEPS = 1 << 20
"""A Packer whose buffer grew past this is replaced by a new one (see ``_pack``)."""


def _packer() -> msgpack.Packer:
    # A small first buffer (msgpack's default is 256 KiB, allocated at once): a codec per worker
    # (DataChannelOptions' default) would cost every handle that much; it grows as needed.
    return msgpack.Packer(  # type: ignore[call-arg]  # the C Packer takes it
        use_bin_type=True, default=refuse_msgpack, datetime=False, buf_size=4096
    )


def _json_int(digits: str) -> int:
    # Checked on the digits first: int() of a few thousand digits is refused by Python itself.
    value = int(digits) if len(digits) <= 20 else None
    if value is None or not INT_MIN <= value <= INT_MAX:
        raise CodecError(
            f"line is not valid JSON for aspect-ipc: integer {digits[:24]}"
            f"{'...' if len(digits) > 24 else ''} is outside [-2**63, 2**64 - 1]"
        )
    return value


def _json_float(digits: str) -> float:
    value = float(digits)
    if value - value != 0.0:  # infinite: the number is beyond float 64
        raise CodecError(
            f"line is not valid JSON for aspect-ipc: number {digits[:24]}"
            f"{'...' if len(digits) > 24 else ''} is too large for a float 64"
        )
    return value


def _no_constant(name: str) -> Any:
    raise CodecError(f"line is not valid JSON: {name} is not a JSON value")


def decodes_split_frames(codec: Codec) -> bool:
    """Whether ``codec`` decodes :class:`~._framing_split.SplitFrame` (see
    :meth:`~.framing.LengthPrefixedDecoder.split_binaries`): a MessagePackCodec whose
    ``decode`` is not overridden."""
    return isinstance(codec, MessagePackCodec) and type(codec).decode is MessagePackCodec.decode


def _placeholder(frame: SplitFrame) -> Any:
    def ext_hook(code: int, data: bytes) -> Any:
        blob = frame.resolve(code, data)
        return _no_ext(code, data) if blob is None else blob

    return ext_hook


def _refused_key_type(exc: Exception) -> str | None:
    """The type msgpack's ``strict_map_key`` refused as a map key, if that is what ``exc`` says
    (its words: "int is not allowed for map key when strict_map_key=True")."""
    text = str(exc)
    if type(exc) is not ValueError or "is not allowed for map key" not in text:
        return None
    name = text.split(" ", 1)[0]
    return "nil" if name == "NoneType" else name


def _no_ext(code: int, data: bytes) -> Any:
    raise CodecError(
        f"frame is not valid MessagePack for aspect-ipc: ext type {code} is not allowed"
    )
