"""The contract every PULL adapter meets (X mentions, a mailbox, LAPOR!, news feeds), as a test class.

    class TestTwitterContract(PullContractSuite):
        profile = TwitterProfile()

A pull channel has no route a stranger can post to; what it must get right is the poll: every item the
platform holds reaches the inbox exactly once, across repeated polls, restarts and outages, without a
secret in any log line, cursor or error. The profile starts the platform's stand-in (the peer), says
how the channel is configured against it, and publishes items on it; the suite runs a real Kanal with
the channel polling every fraction of a second and watches what is stored.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gateway import cursors
from gateway.db import read_session
from gateway.plugins import adapter_types, get_plugin_manager
from kanal_testing.fetch import build_adapter
from kanal_testing.network import LoopbackOnly
from kanal_testing.profile import SECRET_WORDS, _strings
from kanal_testing.server import KanalUnderTest, kanal_settings, wait_until
from kanal_testing.store import inbound_messages, reports

#: How long a poll, the normalizer and a recovery may take in the suite's Kanal.
POLL_TIMEOUT = 20.0
#: Seconds between polls, and the longest back-off: short, so a failure and a recovery fit in a test.
POLL_INTERVAL = 0.3
BACKOFF_CAP = 1.0


class PullChannelProfile(ABC):
    """Describes one pull channel type to the suite: its peer, its settings, and how to publish items."""

    channel_type: ClassVar[str]
    #: The channel instance the suite configures, e.g. "twitter:test".
    channel_id: ClassVar[str]
    #: The text the "valid" item must be stored with, when the profile knows it exactly.
    expected_text: ClassVar[str | None] = None

    @abstractmethod
    def start_peer(self) -> contextlib.AbstractContextManager[Any]:
        """Start the platform's stand-in on loopback; the context yields a handle the other methods take."""

    @abstractmethod
    def channel_settings(self, peer: Any) -> dict[str, Any]:
        """The instance's `settings:` block, pointing at the peer."""

    @abstractmethod
    def add_item(self, peer: Any, name: str) -> str:
        """Publish one new item on the peer (`name` is "valid" or "another"); return its external id."""

    @abstractmethod
    def set_failing(self, peer: Any, failing: bool) -> None:
        """Make the peer fail every request (5xx or refused), or answer again."""

    def channel_config(self, peer: Any) -> dict[str, Any]:
        """The `channels:` entry: the settings plus a fast poll, so the suite does not wait minutes."""
        return {
            "type": self.channel_type,
            "poll_interval_seconds": POLL_INTERVAL,
            "poll_backoff_cap_seconds": BACKOFF_CAP,
            "settings": self.channel_settings(peer),
        }

    def secrets(self, peer: Any) -> list[str]:
        """Strings that must never appear in logs, cursors or errors: by default, every setting whose key
        contains secret, token, key or password."""
        return [
            value
            for key, value in _strings(self.channel_settings(peer))
            if any(word in key.lower() for word in SECRET_WORDS) and len(value) >= 6
        ]


def _succeeded_since(before: datetime | None, state: cursors.ChannelCursor) -> bool:
    return state.last_success_at is not None and state.last_success_at != before


