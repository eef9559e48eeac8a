"""The LINE adapter inside a real Kanal: the contract kit's common cases, and one complaint followed end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from kanal_testing import (
    ChannelProfile,
    ContractSuite,
    KanalUnderTest,
    Prepared,
    hmac_sha256_base64,
    kanal_settings,
    wait_until,
)
from review_queue.tables import Report
from sqlmodel import Session, select

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
TOKEN = "line-test-access-token/7Hk2Qw9zLx3Vb8Nm4Rt6Yp1Ju5="
#: Nothing listens on port 9 (discard): a push or content fetch that should not happen fails on this machine.
NOWHERE = "http://127.0.0.1:9"
FULL_TEXT = (
    "Lampu jalan mati di Jl. Cikini Raya depan Taman Ismail Marzuki, Kel. Cikini, Menteng. "
    "Sudah tiga malam gelap total, rawan jambret. Mohon segera diperbaiki."
)
#: Kelurahan Cikini, Kecamatan Menteng, Jakarta Pusat (normalizer/data/wilayah.csv).
CIKINI = "31.71.06.1003"


def line_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """What LINE sends with a webhook: JSON, signed with the channel secret."""
    return {"Content-Type": "application/json", "X-Line-Signature": hmac_sha256_base64(secret, body)}


class LineProfile(ChannelProfile):
    channel_type = "line"
    channel_id = "line:test"
    channel_settings = {
        "channel_secret": SECRET,
        "channel_access_token": TOKEN,
        "api_base_url": NOWHERE,
        "data_api_base_url": NOWHERE,
    }
    fixtures = FIXTURES
    valid_fixture = "full.json"
    expected_text = FULL_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, line_headers(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=line_headers(prepared.content, secret="ffffffffffffffffffffffffffffffff"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


class TestLineContract(ContractSuite):
    profile = LineProfile()


def _post(http: httpx.Client, fixture: str) -> httpx.Response:
    body = (FIXTURES / fixture).read_bytes()
    return http.post("/channels/line:dki/inbound", content=body, headers=line_headers(body))


def _reports(kanal: KanalUnderTest) -> list[Report]:
    with Session(kanal.runtime.engine) as session:
        return list(session.exec(select(Report)).all())


def test_line_complaint_becomes_a_report_in_cikini(tmp_path: Path) -> None:
    """A third-party adapter, found through its entry point, delivers a citizen's LINE message to the review queue."""
    channels: dict[str, dict[str, Any]] = {
        "line:dki": {
            "type": "line",
            "settings": {"channel_secret": SECRET, "channel_access_token": TOKEN, "api_base_url": NOWHERE},
        }
    }
    with (
        KanalUnderTest(kanal_settings(f"sqlite:///{tmp_path / 'kanal.sqlite3'}", channels)) as kanal,
        httpx.Client(base_url=kanal.url, timeout=30) as http,
    ):
        # The console's "Verify" button comes first when an operator sets the webhook URL up.
        verification = _post(http, "verification.json")
        assert verification.status_code == 200, verification.text
        assert json.loads(verification.content) == {"ignored": "webhook verification"}

        accepted = _post(http, "full.json")
        assert accepted.status_code == 200, accepted.text
        [outcome] = accepted.json()["accepted"]
        assert outcome["external_id"] == "01JDBQ7F9W3K5M8N2P4R6T8V0X" and not outcome["duplicate"]

        # LINE redelivers when our answer was lost; it must not become a second report.
        again = _post(http, "redelivery.json")
        assert again.status_code == 200, again.text
        assert again.json()["accepted"][0] == {**outcome, "duplicate": True}

        sticker = _post(http, "sticker.json")
        assert sticker.status_code == 200 and "sticker" in sticker.json()["ignored"]

        [report] = wait_until(lambda: _reports(kanal), timeout=15, what="a report from the LINE message")
        assert "Lampu jalan mati di Jl. Cikini Raya" in report.text_original
        assert report.channel_id == "line:dki"
        assert report.kelurahan_code == CIKINI
        assert report.sender is not None and report.sender.get("id") == "U4af4980629a3c1d5e8f0b2c4d6e8f0a1"
        assert len(_reports(kanal)) == 1
