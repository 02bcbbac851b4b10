"""The compiled core gives the Python path's bytes and values, or leaves the work to it (spec 3.2,
3.4).

``make setup`` builds the optional ``aspect-ipc-core`` package (``python/core``, Rust). The
MessagePack codec asks it first. To pack, when no encode hook is set: it answers ``None`` for
anything but exact plain types within the spec's limits, and the Python path decides. To decode:
it declines any frame it does not build or that breaks a rule, and the Python path decodes it
again. So for every value and every frame: either both paths give the same bytes or value, or
the core declined and the Python path's result (or its error, which says what and where) is what
the codec gives. ``make test`` also runs the codec tests with
``ASPECT_IPC_PURE_PYTHON=1``: then the codec does not use the core, and this module still holds the
core to the Python path's bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, MessagePackCodec, compiled_core
from aspect_ipc._codec_hooks import LARGE_BINARY
from aspect_ipc._compiled import fast_pack as codec_fast_pack
from aspect_ipc.constants import MAX_DEPTH
from compiled_kit import nested, outcome, plain_leaf, plain_values, python_path, same, same_outcome

# make setup always builds the core; an environment without it (the package installed from its
# sdist alone, say) has nothing here to test, and its codec tests cover the pure-Python path.
aspect_ipc_core = pytest.importorskip(
    "aspect_ipc_core", reason="the compiled core (python/core) is not installed"
)
PURE = os.environ.get("ASPECT_IPC_PURE_PYTHON", "") not in ("", "0")
LARGE = bytes(LARGE_BINARY)  # one object shared by every example
CORE_DEPTH = 32  # deeper, the core leaves a value to the Python path (its walks are loops)
codec = MessagePackCodec()
fast_pack = aspect_ipc_core.pack  # itself, whether the codec uses it or not (PURE)
DECLINED = object()


def fast_unpack(data: Any) -> Any:
    return aspect_ipc_core.unpack(data, DECLINED)


def pure_encode(value: Any) -> bytes | CodecError:
    with python_path():
        return outcome(lambda: codec.encode(value))


def pure_decode(data: Any) -> Any:
    with python_path():
        return outcome(lambda: codec.decode(data))


class Record(dict[str, Any]):
    pass


class Text(str):
    pass


class Number(int):
    pass


def test_the_core_make_builds_is_in_use() -> None:
    if PURE:
        assert compiled_core() is None and codec_fast_pack is None
    else:
        assert compiled_core() == aspect_ipc_core.__version__
        assert codec_fast_pack is aspect_ipc_core.pack


def test_the_environment_variable_turns_it_off() -> None:
    script = "import aspect_ipc; print(aspect_ipc.compiled_core())"
    env = {**os.environ, "ASPECT_IPC_PURE_PYTHON": "1"}
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "None"


odd_leaf = (
    st.integers(2**64, 2**70)
    | st.integers(-(2**70), -(2**63) - 1)
    | st.just("\ud800")
    | st.just(LARGE)
    | st.binary(max_size=8).map(bytearray)
    | st.binary(max_size=8).map(memoryview)
    | st.just(Text("t"))
    | st.just(Number(3))
    | st.just(Record(a=1))
    | st.just({1: "int key"})
    | st.just({b"k": "bytes key"})
    | st.just(object())
    | st.just(nested(MAX_DEPTH - 2))
)
any_values = st.recursive(
    plain_leaf | odd_leaf,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(plain_values)
def test_a_plain_value_is_packed_by_the_core_as_the_python_path_packs_it(value: Any) -> None:
    packed = fast_pack(value)
    assert packed is not None, "the core declined a plain value"
    assert packed == pure_encode(value)
    assert packed == msgpack.packb(value, use_bin_type=True)
    assert codec.encode(value) == packed and codec.encode_parts(value) == [packed]


@settings(max_examples=400, deadline=None)
@given(any_values)
def test_any_value_gets_the_python_paths_bytes_or_its_error(value: Any) -> None:
    expected = pure_encode(value)
    packed = fast_pack(value)
    if packed is not None:
        assert packed == expected
    assert same_outcome(outcome(lambda: codec.encode(value)), expected)
    if not isinstance(expected, CodecError):
        assert b"".join(codec.encode_parts(value)) == expected


@settings(max_examples=400, deadline=None)
@given(plain_values)
def test_a_plain_frame_is_decoded_by_the_core_as_msgpack_decodes_it(value: Any) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    decoded = fast_unpack(data)
    assert decoded is not DECLINED, "the core declined a plain frame"
    expected = msgpack.unpackb(data, raw=False)
    assert same(decoded, expected)
    assert same(pure_decode(data), expected) and same(codec.decode(data), expected)
    assert same(fast_unpack(memoryview(data)), expected)
    assert same(fast_unpack(bytearray(data)), expected)


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a byte changed, cut short, or followed by more."""
    if not data:
        return st.binary(max_size=8)
    place = st.integers(0, len(data) - 1)
    return (
        st.tuples(place, st.integers(0, 255)).map(
            lambda change: data[: change[0]] + bytes([change[1]]) + data[change[0] + 1 :]
        )
        | place.map(lambda cut: data[:cut])
        | st.binary(min_size=1, max_size=4).map(lambda more: data + more)
    )


