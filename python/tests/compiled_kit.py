"""What the tests of the compiled core share: the Python path, and values compared type for type."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import strategies as st

from aspect_ipc import CodecError, codecs


@contextmanager
def python_path() -> Iterator[None]:
    """The codec without the core, as when aspect-ipc-core is not installed."""
    saved = codecs.fast_pack, codecs.fast_unpack
    codecs.fast_pack = codecs.fast_unpack = None
    try:
        yield
    finally:
        codecs.fast_pack, codecs.fast_unpack = saved


def outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or the CodecError it raises."""
    try:
        return call()
    except CodecError as exc:
        return exc


def same_outcome(got: Any, expected: Any) -> bool:
    """The same value (see :func:`same`), or a CodecError with the same message."""
    if isinstance(expected, CodecError):
        return isinstance(got, CodecError) and str(got) == str(expected)
    return same(got, expected)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (``1 == 1.0 == True`` for ``==``); a loop,
    not recursion: values nest 512 deep."""
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if list(x) != list(y):
                return False
            pairs.extend((x[k], y[k]) for k in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y, strict=True))
        elif type(x) is float:  # bit for bit: a NaN the frame held is equal to itself
            if struct.pack(">d", x) != struct.pack(">d", y):
                return False
        elif x != y:
            return False
    return True


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


plain_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    | st.binary(max_size=300)
)
plain_values = st.recursive(
    plain_leaf,
    lambda inner: (
        st.lists(inner, max_size=20)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=8)
    ),
    max_leaves=60,
)
