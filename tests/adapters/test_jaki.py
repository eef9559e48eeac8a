"""The `jaki` channel type through the real route: the adapter kit's contract, labelled report fixtures,
the app's categories, and JAKI being trusted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from kanal_testing import (
    Case,
    ChannelProfile,
    ContractSuite,
    KanalUnderTest,
    Prepared,
    inbound_messages,
    inbox_count,
    quarantine_rows,
    run_case,
)
from tests.peers.jaki_app import jaki_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jaki"
JAKI_SECRET = "jaki-backend-shared-secret-42"  # noqa: S105 (a test deployment's secret)
FULL_TEXT = (
    "Jalan berlubang cukup dalam di Jl. Kramat Raya depan Halte Senen arah Salemba. Sudah dua minggu, "
    "beberapa pengendara motor terjatuh saat hujan."
)
CATEGORY_MAP = {
    "Jalan Rusak": "jalan",
    "Parkir Liar": "parkir-liar",
    "Sampah": "sampah",
    "Pohon Tumbang": "pohon",
    "Penerangan Jalan Umum": "pju",
}


def jaki_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "secret": JAKI_SECRET,
        "category_map": CATEGORY_MAP,
        "media_hosts": ["foto.jaki.jakarta.go.id"],
        **overrides,
    }


class JakiProfile(ChannelProfile):
    channel_type = "jaki"
    channel_id = "jaki:app"
    channel_settings = jaki_settings()
    fixtures = FIXTURES
    expected_text = FULL_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(
            body, {"Content-Type": "application/json", "X-Kanal-Signature": jaki_signature(JAKI_SECRET, body)}
        )

    def tamper(self, prepared: Prepared) -> Prepared:
        forged = jaki_signature("not-the-jaki-secret-000000", prepared.content)
        return replace(prepared, headers={**prepared.headers, "X-Kanal-Signature": forged})

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = JakiProfile()


class TestJakiContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


@pytest.fixture
def gateway(kanal_start: Callable[..., KanalUnderTest]) -> KanalUnderTest:
    return kanal_start({PROFILE.channel_id: PROFILE.channel_config()})


@pytest.fixture
def http(gateway: KanalUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


CASES = [
    Case(
        "full report",
        "full.json",
        200,
        text=FULL_TEXT,
        external_id="JAKI-2026-03-000123",
        sender_name="Siti Rahmawati",
        address="Jl. Kramat Raya No. 45",
        media_count=2,
    ),
    Case(
        "only the required fields",
        "minimal.json",
        200,
        text="Sampah menumpuk di TPS Jl. Percetakan Negara, belum diangkut tiga hari.",
        external_id="JAKI-2026-03-000124",
    ),
    Case("a category the map does not know", "unknown_category.json", 200, external_id="JAKI-2026-03-000125"),
    Case("a photo without a description", "photo_only.json", 200, text="", media_count=1, sender_name="Andi"),
    Case("no reporter", "missing_reporter.json", 422, error="reporter"),
    Case("latitude without longitude", "latitude_without_longitude.json", 422, error="latitude and longitude"),
    Case("a time without its offset", "naive_created_at.json", 422, error="created_at"),
    Case("a photo that is not a web address", "photo_not_http.json", 422, error="photos.0.url"),
    Case("a list instead of one report", "json_list.json", 400, error="one JSON report object"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_jaki_case(case: Case, http: httpx.Client, gateway: KanalUnderTest) -> None:
    run_case(PROFILE, case, http, gateway)


def test_full_report_keeps_coordinates_photos_reporter_and_category(
    http: httpx.Client, gateway: KanalUnderTest
) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "full.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    message = row.message
    assert message["location"] == {
        "lat": -6.18565,
        "lng": 106.84378,
        "address": "Jl. Kramat Raya No. 45, Kenari, Senen, Jakarta Pusat",
    }
    assert [m["url"] for m in message["media"]] == [
        "https://foto.jaki.jakarta.go.id/laporan/2026/03/JAKI-2026-03-000123-1.jpg",
        "https://foto.jaki.jakarta.go.id/laporan/2026/03/JAKI-2026-03-000123-2.jpg",
    ]
    assert message["sender"] == {
        "id": "jaki-u-7731904",
        "name": "Siti Rahmawati",
        "phone": "+6281288991020",
        "email": "siti.rahma@example.id",
    }
    assert message["category_hint"] == "jalan"
    assert datetime.fromisoformat(message["sent_at"]) == datetime(2026, 3, 11, 2, 42, 17, tzinfo=UTC)


def test_an_unknown_category_is_stored_without_a_hint(http: httpx.Client, gateway: KanalUnderTest) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "unknown_category.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert "category_hint" not in row.message or row.message["category_hint"] is None


def test_a_redelivered_report_is_stored_once(http: httpx.Client, gateway: KanalUnderTest) -> None:
    first = PROFILE.prepare(http, "full.json")
    # The app resends with a fresh signature: still the same report.
    second = PROFILE.prepare(http, "full.json")
    assert [PROFILE.send(http, p).status_code for p in (first, second)] == [200, 200]
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.delivery_count == 2


def test_a_wrong_secret_is_refused_and_quarantined(http: httpx.Client, gateway: KanalUnderTest) -> None:
    response = PROFILE.send(http, PROFILE.tamper(PROFILE.prepare(http, "full.json")))
    assert response.status_code == 401
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    [kept] = quarantine_rows(engine)
    assert kept.status_code == 401


def test_a_replayed_old_delivery_is_refused_with_the_clock_skew(http: httpx.Client, gateway: KanalUnderTest) -> None:
    body = (FIXTURES / "full.json").read_bytes()
    stale = {
        "Content-Type": "application/json",
        "X-Kanal-Signature": jaki_signature(JAKI_SECRET, body, int(time.time()) - 301),
    }
    response = http.post(PROFILE.url(), content=body, headers=stale)
    assert response.status_code == 401 and "away from our clock" in response.json()["detail"]
    assert inbox_count(gateway.runtime.engine) == 0


def test_a_malformed_report_is_kept_in_quarantine_with_the_reason(http: httpx.Client, gateway: KanalUnderTest) -> None:
    response = PROFILE.send(http, PROFILE.prepare(http, "missing_reporter.json"))
    assert response.status_code == 422
    [kept] = quarantine_rows(gateway.runtime.engine)
    assert kept.status_code == 422 and "reporter" in kept.reason
    assert kept.body == (FIXTURES / "missing_reporter.json").read_bytes()


def test_jaki_is_trusted_and_acknowledged_unless_configured_otherwise(
    kanal_start: Callable[..., KanalUnderTest],
) -> None:
    gateway = kanal_start(
        {
            "jaki:app": PROFILE.channel_config(),
            "jaki:pilot": {"type": "jaki", "trusted": False, "settings": jaki_settings()},
        }
    )
    channels = gateway.runtime.channels
    assert channels["jaki:app"].config.trusted is True
    assert channels["jaki:app"].config.acknowledge_receipt is True
    assert channels["jaki:pilot"].config.trusted is False


def test_the_apps_own_header_name_is_honoured(kanal_start: Callable[..., KanalUnderTest]) -> None:
    channels = {"jaki:app": {"type": "jaki", "settings": jaki_settings(signature_header="X-Jaki-Signature")}}
    gateway = kanal_start(channels)
    body = (FIXTURES / "minimal.json").read_bytes()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        kanal_header = client.post(
            PROFILE.url(), content=body, headers={"X-Kanal-Signature": jaki_signature(JAKI_SECRET, body)}
        )
        jaki_header = client.post(
            PROFILE.url(), content=body, headers={"X-Jaki-Signature": jaki_signature(JAKI_SECRET, body)}
        )
    assert kanal_header.status_code == 401 and "missing X-Jaki-Signature" in kanal_header.json()["detail"]
    assert jaki_header.status_code == 200
