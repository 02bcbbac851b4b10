"""The TypedDicts of the options that calls pass on (option_types.py) against the signatures
they describe: a parameter added to ``spawn`` and not to ``SpawnOptions`` would be a keyword
that ``spawn_pool`` and the blocking API pass at run time and a type checker refuses."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from aspect_ipc import (
    ManagerOptions,
    MapOptions,
    ProcessHandle,
    ProcessManager,
    SpawnOptions,
    WorkerPool,
)


def _keywords(function: Callable[..., Any], skip: int) -> dict[str, inspect.Parameter]:
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return {p.name: p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize(
    ("options", "function", "skip"),
    [
        (SpawnOptions, ProcessManager.spawn, 2),
        (ManagerOptions, ProcessManager.__init__, 2),
        (MapOptions, WorkerPool.map, 3),
    ],
)
def test_each_typed_dict_is_the_keywords_of_its_call(
    options: type, function: Callable[..., Any], skip: int
) -> None:
    keywords = _keywords(function, skip)
    described = typing.get_type_hints(options, localns={"ProcessHandle": ProcessHandle})
    assert list(described) == list(keywords)
    required = {name for name, p in keywords.items() if p.default is inspect.Parameter.empty}
    assert options.__required_keys__ == required  # type: ignore[attr-defined]
    hints = typing.get_type_hints(function)
    assert {name: hints[name] for name in keywords} == described


def test_the_calls_that_pass_options_on_take_them_typed() -> None:
    from aspect_ipc import sync

    for function, options in (
        (ProcessManager.spawn_pool, SpawnOptions),
        (sync.ProcessManager.__init__, ManagerOptions),
        (sync.ProcessManager.spawn, SpawnOptions),
        (sync.ProcessManager.spawn_pool, SpawnOptions),
        (sync.WorkerPool.map, MapOptions),
    ):
        [variadic] = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind is inspect.Parameter.VAR_KEYWORD
        ]
        assert variadic.annotation == f"Unpack[{options.__name__}]", function
