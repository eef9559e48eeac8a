"""Cases every registered adapter gets for free, whatever its wire format (see profiles.py)."""

from __future__ import annotations

import logging
import os

import httpx
import pytest
from sqlalchemy import select

from gateway.db import read_session
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.plugins import adapter_types, get_plugin_manager
from tests.contract.profiles import PROFILES, ChannelProfile
from tests.support.api_client import inbox_count, quarantine_rows, reports
from tests.support.network_guard import LoopbackOnly
from tests.support.servers import RunningGateway, wait_until

REGISTERED = sorted(adapter_types(get_plugin_manager()))


def test_every_registered_adapter_has_a_contract_profile() -> None:
    missing = [kind for kind in REGISTERED if kind not in PROFILES]
    assert not missing, f"adapters without a contract profile in tests/contract/profiles.py: {missing}"


@pytest.fixture(params=REGISTERED)
def profile(request: pytest.FixtureRequest) -> ChannelProfile:
    if request.param not in PROFILES:
        pytest.fail(f"no contract profile for adapter {request.param!r}")
    return PROFILES[request.param]


def _assert_rejected(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, f"expected 4xx, got {response.status_code}: {response.text[:300]}"


def test_empty_body_is_refused_and_nothing_stored(
    profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway
) -> None:
    response = profile.send(http, profile.prepare_raw(http, b""))
    _assert_rejected(response)
    assert inbox_count(gateway.runtime.engine) == 0


def test_garbage_bytes_are_refused_and_quarantined(
    profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway
) -> None:
    garbage = os.urandom(512) + b"\x00\xff{not json"
    response = profile.send(http, profile.prepare_raw(http, garbage))
    _assert_rejected(response)
    assert inbox_count(gateway.runtime.engine) == 0
    kept = quarantine_rows(gateway.runtime.engine)
    assert len(kept) == 1 and kept[0].channel_id == profile.channel_id
    assert garbage.startswith(kept[0].body[:64]) and kept[0].body_size == len(garbage)


def test_bad_signature_is_refused(profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway) -> None:
    response = profile.send(http, profile.tamper(profile.prepare(http, profile.valid_fixture)))
    assert response.status_code in (401, 403), response.text[:300]
    assert inbox_count(gateway.runtime.engine) == 0


def test_missing_signature_is_refused(profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway) -> None:
    response = profile.send(http, profile.strip(profile.prepare(http, profile.valid_fixture)))
    assert response.status_code in (401, 403), response.text[:300]
    assert inbox_count(gateway.runtime.engine) == 0


def test_duplicate_delivery_is_stored_once_and_counted(
    profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway
) -> None:
    prepared = profile.prepare(http, profile.valid_fixture)
    first, second = profile.send(http, prepared), profile.send(http, prepared)
    assert first.status_code == 200 and second.status_code == 200, (first.text[:300], second.text[:300])
    engine = gateway.runtime.engine
    with read_session(engine) as session:
        rows = list(session.execute(select(InboundMessageRow)).scalars())
        deliveries = list(session.execute(select(RawDelivery)).scalars())
    assert len(rows) == 1 and rows[0].delivery_count == 2
    assert len(deliveries) == 1, "a redelivery must not store the bytes a second time"
    wait_until(lambda: len(reports(engine)) == 1, timeout=10, what="one report")
    assert (
        gateway.runtime.counters.value(
            "kanal_inbound_deliveries_total", channel=profile.channel_id, outcome="duplicate"
        )
        == 1
    )


def test_timestamps_are_timezone_aware(profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway) -> None:
    assert profile.send(http, profile.prepare(http, profile.valid_fixture)).status_code == 200
    engine = gateway.runtime.engine
    report = wait_until(lambda: (reports(engine) or [None])[0], timeout=10, what="the report")
    with read_session(engine) as session:
        row = session.execute(select(InboundMessageRow)).scalar_one()
    assert row.received_at.tzinfo is not None and report.created_at.tzinfo is not None
    sent_at = row.message.get("sent_at")
    if sent_at is not None:
        assert sent_at.endswith("Z") or sent_at[-6] in "+-", f"sent_at stored without an offset: {sent_at}"


def test_no_connection_leaves_loopback(
    profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway, network_guard: LoopbackOnly
) -> None:
    assert profile.send(http, profile.prepare(http, profile.valid_fixture)).status_code == 200
    wait_until(lambda: reports(gateway.runtime.engine), timeout=10, what="the report")
    assert network_guard.blocked == []


def test_secrets_never_reach_logs_or_storage(
    profile: ChannelProfile, http: httpx.Client, gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = profile.prepare(http, profile.valid_fixture)
    for prepared in (good, profile.tamper(good), profile.prepare_raw(http, b"\x00garbage")):
        profile.send(http, prepared)
    engine = gateway.runtime.engine
    wait_until(lambda: reports(engine), timeout=10, what="the report")
    with read_session(engine) as session:
        stored_headers = [str(d.headers) for d in session.execute(select(RawDelivery)).scalars()]
    stored_headers += [str(q.headers) for q in quarantine_rows(engine)]
    for secret in profile.secrets():
        assert secret not in caplog.text
        assert all(secret not in headers for headers in stored_headers)
