"""The contract every adapter meets, whatever its wire format, as a test class to subclass.

    class TestLineContract(ContractSuite):
        profile = LineProfile()

pytest then runs each `test_*` method below against a real Kanal (in this process, on a fresh SQLite
file) with the profile's channel configured. The fixtures are methods of the class, so the suite needs
nothing from Kanal's own tests and works whether or not the `kanal_testing` pytest plugin is loaded.
Override `kanal_database_url` (or any other fixture) in the subclass to change what the suite runs on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from gateway.plugins import adapter_types, get_plugin_manager
from kanal_testing.network import LoopbackOnly
from kanal_testing.profile import ChannelProfile
from kanal_testing.server import KanalUnderTest, kanal_settings, wait_until
from kanal_testing.store import inbound_messages, inbox_count, quarantine_rows, raw_deliveries, reports

#: How long the normalizer may take to turn a stored message into a report.
REPORT_TIMEOUT = 15.0


def _assert_refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {response.text[:300]}"


def _assert_signature_refused(response: httpx.Response) -> None:
    assert response.status_code in (401, 403), f"expected 401 or 403, got {response.status_code}: {response.text[:300]}"


class ContractSuite:
    """Common cases for one channel type; set `profile` to a `ChannelProfile` instance in the subclass."""

    profile: ClassVar[ChannelProfile]

    # ------------------------------------------------------------------------------------------ fixtures

    @pytest.fixture(autouse=True)
    def kanal_network_guard(self, monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
        """Every test of the suite: no connection may leave loopback; attempts are refused and recorded."""
        guard = LoopbackOnly()
        guard.install(monkeypatch)
        return guard

    @pytest.fixture
    def kanal_database_url(self, tmp_path: Path) -> str:
        """A fresh, empty SQLite file for this test; Kanal creates its schema on start."""
        return f"sqlite:///{tmp_path / 'kanal.sqlite3'}"

    @pytest.fixture
    def kanal_config(self, kanal_database_url: str) -> dict[str, Any]:
        """Kanal's settings with the profile's channel (and its extra channels) configured."""
        profile = getattr(self, "profile", None)
        if not isinstance(profile, ChannelProfile):
            pytest.fail(f"{type(self).__name__}.profile must be a ChannelProfile instance, got {profile!r}")
        installed = adapter_types(get_plugin_manager())
        if profile.channel_type not in installed:
            pytest.fail(
                f"channel type {profile.channel_type!r} is not installed (Kanal has: {', '.join(sorted(installed))}); "
                "install the package that provides it (`pip install -e .` in its folder) so its `kanal` entry point "
                "is found",
                pytrace=False,
            )
        channels = {profile.channel_id: profile.channel_config(), **profile.extra_channels()}
        return kanal_settings(kanal_database_url, channels)

    @pytest.fixture
    def kanal_gateway(self, kanal_config: dict[str, Any]) -> Iterator[KanalUnderTest]:
        with KanalUnderTest(kanal_config) as running:
            yield running

    @pytest.fixture
    def kanal_http(self, kanal_gateway: KanalUnderTest) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=kanal_gateway.url, timeout=30) as client:
            yield client

    # --------------------------------------------------------------------------------------------- cases

    def test_empty_body_is_refused_and_nothing_stored(
        self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest
    ) -> None:
        response = self.profile.send(kanal_http, self.profile.prepare_raw(kanal_http, b""))
        _assert_refused(response)
        assert inbox_count(kanal_gateway.runtime.engine) == 0, "an empty delivery was stored as a message"

    def test_garbage_bytes_are_refused_and_quarantined(
        self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest
    ) -> None:
        garbage = os.urandom(512) + b"\x00\xff{not json"
        response = self.profile.send(kanal_http, self.profile.prepare_raw(kanal_http, garbage))
        _assert_refused(response)
        engine = kanal_gateway.runtime.engine
        assert inbox_count(engine) == 0, "garbage was stored as a message"
        kept = quarantine_rows(engine)
        assert len(kept) == 1, f"garbage must be kept once for inspection, found {len(kept)} quarantined"
        assert kept[0].channel_id == self.profile.channel_id
        assert kept[0].body and garbage.startswith(kept[0].body[:64]), "the quarantined preview is not the body sent"
        assert kept[0].body_size == len(garbage)

    def test_bad_signature_is_refused(self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest) -> None:
        prepared = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        _assert_signature_refused(self.profile.send(kanal_http, self.profile.tamper(prepared)))
        assert inbox_count(kanal_gateway.runtime.engine) == 0, "a delivery with a wrong signature was stored"

    def test_missing_signature_is_refused(self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest) -> None:
        prepared = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        _assert_signature_refused(self.profile.send(kanal_http, self.profile.strip(prepared)))
        assert inbox_count(kanal_gateway.runtime.engine) == 0, "a delivery without a signature was stored"

    def test_valid_delivery_is_stored_and_becomes_a_report(
        self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest
    ) -> None:
        response = self.profile.send(kanal_http, self.profile.prepare(kanal_http, self.profile.valid_fixture))
        assert response.status_code == 200, f"valid fixture answered {response.status_code}: {response.text[:300]}"
        engine = kanal_gateway.runtime.engine
        rows = inbound_messages(engine)
        assert len(rows) == 1, f"expected the valid fixture stored as one message, found {len(rows)}"
        assert rows[0].channel_id == self.profile.channel_id
        if self.profile.expected_text is not None:
            assert rows[0].message["text"] == self.profile.expected_text
        [report] = wait_until(lambda: reports(engine), timeout=REPORT_TIMEOUT, what="a report from the message")
        assert report.channel_id == self.profile.channel_id
        if self.profile.expected_text is not None:
            assert report.text_original == self.profile.expected_text

    def test_duplicate_delivery_is_stored_once_and_counted(
        self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest
    ) -> None:
        prepared = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        first, second = self.profile.send(kanal_http, prepared), self.profile.send(kanal_http, prepared)
        assert (first.status_code, second.status_code) == (200, 200), (first.text[:300], second.text[:300])
        engine = kanal_gateway.runtime.engine
        rows = inbound_messages(engine)
        assert len(rows) == 1 and rows[0].delivery_count == 2, "a redelivery must be recognised, not stored again"
        assert len(raw_deliveries(engine)) == 1, "a redelivery must not store the bytes a second time"
        wait_until(lambda: len(reports(engine)) == 1, timeout=REPORT_TIMEOUT, what="one report")
        duplicates = kanal_gateway.runtime.counters.value(
            "kanal_inbound_deliveries_total", channel=self.profile.channel_id, outcome="duplicate"
        )
        assert duplicates == 1, f"kanal_inbound_deliveries_total{{outcome=duplicate}} is {duplicates}, expected 1"

    def test_timestamps_are_timezone_aware(self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest) -> None:
        prepared = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        assert self.profile.send(kanal_http, prepared).status_code == 200
        engine = kanal_gateway.runtime.engine
        [report] = wait_until(lambda: reports(engine), timeout=REPORT_TIMEOUT, what="the report")
        [row] = inbound_messages(engine)
        assert row.received_at.tzinfo is not None and report.created_at.tzinfo is not None
        sent_at = row.message.get("sent_at")
        if sent_at is not None:
            assert sent_at.endswith("Z") or sent_at[-6] in "+-", f"sent_at stored without a UTC offset: {sent_at}"

    def test_no_connection_leaves_loopback(
        self, kanal_http: httpx.Client, kanal_gateway: KanalUnderTest, kanal_network_guard: LoopbackOnly
    ) -> None:
        prepared = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        assert self.profile.send(kanal_http, prepared).status_code == 200
        wait_until(lambda: reports(kanal_gateway.runtime.engine), timeout=REPORT_TIMEOUT, what="the report")
        assert kanal_network_guard.blocked == [], f"connections off this machine: {kanal_network_guard.blocked}"

    def test_secrets_never_reach_logs_or_storage(
        self,
        kanal_http: httpx.Client,
        kanal_gateway: KanalUnderTest,
        kanal_config: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        good = self.profile.prepare(kanal_http, self.profile.valid_fixture)
        for prepared in (good, self.profile.tamper(good), self.profile.prepare_raw(kanal_http, b"\x00garbage")):
            self.profile.send(kanal_http, prepared)
        engine = kanal_gateway.runtime.engine
        wait_until(lambda: reports(engine), timeout=REPORT_TIMEOUT, what="the report")
        stored_headers = [str(d.headers) for d in raw_deliveries(engine)]
        stored_headers += [str(q.headers) for q in quarantine_rows(engine)]
        assert len(stored_headers) >= 2, "expected the good delivery stored and the refused ones quarantined"
        for secret in [*self.profile.secrets(), str(kanal_config["secret_key"])]:
            shown = secret[:4] + "..."
            assert secret not in caplog.text, f"secret {shown} was logged"
            assert all(secret not in headers for headers in stored_headers), f"secret {shown} stored in headers"
