"""The pytest fixtures of the test_foreign_*.py modules, which take them by assignment
(``shared = fixtures.shared``). A module sets ``WORKER_OPTIONS`` (ForeignWorker's keyword
arguments) to start its workers with other limits or another environment.

- ``hygiene`` replaces conftest's check: a module's shared workers outlive each case, nothing else
  may (process, private directory, descriptor);
- ``shared``: one worker per language for the module (SharedWorker); ``via`` (control, then data),
  ``control`` and ``data``: its channels for one case;
- ``fresh``: a started worker of the module's language of its own, for cases that stop or close
  something; ``language``: just the language, for cases that start workers themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from foreign_parent.channels import Via
from foreign_parent.locate import LANGUAGES
from foreign_parent.process import ForeignWorker
from foreign_parent.support import SharedWorker, channel, no_leftovers, shared_worker

__all__ = ["control", "data", "fresh", "hygiene", "language", "shared", "via"]


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request.module, "WORKER_OPTIONS", {}))


@pytest.fixture(autouse=True)
def hygiene() -> Iterator[None]:
    yield from no_leftovers()


@pytest.fixture(scope="module", params=LANGUAGES)
def shared(request: pytest.FixtureRequest) -> Iterator[SharedWorker]:
    with shared_worker(request.param, **_options(request)) as holder:
        yield holder


@pytest.fixture(params=["control", "data"])
def via(request: pytest.FixtureRequest, shared: SharedWorker) -> Iterator[Via]:
    yield from channel(request.param, shared)


@pytest.fixture
def control(shared: SharedWorker) -> Iterator[Via]:
    yield from channel("control", shared)


@pytest.fixture
def data(shared: SharedWorker) -> Iterator[Via]:
    yield from channel("data", shared)


@pytest.fixture
def fresh(
    request: pytest.FixtureRequest, shared: SharedWorker
) -> Iterator[ForeignWorker]:
    options = _options(request) | getattr(request.module, "FRESH_OPTIONS", {})
    with ForeignWorker(shared.language, **options) as worker:
        worker.ready()
        yield worker


@pytest.fixture(params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)
