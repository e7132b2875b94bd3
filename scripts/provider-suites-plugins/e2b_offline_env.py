"""A pytest plugin scripts/provider-suites loads into E2B's own suite.

The suite's conftest gives tests that do not reach the API the fixture
`test_api_key` ("a placeholder API key ... for tests that don't hit the
API"); those tests check what the SDK derives on its own, for the
production service. E2B_SANDBOX_URL, which points every other test at the
emulator, would change what they check (the SDK then uses it instead of
the sandbox's domain), so they run without it: the environment the suite
expects when nothing is emulated. Nothing else of the suite changes.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_emulator_url_without_the_api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "test_api_key" in request.fixturenames:
        monkeypatch.delenv("E2B_SANDBOX_URL", raising=False)