odd_frames = st.sampled_from(
    [b"\x81\x01\x02", b"\xd6\xff\x00\x00\x00\x00", b"\xd4\x05\x00", b"\xa2\xed\xa0", b"\xc1"]
)
frames = (
    st.binary(max_size=64)
    | plain_values.map(lambda v: msgpack.packb(v, use_bin_type=True)).flatmap(mutations)
    | st.tuples(st.binary(max_size=8), odd_frames).map(
        lambda pair: b"\x92" + msgpack.packb(pair[0]) + pair[1]
    )
)


@settings(max_examples=600, deadline=None)
@given(frames)
@example(b"\x94\x00\x00\x00\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01")  # a NaN, found so
def test_any_frame_gets_the_python_paths_value_or_its_error(data: bytes) -> None:
    expected = pure_decode(data)
    decoded = fast_unpack(data)
    if decoded is not DECLINED:
        assert not isinstance(expected, CodecError), expected
        assert same(decoded, expected)
    assert same_outcome(outcome(lambda: codec.decode(data)), expected)


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        (msgpack.packb(nested(CORE_DEPTH)), True),
        (msgpack.packb(nested(CORE_DEPTH + 1)), False),  # the Python path decodes it: see below
        (b"\x81\x01\x02", False),  # {1: 2}
        (b"\x81\xc4\x01k\x02", False),  # {b"k": 2}
        (b"\xd6\xff\x00\x00\x00\x00", False),  # a timestamp
        (b"\xd4\x05\x00", False),  # ext type 5
        (b"\xa2\xed\xa0", False),  # a lone surrogate, as UTF-8 cannot hold it
        (b"\xc1", False),  # never used
        (b"\x91\x01\x02", False),  # trailing bytes
        (b"\x92\x01", False),  # missing bytes
        (b"\xdd\xff\xff\xff\xff\x01", False),  # 4 billion items announced, 1 byte there
        (msgpack.packb(nested(MAX_DEPTH)), False),  # the Python path decodes it
        (msgpack.packb(nested(MAX_DEPTH + 1)), False),  # the Python path refuses it
        (b"\xca\x3f\xc0\x00\x00", True),  # float 32: 1.5
        (b"\x82\xa1a\x01\xa1a\x02", True),  # a repeated key: the last one wins
    ],
)
def test_the_core_declines_exactly_what_breaks_a_rule(data: bytes, decoded: bool) -> None:
    value = fast_unpack(data)
    assert (value is not DECLINED) is decoded
    expected = pure_decode(data)
    if decoded:
        assert same(value, expected)
    elif isinstance(expected, CodecError):
        with pytest.raises(CodecError, match=r"^frame is not valid MessagePack"):
            codec.decode(data)
    else:  # deep, but within the spec: decoded by the Python path
        assert same(codec.decode(data), expected)


def test_records_whose_keys_move_decode_with_their_own_keys() -> None:
    """The core remembers keys by their place in a map: records that reorder, rename or drop
    keys, or have a key that differs in one byte or in length, keep each its own keys."""
    rows = [
        {"id": 1, "value": 2.5},
        {"id": 2, "value": 3.5},
        {"value": 4.5, "id": 3},
        {"id": 4, "valuf": 5.5},
        {"id": 5, "value2": 6.5, "extra": None},
        {"id": 6},
        {"ID": 7, "value": 8.5},
        {str(n): n for n in range(12)},
        {"id": 8, "value": 9.5},
    ]
    data = msgpack.packb(rows)
    assert same(fast_unpack(data), rows)


