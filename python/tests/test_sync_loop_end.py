"""Blocking calls handed to the loop thread just as its loop ends (the ``with`` block left by
another thread): each fails with the loop-ended RuntimeError, none waits for ever, and nothing
is left behind to warn at exit.

The race is made exact here: the loop is stopped by a callback that then holds the loop thread
until the call has been handed over, so the call's start is queued behind the stop and never
runs. With a real ``ProcessManager`` the same window is the moment between the loop's last turn
and its close.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aspect_ipc.sync._caller import Caller
from aspect_ipc.sync._streams import PipeItems, request_with_input

ENDED = "event loop has ended"


class EndingLoop:
    """An asyncio loop on its own thread, and a way to end it with a call queued behind."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.caller: Caller | None = None
        self.handed_over = threading.Event()
        """Set once a call has been queued on the loop from another thread."""
        made = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.caller = Caller(None, self.loop)  # type: ignore[arg-type]  # no portal: asyncio
            self.loop.call_soon(made.set)
            self.loop.run_forever()
            self.loop.close()  # what the loop's thread does at the block's end

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert made.wait(10)  # a hang guard

    def end_after(self, hand_over: Callable[[], None]) -> None:
        """Stop the loop, run ``hand_over`` while it has stopped but not closed, then let it
        close: whatever ``hand_over`` queued on the loop never runs."""
        stopped, go_on = threading.Event(), threading.Event()
        queued = self.loop.call_soon_threadsafe

        def queue_and_tell(*args: Any, **kwargs: Any) -> Any:
            handle = queued(*args, **kwargs)
            self.handed_over.set()
            return handle

        self.loop.call_soon_threadsafe = queue_and_tell  # type: ignore[method-assign]

        def stop() -> None:
            self.loop.stop()
            stopped.set()
            go_on.wait(10)  # holds the loop's last turn until the hand-over is done

        self.loop.call_soon_threadsafe(stop)
        assert stopped.wait(10)
        try:
            hand_over()
        finally:
            go_on.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def ending() -> Iterator[EndingLoop]:
    loop = EndingLoop()
    yield loop
    if not loop.loop.is_closed():
        loop.loop.call_soon_threadsafe(loop.loop.stop)
        loop.thread.join(10)


def _in_thread(function: Callable[[], Any]) -> list[BaseException | Any]:
    """Run ``function`` on a thread of its own; what it returned or raised (a hang guard: a
    thread still waiting after 20 s fails the test)."""
    outcome: list[BaseException | Any] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:  # the outcome is what the test asserts
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the call waited for a loop that had ended"
    return outcome


async def _never_run() -> str:
    raise AssertionError("a call handed over after the loop's last turn ran")


def test_a_call_started_as_the_loop_ends_fails_and_leaves_no_coroutine(
    ending: EndingLoop,
) -> None:
    started: list[Any] = []

    def hand_over() -> None:
        assert ending.caller is not None
        started.append(ending.caller.start(_never_run))  # a blocking call's cancel, say

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ending.end_after(hand_over)
        outcome = _in_thread(started[0].result)
        started.clear()
        gc.collect()
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError), outcome
    assert ENDED in str(outcome[0])
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []


def _call_as_the_loop_ends(ending: EndingLoop, call: Callable[[Caller], Any]) -> Any:
    """``call(caller)`` on a thread of its own, which hands it over while the loop has stopped
    but not closed; what it returned or raised (a hang guard: still waiting after 20 s fails)."""
    outcome: list[Any] = []

    def run() -> None:
        assert ending.caller is not None
        try:
            outcome.append(call(ending.caller))
        except BaseException as exc:  # the outcome is what the test asserts
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)

    def hand_over() -> None:
        thread.start()
        assert ending.handed_over.wait(10)  # it cannot finish meanwhile: the loop is held

    ending.end_after(hand_over)
    thread.join(20)
    assert not thread.is_alive(), "the call waited for a loop that had ended"
    assert len(outcome) == 1
    return outcome[0]


def test_a_call_handed_over_as_the_loop_ends_fails_not_hangs(ending: EndingLoop) -> None:
    outcome = _call_as_the_loop_ends(ending, lambda caller: caller.call(_never_run))
    assert isinstance(outcome, RuntimeError), outcome
    assert ENDED in str(outcome)


def test_a_request_with_input_handed_over_as_the_loop_ends_fails_not_hangs(
    ending: EndingLoop,
) -> None:
    """``handle.request(..., input=items)``: the calling thread reads its input into a pipe as
    the loop's request asks for items. The request never starts, so nothing asks: the thread
    waited for demand for ever."""
    read: list[int] = []

    def items() -> Iterator[int]:
        n = 0
        while True:
            read.append(n)
            yield n
            n += 1

    async def call(pipe: PipeItems) -> Any:
        raise AssertionError("a request handed over after the loop's last turn ran")

    outcome = _call_as_the_loop_ends(
        ending, lambda caller: request_with_input(caller, call, items())
    )
    assert isinstance(outcome, RuntimeError), outcome
    assert ENDED in str(outcome)
    assert read == []  # nothing asked for an item: none was read (and lost)
