"""Fuzzing the framing decoders: corrupted streams, any chunking, tight limits.

Only :class:`FramingError` may come out; the events (frames and errors) do not depend on how the
stream is cut into chunks (spec/vectors/README.md asks it of every decoder); a fatal error stays
fatal; a frame never breaks the framing's own rules. Test_core_properties covers clean streams
and single-chunk garbage; here the streams are near-valid and the chunkings arbitrary.

Short by default; ``ASPECT_IPC_FUZZ=long`` (``make fuzz``) runs many more examples.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspect_ipc import FramingError
from aspect_ipc.framing import LengthPrefixedDecoder, LengthPrefixedFraming, LineDelimitedFraming

settings.register_profile("fuzz-short", max_examples=60, deadline=None)
settings.register_profile(
    "fuzz-long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
fuzz = settings.get_profile(
    "fuzz-long" if os.environ.get("ASPECT_IPC_FUZZ") == "long" else "fuzz-short"
)

Event = tuple[str, Any]


def events(framing: Any, chunks: list[bytes], eof: bool = True) -> list[Event]:
    """Feed ``chunks`` (then EOF) draining after each; return the frames and error kinds."""
    decoder = framing.decoder()
    total = sum(len(c) for c in chunks)
    out: list[Event] = []

    def drain() -> bool:
        for _ in range(total + 2):  # each call consumes input or stops: a bound, not a hope
            try:
                frame = decoder.next_frame()
            except FramingError as exc:
                out.append(("error", exc.kind))
                if exc.fatal:
                    _check_stays_failed(decoder, exc.kind)
                    return False
                continue
            if frame is None:
                return True
            out.append(("frame", frame))
        raise AssertionError("the decoder returned more frames than the input allows")

    for chunk in chunks:
        decoder.feed(chunk)
        if not drain():
            return out
    if eof:
        decoder.feed_eof()
        drain()
    return out


def _check_stays_failed(decoder: Any, kind: str) -> None:
    """After a fatal error nothing more comes out: length-prefixed errors stick (the stream
    cannot be resynchronized); a line decoder's only fatal error ends its input anyway."""
    if isinstance(decoder, LengthPrefixedDecoder):
        decoder.feed(b"\x00\x00\x00\x01x")  # feeding a failed decoder is harmless...
    for _ in range(2):
        try:
            frame = decoder.next_frame()
        except FramingError as exc:  # ...and it keeps failing the same way
            assert exc.kind == kind and exc.fatal
        else:
            assert frame is None and not isinstance(decoder, LengthPrefixedDecoder)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for point in [*points, len(data)]:
        chunks.append(data[last:point])
        last = point
    return chunks


@st.composite
def corrupted(draw: st.DrawFn, stream: bytes) -> bytes:
    """``stream`` with a few byte-level mutations: flips, insertions, deletions, a cut."""
    data = bytearray(stream)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b"\xff", b"\n", b"\r", b"\r\n", b" "]))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


cuts = st.lists(st.integers(min_value=0), max_size=40)


def check_chunking_does_not_matter(framing: Any, data: bytes, chunk_cuts: list[int]) -> None:
    whole = events(framing, [data])
    assert events(framing, split(data, chunk_cuts)) == whole
    assert events(framing, [data[i : i + 1] for i in range(len(data))]) == whole


@st.composite
def length_prefixed_stream(draw: st.DrawFn) -> tuple[LengthPrefixedFraming, list[bytes], bytes]:
    limit = draw(st.integers(1, 80))
    framing = LengthPrefixedFraming(limit)
    payloads = draw(st.lists(st.binary(min_size=1, max_size=limit), max_size=8))
    return framing, payloads, b"".join(framing.encode(p) for p in payloads)


