"""The `api` channel type: the adapter kit's contract, labelled payload fixtures through the real HTTP route,
and its signature rules."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from kanal_testing import Case, ChannelProfile, ContractSuite, Prepared, run_case
from tests.conftest import TEST_API_SECRET
from tests.support.api_client import inbox_count, post_api, quarantine_rows, reports, signed_headers
from tests.support.servers import RunningGateway, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "api"
FULL_TEXT = (
    "Jalan berlubang besar di Jl. Kramat Raya depan halte Senen, sudah dua minggu belum diperbaiki. Motor sering jatuh."
)


class ApiProfile(ChannelProfile):
    channel_type = "api"
    channel_id = "api:partner"
    channel_settings = {"secret": TEST_API_SECRET}
    fixtures = FIXTURES
    expected_text = FULL_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, signed_headers(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=signed_headers(prepared.content, secret="not-the-partner-secret-000"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = ApiProfile()


class TestApiContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        # Kanal's own suite runs the contract on both engines (the conftest's `database_url`).
        return database_url


CASES = [
    Case(
        "full payload",
        "full.json",
        200,
        text=FULL_TEXT,
        external_id="cc-2026-000417",
        sender_name="Budi Santoso",
        address="Kramat Raya",
        media_count=1,
    ),
    Case(
        "only the required fields",
        "minimal.json",
        200,
        text="Sampah menumpuk di pinggir kali",
        external_id="qlue-88123",
    ),
    Case(
        "markup kept raw in the inbox",
        "html_text.json",
        200,
        text="<p>Lampu <b>PJU</b> mati &amp; jalan gelap</p><p>Mohon segera diperbaiki</p>",
    ),
    Case(
        "NUL characters dropped",
        "nul_in_text.json",
        200,
        text="Jalan rusak di depan sekolah, mohon segera diperbaiki",
        sender_name="Ani",
    ),
    Case("unknown fields ignored", "unknown_fields.json", 200, external_id="partner-extra-1"),
    Case("timestamp without offset", "naive_sent_at.json", 422, error="sent_at"),
    Case("text missing", "missing_text.json", 422, error="text"),
    Case("a list instead of an object", "json_list.json", 400, error="one JSON object"),
    Case("latitude and longitude swapped", "bad_coordinates.json", 422, error="location.lat"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_api_case(case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    run_case(PROFILE, case, http, gateway)


def test_stale_signature_is_refused_with_the_clock_skew(http: httpx.Client, gateway: RunningGateway) -> None:
    response = post_api(http, {"external_id": "late-1", "text": "Pohon tumbang"}, timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert "away from our clock" in response.json()["detail"]
    assert inbox_count(gateway.runtime.engine) == 0


def test_previous_secret_still_accepted_during_rotation(settings: dict, crm) -> None:  # type: ignore[no-untyped-def]
    settings["channels"]["api:partner"]["settings"] = {
        "secret": "the-new-secret-0123456789",
        "previous_secrets": ["test-partner-secret-0123456789"],
    }
    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url) as http:
        old = post_api(http, {"external_id": "rot-1", "text": "Lampu mati"})
        new = post_api(http, {"external_id": "rot-2", "text": "Lampu mati"}, secret="the-new-secret-0123456789")
        assert (old.status_code, new.status_code) == (200, 200)


def test_body_over_the_limit_is_refused_without_reading_it_all(http: httpx.Client, gateway: RunningGateway) -> None:
    body = json.dumps({"external_id": "big-1", "text": "x" * (10 * 1024 * 1024)}).encode()
    response = post_api(http, body)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    kept = quarantine_rows(gateway.runtime.engine)
    assert len(kept) == 1 and kept[0].body_size >= len(body) and len(kept[0].body) <= 4096


def test_nul_characters_do_not_stop_a_report_on_either_engine(http: httpx.Client, gateway: RunningGateway) -> None:
    # PostgreSQL text cannot hold NUL; the raw body keeps it, the parsed message must not.
    delivery = PROFILE.prepare(http, "nul_in_text.json")
    assert PROFILE.send(http, delivery).status_code == 200
    report = wait_until(lambda: (reports(gateway.runtime.engine) or [None])[0], timeout=10, what="the report")
    assert report.text_original == "Jalan rusak di depan sekolah, mohon segera diperbaiki"
