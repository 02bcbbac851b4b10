"""The parent's handlers take an input window too (spec 13.3): ``handle.on_request(...,
input_window=)`` through the handler table that installs handlers on each new channel."""

from __future__ import annotations

from typing import Any

import pytest

from aspect_ipc.channel import HandlerTable
from test_stream_windows import _grant_for, _raw_peer, _sum

pytestmark = pytest.mark.anyio


async def test_a_table_installs_each_handlers_window_on_every_new_channel() -> None:
    table = HandlerTable()
    table.add("control", "sumStream", _sum, notification=False, live=None, input_window=3)
    table.add("control", "sumDefault", _sum, notification=False, live=None)
    for round_ in range(2):  # a restart makes a new channel: the window comes with the handler
        async with _raw_peer() as (channel, raw):
            table.install(channel, "control")
            assert await _grant_for(channel, raw, "sumStream", 10 + round_) == 3
            assert await _grant_for(channel, raw, "sumDefault", 20 + round_) == 16


async def test_a_handler_declared_late_gets_its_window_on_the_live_channel() -> None:
    table = HandlerTable()
    async with _raw_peer() as (channel, raw):
        table.install(channel, "control")
        table.add("control", "sumStream", _sum, notification=False, live=channel, input_window=5)
        assert await _grant_for(channel, raw, "sumStream", 1) == 5
        # Declared again without a window: back to the default, on the live channel too.
        table.add("control", "sumStream", _sum, notification=False, live=channel)
        assert await _grant_for(channel, raw, "sumStream", 2) == 16


@pytest.mark.parametrize("bad", [0, 1025, True, 2.0])
def test_a_bad_window_is_refused_when_declared_and_nothing_is_kept(bad: Any) -> None:
    table = HandlerTable()
    with pytest.raises(ValueError, match=r"handler 'sumStream': input_window must be"):
        table.add("data", "sumStream", _sum, notification=False, live=None, input_window=bad)
    assert table._handlers["data", False] == {}
