"""Property tests for the sans-IO decoders: any chunking decodes the same frames; arbitrary bytes
raise only our own errors, never hang, and never allocate what a header merely declares."""

from __future__ import annotations

import random
import subprocess
import sys
import tracemalloc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, FramingError, JsonCodec, JsonRpcProtocol, MessagePackCodec
from aspect_ipc.framing import LengthPrefixedFraming, LineDelimitedFraming

payloads = st.binary(min_size=1, max_size=300)
lines = (
    st.binary(min_size=1, max_size=120)
    .map(lambda b: b.replace(b"\n", b"x"))
    .filter(lambda b: b.strip(b" \t\r") != b"" and not b.endswith(b"\r"))
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in [*points, len(data)]:
        chunks.append(data[last:p])
        last = p
    return chunks


def _decode_all(framing: Any, chunks: list[bytes]) -> list[bytes]:
    decoder, frames = framing.decoder(), []
    for chunk in chunks:
        decoder.feed(chunk)
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    decoder.feed_eof()
    assert decoder.next_frame() is None
    return frames


@given(st.lists(payloads, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_length_prefixed_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    framing = LengthPrefixedFraming()
    stream = b"".join(framing.encode(f) for f in frames)
    assert _decode_all(framing, _split(stream, cuts)) == frames


@given(st.lists(lines, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_line_delimited_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    framing = LineDelimitedFraming()
    stream = b"".join(framing.encode(f) for f in frames)
    assert _decode_all(framing, _split(stream, cuts)) == frames


def _decode_in_place(stream: bytes, cuts: list[int], fed: list[bool]) -> list[bytes]:
    # Like a socket transport: while the decoder offers a buffer, receive into it (up to the
    # chunk's size); otherwise feed the chunk. ``fed`` forces plain feeding of some chunks.
    decoder, frames = LengthPrefixedFraming().decoder(), []
    for index, chunk in enumerate(_split(stream, cuts)):
        while chunk:
            space = decoder.writable()
            if space is not None and not fed[index % len(fed)]:
                count = min(len(space), len(chunk))
                space[:count] = chunk[:count]
                space.release()
                decoder.wrote(count)
                chunk = chunk[count:]
            else:
                if space is not None:
                    space.release()
                decoder.feed(chunk)
                chunk = b""
            while (frame := decoder.next_frame()) is not None:
                frames.append(bytes(frame))
    decoder.feed_eof()
    assert decoder.next_frame() is None
    return frames


# Large payloads from a small seed: hypothesis need not generate (or shrink) every byte.
large_payloads = st.builds(
    lambda size, seed: random.Random(seed).randbytes(size),
    st.sampled_from([65_537, 131_072, 300_001]),
    st.integers(min_value=0, max_value=2**32),
)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.one_of(payloads, large_payloads), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0), max_size=40),
    st.lists(st.booleans(), min_size=1, max_size=8),
)
def test_large_frames_received_in_place_decode_the_same(
    frames: list[bytes], cuts: list[int], fed: list[bool]
) -> None:
    framing = LengthPrefixedFraming()
    stream = b"".join(framing.encode(f) for f in frames)
    assert _decode_in_place(stream, cuts, fed) == frames


def test_a_large_frame_cut_short_is_truncated_not_returned() -> None:
    framing = LengthPrefixedFraming()
    stream = framing.encode(b"x" * 200_000)[:150_000]
    decoder = framing.decoder()
    decoder.feed(stream)
    assert decoder.next_frame() is None
    assert decoder.writable() is not None  # assembled in place from here on
    decoder.feed_eof()
    try:
        decoder.next_frame()
    except FramingError as exc:
        assert exc.kind == "truncated" and exc.fatal
    else:
        raise AssertionError("a truncated large frame was not reported")


def test_a_large_frame_is_not_allocated_before_a_quarter_of_it_arrived() -> None:
    decoder = LengthPrefixedFraming(max_frame_size=1 << 30).decoder()
    decoder.feed((1 << 30).to_bytes(4, "big") + b"x" * 1000)
    assert decoder.next_frame() is None
    assert decoder.writable() is None and decoder.buffered == 1000


def _feed_garbage(framing: Any, data: bytes) -> None:
    decoder = framing.decoder()
    decoder.feed(data)
    decoder.feed_eof()
    for _ in range(len(data) + 2):  # every call consumes input or ends: this bound cannot hang
        try:
            if decoder.next_frame() is None:
                return
        except FramingError as exc:
            if exc.fatal:
                return
    raise AssertionError("decoder neither finished nor failed")


@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_into_framings(data: bytes, limit: int) -> None:
    _feed_garbage(LengthPrefixedFraming(limit), data)
    _feed_garbage(LineDelimitedFraming(limit), data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_into_codecs_and_validator(data: bytes) -> None:
    for codec in (MessagePackCodec(), JsonCodec()):
        try:
            value = codec.decode(data)
        except CodecError:
            continue
        JsonRpcProtocol.parse(value)  # classification never raises, whatever the value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values | st.binary(max_size=50))
def test_msgpack_roundtrips_the_data_model(value: Any) -> None:
    codec = MessagePackCodec()
    assert codec.decode(codec.encode(value)) == value


@settings(max_examples=30)
@given(st.integers(min_value=2**20, max_value=2**32 - 1))
def test_declared_lengths_are_never_allocated(declared: int) -> None:
    """A header declaring up to 4 GiB, with no payload behind it, allocates next to nothing."""
    for limit in (declared - 1, 2**32 - 1):
        decoder = LengthPrefixedFraming(limit).decoder()
        tracemalloc.start()
        try:
            decoder.feed(declared.to_bytes(4, "big") + b"\x00" * 16)
            try:
                assert decoder.next_frame() is None
            except FramingError as exc:
                assert exc.kind == "frame_too_large"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024


def test_huge_msgpack_headers_are_not_allocated() -> None:
    tracemalloc.start()
    try:
        for header in ("ddffffffff", "dbffffffff61", "c6ffffffff00", "dfffffffff"):
            try:
                MessagePackCodec().decode(bytes.fromhex(header))
            except CodecError:
                pass
            else:
                raise AssertionError(f"{header} decoded")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_sans_io_core_does_not_import_anyio() -> None:
    code = (
        "import sys\n"
        "import aspect_ipc.framing, aspect_ipc.codecs, aspect_ipc.jsonrpc, aspect_ipc.paths\n"
        "import aspect_ipc.errors, aspect_ipc.constants\n"
        "import aspect_ipc.recovery, aspect_ipc.hello, aspect_ipc.shutdown, aspect_ipc.options\n"
        "import aspect_ipc.worker_env, aspect_ipc._lifecycle\n"
        "io = {'anyio', 'trio', 'asyncio', 'socket'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in io)\n"
        "print(','.join(bad))\n"
    )
    # The package __init__ re-exports the I/O layer too: load the core modules without it.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util, sys, types\n"
            "spec = importlib.util.find_spec('aspect_ipc')\n"
            "pkg = types.ModuleType('aspect_ipc'); pkg.__path__ = spec.submodule_search_locations\n"
            "sys.modules['aspect_ipc'] = pkg\n" + code,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "", f"sans-IO modules pulled in: {out}"


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
binaries = st.one_of(
    st.binary(max_size=40),
    large_payloads,
    st.builds(bytearray, large_payloads),
)
with_binaries = st.recursive(
    json_like | binaries,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(with_binaries)
def test_msgpack_encode_parts_writes_the_same_bytes_as_encode(value: Any) -> None:
    codec = MessagePackCodec()
    parts = codec.encode_parts(value)
    assert b"".join(parts) == codec.encode(value)


def test_msgpack_encode_parts_sends_large_bytes_from_where_they_are() -> None:
    blob, mutable = random.Random(7).randbytes(100_000), bytearray(70_000)
    parts = MessagePackCodec().encode_parts({"a": [blob, b"small"], "b": mutable, "c": blob})
    assert sum(part is blob for part in parts) == 2
    assert not any(part is mutable for part in parts)  # copied: changing it later is safe


def test_an_unencodable_value_names_its_type_and_the_conversion() -> None:
    import pytest

    from aspect_ipc import CodecError, JsonCodec, MessagePackCodec

    for codec in (JsonCodec(), MessagePackCodec()):
        with pytest.raises(CodecError, match=r"cannot encode set .*convert it first \(a set"):
            codec.encode({"tags": {1, 2}})
