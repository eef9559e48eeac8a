"""The pull contract suite itself, run against the test feed channel (`test_pull`): a sound pull adapter
passes every case, so a channel owner's failure points at their adapter, not at the kit."""

from __future__ import annotations

from typing import Any

import pytest

from kanal_testing import PullChannelProfile, PullContractSuite
from tests.support.pull_adapter import FeedServer

TOKEN = "feed-token-never-shown-0123456789"


class FeedProfile(PullChannelProfile):
    channel_type = "test_pull"
    channel_id = "test_pull:kit"
    expected_text = "Pohon tumbang menutup Jl. Cikini Raya, mohon segera dipotong"

    def start_peer(self) -> FeedServer:
        return FeedServer()

    def channel_settings(self, peer: FeedServer) -> dict[str, Any]:
        return {"feed_url": peer.url, "token": TOKEN, "timeout_seconds": 2}

    def add_item(self, peer: FeedServer, name: str) -> str:
        text = self.expected_text if name == "valid" else "Lampu jalan mati di Jl. Pramuka sejak minggu lalu"
        peer.add(text or "")
        return f"feed-{len(peer.items)}"

    def set_failing(self, peer: FeedServer, failing: bool) -> None:
        peer.fail_status = 503 if failing else None


class TestFeedPullKit(PullContractSuite):
    profile = FeedProfile()

    @pytest.fixture(autouse=True)
    def feed_plugin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from gateway import plugins

        monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "test_pull", "tests.support.pull_adapter")

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url
