"""The `kanal` pytest plugin (entry point `pytest11`), loaded into every pytest run where Kanal is installed.

It must be harmless there: nothing autouse, nothing imported from Kanal until a fixture asks for it.
It offers fixtures for a channel owner's own tests beside the contract suite, and marks the suite's
tests `kanal_contract` so `pytest -m kanal_contract` runs only them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kanal_testing.network import LoopbackOnly
    from kanal_testing.server import KanalUnderTest

# The suite and the case runner assert inside Kanal's package; rewriting gives their failures context.
pytest.register_assert_rewrite("kanal_testing.suite", "kanal_testing.cases")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kanal_contract: a common case of a Kanal adapter (kanal_testing.ContractSuite)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Only a run that imported the suite can hold its tests; others pay nothing.
    suite = sys.modules.get("kanal_testing.suite")
    if suite is None:
        return
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and issubclass(cls, suite.ContractSuite):
            item.add_marker(pytest.mark.kanal_contract)


@pytest.fixture
def kanal_network_guard(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    """This test only: connections off loopback are refused and listed in `.blocked`."""
    from kanal_testing.network import LoopbackOnly

    guard = LoopbackOnly()
    guard.install(monkeypatch)
    return guard


@pytest.fixture
def kanal_start(tmp_path: Path) -> Iterator[Callable[..., KanalUnderTest]]:
    """Start a Kanal on a fresh SQLite file: `kanal_start(channels, **overrides)`; stopped after the test.

    `channels` and `overrides` are as for `kanal_testing.kanal_settings`; each call gets its own file.
    """
    from kanal_testing.server import KanalUnderTest, kanal_settings

    started: list[KanalUnderTest] = []

    def start(channels: dict[str, dict[str, Any]], **overrides: Any) -> KanalUnderTest:
        database = tmp_path / f"kanal-{len(started)}.sqlite3"
        gateway = KanalUnderTest(kanal_settings(f"sqlite:///{database}", channels, **overrides))
        started.append(gateway.__enter__())
        return gateway

    yield start
    for gateway in reversed(started):
        gateway.__exit__(None, None, None)
