"""Shared by every test of the LINE adapter: nothing may connect beyond this machine."""

from __future__ import annotations

import pytest
from kanal_testing import LoopbackOnly


@pytest.fixture(autouse=True)
def loopback_only(kanal_network_guard: LoopbackOnly) -> LoopbackOnly:
    """Kanal's contract kit refuses (and lists in `.blocked`) any connection that would reach a real LINE server."""
    return kanal_network_guard
