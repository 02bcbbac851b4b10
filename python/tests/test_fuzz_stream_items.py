"""The short way of a stream item (``StreamTable.feed_item``, which the reader tries first) against
the general way (``parse_stream_message`` and the checks of spec 13.3-13.5): for any sequence of
``$/stream/item`` params, good or not, a table that takes the short way ends in exactly the state
of one that never does, with the same messages to send, the same protocol errors and a wake
whenever a waiting step has something new to see."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aspect_ipc._stream_messages import ITEM
from aspect_ipc._streams import Consumer, StreamError, StreamTable

OURS = 7  # the request of ours whose output stream the items are for
WINDOW = 3

# Params near the good ones: the right or a wrong stream, dir and seq, and each member missing.
stream_ids = st.sampled_from([OURS, 8, "7", True, 7.0, None, [7], -(2**70)])
directions = st.sampled_from(["out", "in", "OUT", None, 1])
seqs = st.one_of(st.integers(-1, 8), st.sampled_from([True, False, 1.0, "1", None, 2**70]))
values = st.one_of(st.none(), st.integers(), st.binary(max_size=8), st.text(max_size=4))
members = st.fixed_dictionaries(
    {},
    optional={"stream": stream_ids, "dir": directions, "seq": seqs, "value": values, "x": values},
)
params = st.one_of(members, st.sampled_from([None, [], "item", 3]))


class _NoShortWay(StreamTable):
    def feed_item(self, params: Any) -> bool:
        return False


def _table(kind: type[StreamTable]) -> tuple[StreamTable, Consumer, list[Any], list[int]]:
    table = kind("data")
    errors: list[Any] = []
    table.on_protocol_error = lambda sid, mine, error: errors.append((sid, mine, error.message))
    call = table.open(OURS, WINDOW, has_input=False)
    consumer = call.streams["out"]
    assert isinstance(consumer, Consumer)
    wakes = [0]

    def wake() -> None:
        wakes[0] += 1

    consumer.on_change = wake
    return table, consumer, errors, wakes


def _state(table: StreamTable, consumer: Consumer, errors: list[Any]) -> Any:
    failure = consumer.failure
    failed = (failure.code, failure.message) if isinstance(failure, StreamError) else failure
    return (list(consumer.buffer), consumer.seq, consumer.unused, failed, table.outbox, errors)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(params, st.booleans()), max_size=12))
@example([({"stream": OURS, "dir": "out", "seq": n, "value": n}, n == 1) for n in range(5)])
@example([({"stream": OURS, "dir": "out", "seq": True, "value": 1}, False)])
@example([({"stream": OURS, "dir": "out", "seq": 0, "value": 0}, True)] * 2)
def test_the_short_way_ends_where_the_general_way_does(steps: list[tuple[Any, bool]]) -> None:
    short, short_consumer, short_errors, short_wakes = _table(StreamTable)
    general, general_consumer, general_errors, general_wakes = _table(_NoShortWay)
    for item, take in steps:
        short.feed(ITEM, item)
        general.feed(ITEM, item)
        assert _state(short, short_consumer, short_errors) == _state(
            general, general_consumer, general_errors
        )
        assert short_wakes == general_wakes  # one wake per wait, both ways
        if take:  # the application takes one (granting credit at half the window), then waits
            for table, consumer, wakes in (
                (short, short_consumer, short_wakes),
                (general, general_consumer, general_wakes),
            ):
                with contextlib.suppress(StreamError):
                    table.take(consumer)
                consumer.on_change = lambda wakes=wakes: wakes.__setitem__(0, wakes[0] + 1)


def test_a_waiting_step_is_woken_once_for_the_items_that_came_before_it_ran() -> None:
    table, consumer, errors, wakes = _table(StreamTable)
    for seq in range(WINDOW):
        table.feed(ITEM, {"stream": OURS, "dir": "out", "seq": seq, "value": seq})
    assert wakes == [1] and list(consumer.buffer) == [0, 1, 2] and consumer.on_change is None
    assert [table.take(consumer) for _ in range(WINDOW)] == [0, 1, 2] and not errors
