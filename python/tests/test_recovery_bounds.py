"""Recovering the id of an undecodable message (spec 4.8) stays cheap for huge hostile messages."""

from __future__ import annotations

import msgpack

from aspect_ipc.recovery import PURE_SCAN_LIMIT, recover_id


def _nested(depth: int) -> bytes:
    """A request whose params nest ``depth`` arrays: beyond msgpack's C stack when deep."""
    head = b"\x84\xa7jsonrpc\xa32.0\xa2id\x07\xa6params"
    return head + b"\x91" * depth + b"\x01" + b"\xa6method\xa1x"


def test_a_large_shallow_request_is_recovered_by_the_c_unpacker() -> None:
    rows = [[1] * 10] * 200_000
    data = msgpack.packb({"jsonrpc": "2.0", "id": 7, "method": "x", "params": rows})
    assert len(data) > PURE_SCAN_LIMIT
    assert recover_id("msgpack", data) == 7


def test_a_deep_request_under_the_limit_is_recovered_by_the_pure_reader() -> None:
    data = _nested(5000)
    assert len(data) <= PURE_SCAN_LIMIT
    assert recover_id("msgpack", data) == 7


def test_a_deep_request_over_the_limit_is_answered_with_id_null() -> None:
    # The pure-Python reader would spend seconds on it: the answer goes out with id null instead.
    assert recover_id("msgpack", _nested(PURE_SCAN_LIMIT + 1)) is None


def test_a_json_line_over_the_limit_is_not_scanned() -> None:
    line = b'{"jsonrpc":"2.0","id":3,"method":"x","params":' + b"[" * PURE_SCAN_LIMIT
    assert recover_id("json", line) is None
    assert recover_id("json", b'{"jsonrpc":"2.0","id":3,"method":"x","params":"\\ud800"}') == 3
