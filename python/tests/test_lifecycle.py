"""The worker life cycle table (aspect_ipc._lifecycle): the end states and a stop are final."""

from __future__ import annotations

from aspect_ipc import WorkerState
from aspect_ipc._lifecycle import ENDED, allowed

S = WorkerState


def test_end_states_are_final_and_failed_is_the_error_state() -> None:
    assert {S.STOPPED, S.FAILED} == ENDED
    for end in ENDED:
        assert not any(allowed(end, state) for state in S)
    for state in (S.STARTING, S.RUNNING, S.RESTARTING, S.STOPPING):
        assert allowed(state, S.FAILED)


def test_a_stop_is_final() -> None:
    assert {state for state in S if allowed(S.STOPPING, state)} == ENDED
    for state in (S.STARTING, S.RUNNING, S.RESTARTING):
        assert allowed(state, S.STOPPING)


def test_the_supervisor_moves() -> None:
    assert allowed(S.STARTING, S.RUNNING)
    assert allowed(S.RUNNING, S.RESTARTING) and allowed(S.RESTARTING, S.STARTING)
    assert not allowed(S.RUNNING, S.STARTING)  # a new incarnation starts after a backoff
