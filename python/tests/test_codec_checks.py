"""The structural check's shortcuts give the verdict of a plain walk (spec 3.2, 3.4).

``check_structure`` skips its walk for the shapes most messages have: an envelope of plain values
and params one level down, and rows of records that share their keys (processItems). Each
shortcut must refuse what the spec refuses (a non-string map key, nesting deeper than 512) and
find what the walk finds (a ``bytes`` of 64 KiB or more, sent uncopied). A reference checker,
written from the spec, judges values built to sit on the shortcuts' edges: a record whose keys
differ in one row, a key that is not a string in the last record, a container or a large binary
in one column.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspect_ipc import CodecError, MessagePackCodec
from aspect_ipc._codec_checks import check_structure
from aspect_ipc._codec_hooks import LARGE_BINARY
from aspect_ipc.constants import MAX_DEPTH

LARGE = bytes(LARGE_BINARY)  # one object shared by every example: no memory per example


def reference(value: Any, depth: int = 0) -> tuple[bool, bool]:
    """(valid, holds a large binary), by a recursive walk of the spec's rules."""
    if isinstance(value, dict | list | tuple):
        depth += 1
        if depth > MAX_DEPTH:
            return False, False
        if isinstance(value, dict):
            if any(type(key) is not str for key in value):
                return False, False
            children: Any = value.values()
        else:
            children = value
        large = False
        for child in children:
            valid, found = reference(child, depth)
            if not valid:
                return False, False
            large = large or found
        return True, large
    return True, type(value) is bytes and len(value) >= LARGE_BINARY


def verdict(value: Any) -> tuple[bool, bool]:
    try:
        found = check_structure(value, large=True)
    except CodecError:
        return False, False
    return True, found


plain = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=4)
)
odd_leaf = st.binary(max_size=4) | st.just(LARGE) | st.lists(plain, max_size=2)
odd_leaf |= st.dictionaries(st.text(max_size=2), plain, max_size=2)
odd_leaf |= st.dictionaries(st.integers(0, 3), plain, min_size=1, max_size=2)
keys = st.sampled_from(["id", "value", "name"])


@st.composite
def records(draw: st.DrawFn) -> list[dict[Any, Any]]:
    """Rows that share their keys, but for what one draw may change in one row."""
    columns = draw(st.lists(keys, min_size=1, max_size=3, unique=True))
    rows = [{key: draw(plain) for key in columns} for _ in range(draw(st.integers(2, 6)))]
    row = rows[draw(st.integers(0, len(rows) - 1))]
    change = draw(st.sampled_from(["none", "odd value", "other key", "int key", "drop", "extra"]))
    if change == "odd value":
        row[columns[0]] = draw(odd_leaf)
    elif change == "other key":
        row["other"] = row.pop(columns[0])
    elif change == "int key":
        row[7] = row.pop(columns[0])
    elif change == "drop" and len(columns) > 1:
        del row[columns[0]]
    elif change == "extra":
        row[draw(st.sampled_from(["extra", 9]))] = draw(plain | odd_leaf)
    return rows


params = (
    st.dictionaries(st.text(max_size=3), plain | odd_leaf, max_size=4)
    | st.lists(plain | odd_leaf, max_size=4)
    | records().map(lambda rows: {"items": rows})
    | records()
)
envelopes = st.builds(
    lambda id_, method, p: {"jsonrpc": "2.0", "id": id_, "method": method, "params": p},
    st.integers(0, 2**31),
    st.text(max_size=6),
    params,
)


@settings(max_examples=300, deadline=None)
@given(envelopes | params)
def test_the_check_agrees_with_a_plain_walk(value: Any) -> None:
    assert verdict(value) == reference(value)


@settings(max_examples=100, deadline=None)
@given(envelopes)
def test_what_the_check_passes_round_trips(message: dict[str, Any]) -> None:
    codec = MessagePackCodec()
    if not reference(message)[0]:
        with pytest.raises(CodecError, match="keys must be strings"):
            codec.encode_parts(message)
        return
    assert b"".join(codec.encode_parts(message)) == codec.encode(message)


def test_a_non_string_key_in_the_last_record_is_named() -> None:
    rows: list[dict[Any, Any]] = [{"id": i, "value": 0.5} for i in range(1000)]
    rows[-1] = {"id": 999, 3: 0.5}
    where = r"map key 3 at \$\.params\[999\] is int: keys must be strings"
    with pytest.raises(CodecError, match=where):
        MessagePackCodec().encode({"jsonrpc": "2.0", "method": "processItems", "params": rows})


def test_records_nested_to_the_limit_are_refused_one_level_past_it() -> None:
    def nest(levels: int) -> Any:
        value: Any = [{"id": 1, "value": 2.0}, {"id": 2, "value": 3.0}]
        for _ in range(levels - 2):  # the records are one level, the row another
            value = [value]
        return value

    assert check_structure(nest(MAX_DEPTH)) is False
    with pytest.raises(CodecError, match="nested deeper than 512"):
        check_structure(nest(MAX_DEPTH + 1))


@pytest.mark.parametrize("levels", [600, 1100, 100_000])
def test_a_frame_nested_too_deep_says_so_however_deep(levels: int) -> None:
    # Past msgpack's own limit (1024) it read "not valid MessagePack: StackError".
    frame = b"\x91" * levels + b"\xc0"
    with pytest.raises(CodecError, match="containers are nested deeper than 512 levels"):
        MessagePackCodec().decode(frame)


def test_a_large_binary_in_a_column_is_sent_uncopied() -> None:
    rows = [{"id": 1, "blob": b"x"}, {"id": 2, "blob": LARGE}]
    parts = MessagePackCodec().encode_parts({"jsonrpc": "2.0", "method": "put", "params": rows})
    assert any(part is LARGE for part in parts)


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (b"\x81\x01\x02", "map keys must be strings, got int key"),  # {1: 2}
        (b"\x81\xc0\x02", "map keys must be strings, got nil key"),  # {nil: 2}
        (b"\x81\x92\x01\x02\x01", "map keys must be strings, got list key"),  # {[1, 2]: 1}
        (b"\xa2\xed\xa0", "a string is not valid UTF-8"),  # a lone surrogate's bytes in a str
    ],
)
def test_a_frame_outside_the_spec_mapping_is_named_for_the_rule_it_breaks(
    frame: bytes, says: str
) -> None:
    # Valid MessagePack that breaks the mapping (spec 3.2): it read "frame is not valid
    # MessagePack: 'utf-8' codec can't decode ... (do both sides use MessagePackCodec?)" and
    # "int is not allowed for map key when strict_map_key=True", words of msgpack's, sent back
    # to the peer in the -32700 too.
    with pytest.raises(CodecError) as info:
        MessagePackCodec().decode(frame)
    message = str(info.value)
    assert message.startswith("frame is not valid MessagePack for aspect-ipc: ")
    assert says in message
    assert "strict_map_key" not in message and "MessagePackCodec?" not in message