class PullContractSuite:
    """Common cases for one pull channel type; set `profile` to a `PullChannelProfile` instance."""

    profile: ClassVar[PullChannelProfile]

    @pytest.fixture(autouse=True)
    def kanal_network_guard(self, monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
        guard = LoopbackOnly()
        guard.install(monkeypatch)
        return guard

    @pytest.fixture
    def kanal_database_url(self, tmp_path: Path) -> str:
        """A fresh SQLite file; override to run the suite on another database."""
        return f"sqlite:///{tmp_path / 'kanal.sqlite3'}"

    @pytest.fixture
    def kanal_peer(self) -> Iterator[Any]:
        profile = getattr(self, "profile", None)
        if not isinstance(profile, PullChannelProfile):
            pytest.fail(f"{type(self).__name__}.profile must be a PullChannelProfile instance, got {profile!r}")
        installed = adapter_types(get_plugin_manager())
        if profile.channel_type not in installed:
            pytest.fail(f"channel type {profile.channel_type!r} is not installed; install its package", pytrace=False)
        with profile.start_peer() as peer:
            # Read from an instance: a type may pull or not depending on its settings (Telegram's mode).
            adapter = build_adapter(installed[profile.channel_type], profile.channel_settings(peer))
            if not adapter.pulls:
                pytest.fail(f"channel {profile.channel_id!r} does not pull with these settings: use ContractSuite")
            yield peer

    @pytest.fixture
    def kanal_config(self, kanal_database_url: str, kanal_peer: Any) -> dict[str, Any]:
        return kanal_settings(kanal_database_url, {self.profile.channel_id: self.profile.channel_config(kanal_peer)})

    # ------------------------------------------------------------------------------------------ helpers

    def _ids(self, gateway: KanalUnderTest) -> list[str]:
        return [row.external_id for row in inbound_messages(gateway.runtime.engine)]

    def _state(self, gateway: KanalUnderTest) -> cursors.ChannelCursor:
        with read_session(gateway.runtime.engine) as session:
            return cursors.read_state(session.connection(), self.profile.channel_id)

    def _state_when(
        self, gateway: KanalUnderTest, predicate: Callable[[cursors.ChannelCursor], bool], what: str
    ) -> cursors.ChannelCursor:
        """The channel's poll state, once `predicate` holds for it."""
        found: list[cursors.ChannelCursor] = []

        def holds() -> bool:
            state = self._state(gateway)
            if predicate(state):
                found.append(state)
                return True
            return False

        wait_until(holds, timeout=POLL_TIMEOUT, what=what)
        return found[-1]

    def _polls_after(self, gateway: KanalUnderTest, count: int = 2) -> None:
        """Wait until `count` more polls have succeeded, so anything they would store twice is stored."""
        for _ in range(count):
            before = self._state(gateway).last_success_at
            self._state_when(
                gateway,
                partial(_succeeded_since, before),
                "another successful poll",
            )

    # --------------------------------------------------------------------------------------------- cases

    def test_an_item_is_polled_stored_once_and_becomes_a_report(
        self, kanal_config: dict[str, Any], kanal_peer: Any
    ) -> None:
        external_id = self.profile.add_item(kanal_peer, "valid")
        with KanalUnderTest(kanal_config) as gateway:
            wait_until(lambda: external_id in self._ids(gateway), timeout=POLL_TIMEOUT, what="the item polled")
            [report] = wait_until(lambda: reports(gateway.runtime.engine), timeout=POLL_TIMEOUT, what="its report")
            self._polls_after(gateway)
            assert self._ids(gateway) == [external_id], "polling again must not store an item twice"
            assert len(reports(gateway.runtime.engine)) == 1
        assert report.channel_id == self.profile.channel_id
        if self.profile.expected_text is not None:
            assert report.text_original == self.profile.expected_text

    def test_a_restart_between_polls_loses_nothing_and_stores_nothing_twice(
        self, kanal_config: dict[str, Any], kanal_peer: Any
    ) -> None:
        first = self.profile.add_item(kanal_peer, "valid")
        with KanalUnderTest(kanal_config) as gateway:
            wait_until(lambda: first in self._ids(gateway), timeout=POLL_TIMEOUT, what="the first item")
        second = self.profile.add_item(kanal_peer, "another")  # published while Kanal is down
        with KanalUnderTest(kanal_config) as gateway:
            wait_until(lambda: second in self._ids(gateway), timeout=POLL_TIMEOUT, what="the item from the gap")
            self._polls_after(gateway)
            assert sorted(self._ids(gateway)) == sorted([first, second])

    def test_a_failing_platform_is_recorded_backed_off_and_recovered_without_loss(
        self, kanal_config: dict[str, Any], kanal_peer: Any
    ) -> None:
        self.profile.set_failing(kanal_peer, True)
        external_id = self.profile.add_item(kanal_peer, "valid")
        with KanalUnderTest(kanal_config) as gateway:
            failed = self._state_when(gateway, lambda s: s.consecutive_failures >= 2, "two failed polls recorded")
            assert failed.last_error, "a failed poll must say why"
            assert failed.next_attempt_at is not None, "a failed poll must schedule its retry"
            assert self._ids(gateway) == []
            self.profile.set_failing(kanal_peer, False)
            wait_until(lambda: external_id in self._ids(gateway), timeout=POLL_TIMEOUT, what="the item after recovery")
            recovered = self._state_when(gateway, lambda s: s.last_error is None, "recovery")
            assert recovered.consecutive_failures == 0
            assert self._ids(gateway) == [external_id]

    def test_secrets_never_reach_logs_cursors_or_errors(
        self, kanal_config: dict[str, Any], kanal_peer: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        self.profile.set_failing(kanal_peer, True)
        external_id = self.profile.add_item(kanal_peer, "valid")
        with KanalUnderTest(kanal_config) as gateway:
            failed = self._state_when(gateway, lambda s: s.consecutive_failures >= 1, "a failed poll")
            self.profile.set_failing(kanal_peer, False)
            wait_until(lambda: external_id in self._ids(gateway), timeout=POLL_TIMEOUT, what="the item")
            ok = self._state(gateway)
        secrets = [*self.profile.secrets(kanal_peer), str(kanal_config["secret_key"])]
        for secret in secrets:
            shown = secret[:3] + "..."
            assert secret not in caplog.text, f"secret {shown} was logged"
            assert secret not in (failed.last_error or ""), f"secret {shown} is in the recorded error"
            assert secret not in (ok.cursor or ""), f"secret {shown} is in the stored cursor"

    def test_timestamps_are_timezone_aware_and_nothing_leaves_loopback(
        self, kanal_config: dict[str, Any], kanal_peer: Any, kanal_network_guard: LoopbackOnly
    ) -> None:
        external_id = self.profile.add_item(kanal_peer, "valid")
        with KanalUnderTest(kanal_config) as gateway:
            wait_until(lambda: external_id in self._ids(gateway), timeout=POLL_TIMEOUT, what="the item")
            [row] = inbound_messages(gateway.runtime.engine)
        assert row.received_at.tzinfo is not None
        sent_at = row.message.get("sent_at")
        if sent_at is not None:
            assert sent_at.endswith("Z") or sent_at[-6] in "+-", f"sent_at stored without a UTC offset: {sent_at}"
        assert kanal_network_guard.blocked == [], f"connections off this machine: {kanal_network_guard.blocked}"
