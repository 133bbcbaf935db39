"""API-test fixtures on top of tests/conftest.py.

The in-process round runner is off in API tests: tests drive rounds deterministically with
``runner.run_once()`` (and the one test that wants the background runner turns it on). The
solver runs in a thread here so no test spawns a solver process.
"""

from __future__ import annotations

import pytest

from app.runner import RoundRunner
from app.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"runner": "off", "runner_executor": "thread", "runner_lease_seconds": 30, "runner_poll_seconds": 0.05}
    )


@pytest.fixture
def runner(app: object, settings: Settings) -> RoundRunner:
    return RoundRunner(app.state.sessionmaker, settings, owner="test-runner-a")  # type: ignore[attr-defined]