@pytest.mark.parametrize("stack", [64 * 1024, 128 * 1024])
def test_a_frame_nested_to_the_limit_is_decoded_on_a_thread_with_a_small_stack(stack: int) -> None:
    """A peer's frame nested 512 deep (the spec's limit, so it must be decoded), decoded by the
    codec on a thread with a 64 or 128 KiB stack: the core recursed 512 levels before and
    overflowed both. In a child process, so that a crash fails this test instead of the run.
    (Packing so deep a value on such a stack is msgpack's own limit: its packer recurses.)"""
    frames = [msgpack.packb(nested(MAX_DEPTH)), msgpack.packb({"k": nested(MAX_DEPTH - 1)})]
    script = f"""
import threading
import msgpack
from aspect_ipc import MessagePackCodec
codec = MessagePackCodec()
frames = [bytes.fromhex(h) for h in {[frame.hex() for frame in frames]!r}]
decoded = []
threading.stack_size({stack})
thread = threading.Thread(target=lambda: decoded.extend(map(codec.decode, frames)))
thread.start()
thread.join()
assert [msgpack.packb(value) for value in decoded] == frames
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_a_view_that_is_not_contiguous_is_left_to_the_python_path() -> None:
    data = memoryview(msgpack.packb([1, 2, 3]) * 2)[::2]
    assert fast_unpack(data) is DECLINED


@pytest.mark.parametrize(
    ("value", "packed"),
    [
        (nested(CORE_DEPTH), True),
        (nested(CORE_DEPTH + 1), False),  # the Python path packs it: see below
        (nested(MAX_DEPTH), False),
        ({"n": 2**64 - 1}, True),
        ({"n": 2**64}, False),
        ({"n": -(2**63)}, True),
        ({"n": -(2**63) - 1}, False),
        ({"b": bytes(LARGE_BINARY - 1)}, True),
        ({"b": bytes(LARGE_BINARY)}, False),
        ({"s": "caf\u00e9 \U0001f600"}, True),
        ({"s": "lone \udc80"}, False),
        ({"k": {2: 3}}, False),
        ({"r": Record(a=1)}, False),
        ({"t": (1, "two", [3.0])}, True),
    ],
)
def test_the_core_declines_exactly_past_the_spec_limits(value: Any, packed: bool) -> None:
    assert (fast_pack(value) is not None) is packed
    expected = pure_encode(value)
    if packed:
        assert fast_pack(value) == expected


@pytest.mark.parametrize(
    ("value", "place"),
    [
        (nested(MAX_DEPTH + 1), "nested deeper than 512 levels"),
        ({"params": {"when": {2: 3}}}, "map key 2 at $.params.when is int"),
        ({"params": {"n": 2**64}}, "$.params.n"),
        ({"params": {"s": "\ud800"}}, "$.params.s"),
    ],
)
def test_what_the_core_declines_is_refused_with_its_place(value: Any, place: str) -> None:
    with pytest.raises(CodecError) as raised:
        codec.encode(value)
    assert place in str(raised.value)


def test_a_large_binary_is_still_sent_uncopied() -> None:
    blob = bytes(range(256)) * (LARGE_BINARY // 256)
    parts = codec.encode_parts({"params": {"data": blob}})
    assert any(part is blob for part in parts)
    assert b"".join(parts) == msgpack.packb({"params": {"data": blob}}, use_bin_type=True)


def test_threads_packing_at_once_get_their_own_bytes() -> None:
    """The core keeps one scratch buffer per thread (the blocking API's callers encode)."""
    rows = [[{"v": n * i} for i in range(200)] for n in range(8)]
    messages = [{"id": n, "params": {"items": items}} for n, items in enumerate(rows)]
    expected = [msgpack.packb(m, use_bin_type=True) for m in messages]
    wrong: list[int] = []

    def pack_many(n: int) -> None:
        for _ in range(300):
            if codec.encode(messages[n]) != expected[n]:
                wrong.append(n)

    threads = [threading.Thread(target=pack_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