@st.composite
def line_stream(draw: st.DrawFn) -> tuple[LineDelimitedFraming, list[bytes], bytes]:
    limit = draw(st.integers(1, 40))
    framing = LineDelimitedFraming(limit)
    alphabet = st.sampled_from(
        [b"a", b"{", b"}", b" ", b"\t", b"\r", b"\xff", b"\x00", b"\xc3\xa9"]
    )
    lines = draw(st.lists(st.lists(alphabet, max_size=limit).map(b"".join), max_size=8))
    lines = [line[:limit] for line in lines]
    ends = draw(
        st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines))
    )
    stream = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    # What a reader returns: one \r before the \n is part of the terminator; blank lines go.
    read = [
        line[:-1] if end == b"\n" and line.endswith(b"\r") else line
        for line, end in zip(lines, ends, strict=True)
    ]
    return framing, [line for line in read if line.strip(b" \t\r")], stream


@fuzz
@given(length_prefixed_stream(), st.data(), cuts)
def test_length_prefixed_corrupted_streams(
    case: Any, data: st.DataObject, chunk_cuts: list[int]
) -> None:
    framing, payloads, stream = case
    damaged = data.draw(corrupted(stream))
    check_chunking_does_not_matter(framing, damaged, chunk_cuts)
    found = events(framing, [damaged])
    frames = [value for kind, value in found if kind == "frame"]
    assert all(1 <= len(f) <= framing.max_frame_size for f in frames)
    assert [kind for kind, _ in found].count("error") <= 1
    assert all(kind == "frame" for kind, _ in found[:-1]), "nothing follows a fatal error"
    if damaged == stream:
        assert found == [("frame", p) for p in payloads]


@fuzz
@given(line_stream(), st.data(), cuts)
def test_line_delimited_corrupted_streams(
    case: Any, data: st.DataObject, chunk_cuts: list[int]
) -> None:
    framing, lines, stream = case
    damaged = data.draw(corrupted(stream))
    check_chunking_does_not_matter(framing, damaged, chunk_cuts)
    found = events(framing, [damaged])
    for kind, value in found:
        if kind == "frame":
            assert (
                b"\n" not in value
                and value.strip(b" \t\r")
                and len(value) <= framing.max_line_length
            )
        else:
            assert value in ("line_too_long", "truncated")
    assert ("error", "truncated") not in found[:-1], "truncated is the last event"
    if damaged == stream:
        assert found == [("frame", line) for line in lines]


@fuzz
@given(st.binary(max_size=300), st.integers(1, 70), cuts, st.booleans())
def test_random_bytes_any_chunking(
    data: bytes, limit: int, chunk_cuts: list[int], eof: bool
) -> None:
    for framing in (LengthPrefixedFraming(limit), LineDelimitedFraming(limit)):
        whole = events(framing, [data], eof)
        assert events(framing, split(data, chunk_cuts), eof) == whole


@fuzz
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5), st.integers(1, 2**32 - 1))
def test_length_prefixed_headers_against_the_limit(lengths: list[int], limit: int) -> None:
    """Headers alone: zero is empty_frame, above the limit frame_too_large (both fatal, at
    once), anything else waits for its payload and is truncated at EOF."""
    framing = LengthPrefixedFraming(limit)
    found = events(framing, [b"".join(n.to_bytes(4, "big") for n in lengths[:1])])
    first = lengths[0]
    if first == 0:
        assert found == [("error", "empty_frame")]
    elif first > limit:
        assert found == [("error", "frame_too_large")]
    else:
        assert found == [("error", "truncated")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=6), st.data())
def test_a_length_prefixed_decoder_is_idle_exactly_between_frames(
    payloads: list[bytes], data: st.DataObject
) -> None:
    # idle() tells a reader that the next bytes it receives start a frame (it may then read
    # frames from them before feeding them): true only with nothing buffered, whatever was cut.
    stream = b"".join(len(p).to_bytes(4, "big") + p for p in payloads)
    boundaries = set()
    offset = 0
    for p in payloads:
        boundaries.add(offset)
        offset += 4 + len(p)
    boundaries.add(offset)
    decoder = LengthPrefixedDecoder(1 << 20)
    assert decoder.idle()
    fed = 0
    while fed < len(stream):
        step = data.draw(st.integers(1, len(stream) - fed))
        decoder.feed(stream[fed : fed + step])
        fed += step
        while decoder.next_frame() is not None:
            pass
        assert decoder.idle() == (fed in boundaries), fed
