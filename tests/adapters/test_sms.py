"""The `sms` channel type through the real route: the adapter kit's contract (Twilio mode), Twilio's webhook
as documented, a generic gateway's JSON, and several SMS becoming one complaint."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
    reports,
    run_case,
    wait_until,
)
from tests.peers.sms_provider import twilio_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sms"
ACCOUNT_SID = "AC3f9a4e1c2b7d8e6f5a4b3c2d1e0f9a8b"
AUTH_TOKEN = "twilio-test-auth-token-5f2c9e"  # noqa: S105 (a test account's token)
GATEWAY_SECRET = "sms-gateway-shared-secret-0123"  # noqa: S105
COMPLAINT_NUMBER = "+628111272206"
CITIZEN = "+6281311223344"
PJU_TEXT = (
    "Lampu PJU di Jl. Pramuka Raya depan RS Persahabatan mati sejak 3 hari, jalan gelap dan rawan begal. "
    "Mohon segera diperbaiki."
)


def twilio_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "mode": "twilio",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": COMPLAINT_NUMBER,
        # Short, so the contract's "becomes a report" does not wait two minutes for more SMS.
        "fold_window_seconds": 0.5,
        **overrides,
    }


def generic_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "mode": "generic",
        "secret": GATEWAY_SECRET,
        "from_number": "08111272206",
        "fold_window_seconds": 1.5,
        "fields": {
            "sender": "msisdn",
            "text": "text",
            "message_id": "message_id",
            "sent_at": "received_at",
            "concat_ref": "udh.ref",
            "concat_part": "udh.part",
            "concat_total": "udh.parts",
        },
        "ignore_if_present": ["dlr_status"],
        **overrides,
    }


class TwilioProfile(ChannelProfile):
    """Twilio posts the documented parameters form-encoded and signs them with the public webhook URL."""

    channel_type = "sms"
    channel_id = "sms:twilio"
    channel_settings = twilio_settings()
    fixtures = FIXTURES
    valid_fixture = "twilio_text.json"
    expected_text = PJU_TEXT

    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        # The fixtures hold Twilio's parameters as JSON for reading; the wire format is a form.
        params = json.loads((self.fixtures / fixture).read_text(encoding="utf-8"))
        return self.prepare_raw(http, urlencode(params).encode())

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        signature = twilio_signature(AUTH_TOKEN, self.public_url(http), params)
        return Prepared(body, {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})

    def public_url(self, http: httpx.Client) -> str:
        # Kanal under test has public_base_url = its own URL, so the channel route there is what Twilio called.
        return str(http.base_url).rstrip("/") + self.url()

    def tamper(self, prepared: Prepared) -> Prepared:
        params = parse_qsl(prepared.content.decode(), keep_blank_values=True)
        forged = twilio_signature("not-the-auth-token", "http://127.0.0.1/channels/sms:twilio/inbound", params)
        return replace(prepared, headers={**prepared.headers, "X-Twilio-Signature": forged})

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/x-www-form-urlencoded"})


PROFILE = TwilioProfile()


class TestSmsTwilioContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


class GenericProfile(TwilioProfile):
    """A generic gateway posting JSON with a hex HMAC-SHA256 of the body."""

    channel_id = "sms:gateway"
    channel_settings = generic_settings()
    valid_fixture = "generic_text.json"

    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        return self.prepare_raw(http, (self.fixtures / fixture).read_bytes())

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        digest = hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return Prepared(body, {"Content-Type": "application/json", "X-SMS-Signature": digest})


GENERIC = GenericProfile()


@pytest.fixture
def gateway(kanal_start: Callable[..., KanalUnderTest]) -> KanalUnderTest:
    channels = {PROFILE.channel_id: PROFILE.channel_config(), GENERIC.channel_id: GENERIC.channel_config()}
    return kanal_start(channels)


@pytest.fixture
def http(gateway: KanalUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


TWILIO_CASES = [
    Case("plain text SMS", "twilio_text.json", 200, text=PJU_TEXT, external_id="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
    Case(
        "MMS with a photo",
        "twilio_mms_photo.json",
        200,
        external_id="MM5d6e7f8091a2b3c4d5e6f708192a3b4c",
        media_count=1,
    ),
    Case(
        "an address in the text is kept for the normalizer",
        "twilio_with_address.json",
        200,
        text=(
            "Jalan berlubang di Jl. Kramat Raya No. 5, RT 03 RW 02, Kel. Kenari, Kec. Senen, Jakarta Pusat. "
            "Sudah ada motor jatuh."
        ),
    ),
    Case("a WhatsApp message sent to the SMS channel", "twilio_whatsapp.json", 422, error="not a phone number"),
    Case("a webhook without MessageSid", "twilio_no_sid.json", 422, error="MessageSid"),
]


@pytest.mark.parametrize("case", TWILIO_CASES, ids=[c.label for c in TWILIO_CASES])
def test_twilio_webhook_case(case: Case, http: httpx.Client, gateway: KanalUnderTest) -> None:
    run_case(PROFILE, case, http, gateway)


def test_twilio_gets_an_empty_twiml_answer_so_it_sends_no_automatic_reply(
    http: httpx.Client, gateway: KanalUnderTest
) -> None:
    response = PROFILE.send(http, PROFILE.prepare(http, "twilio_text.json"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response></Response>")


def test_the_sender_is_stored_as_an_e164_number(http: httpx.Client, gateway: KanalUnderTest) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "twilio_text.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["sender"] == {"id": CITIZEN, "phone": CITIZEN}


def test_twilio_photo_is_referenced_on_the_api_host_with_its_media_sid(
    http: httpx.Client, gateway: KanalUnderTest
) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "twilio_mms_photo.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    [media] = row.message["media"]
    assert media["url"].startswith(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/")
    assert media["content_type"] == "image/jpeg"
    assert media["platform_id"] == "ME9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.mark.parametrize("fixture", ["twilio_status_delivered.json", "twilio_empty.json"])
def test_status_callbacks_and_empty_sms_are_answered_but_not_stored(
    fixture: str, http: httpx.Client, gateway: KanalUnderTest
) -> None:
    response = PROFILE.send(http, PROFILE.prepare(http, fixture))
    assert response.status_code == 200, response.text
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0 and quarantine_rows(engine) == []


def test_a_redelivered_sms_is_stored_once(http: httpx.Client, gateway: KanalUnderTest) -> None:
    delivery = PROFILE.prepare(http, "twilio_text.json")
    assert [PROFILE.send(http, delivery).status_code for _ in range(3)] == [200, 200, 200]
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.delivery_count == 3


def test_a_forged_twilio_signature_is_refused_and_quarantined(http: httpx.Client, gateway: KanalUnderTest) -> None:
    response = PROFILE.send(http, PROFILE.tamper(PROFILE.prepare(http, "twilio_text.json")))
    assert response.status_code == 401
    assert "X-Twilio-Signature does not match" in response.json()["detail"]
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    [kept] = quarantine_rows(engine)
    assert kept.status_code == 401 and kept.channel_id == PROFILE.channel_id


def test_a_signature_over_the_internal_host_is_refused_when_twilio_was_given_the_public_url(
    kanal_start: Callable[..., KanalUnderTest],
) -> None:
    # Behind a proxy Twilio signs https://kanal.jakarta.go.id/...; Kanal sees the proxy's Host header.
    public = "https://kanal.jakarta.go.id/sms/twilio"
    gateway = kanal_start({"sms:proxied": {"type": "sms", "settings": twilio_settings(public_url=public)}})
    body = urlencode(json.loads((FIXTURES / "twilio_text.json").read_text())).encode()
    params = parse_qsl(body.decode(), keep_blank_values=True)
    route = f"{gateway.url}/channels/sms:proxied/inbound"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(timeout=30) as client:
        internal = client.post(
            route, content=body, headers={**headers, "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, route, params)}
        )
        public_signed = client.post(
            route, content=body, headers={**headers, "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, public, params)}
        )
    assert (internal.status_code, public_signed.status_code) == (401, 200)


# ------------------------------------------------------------------------------------------ generic mode

PARTS = [json.loads((FIXTURES / f"generic_part{n}.json").read_text(encoding="utf-8"))["text"] for n in (1, 2, 3)]


def test_generic_gateway_json_is_stored_with_its_time_and_number(http: httpx.Client, gateway: KanalUnderTest) -> None:
    response = GENERIC.send(http, GENERIC.prepare(http, "generic_text.json"))
    assert response.status_code == 200, response.text
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.external_id == "gw-20260311-00500"
    assert row.message["sender"]["phone"] == CITIZEN  # "0813-1122-3344" as the gateway wrote it
    assert datetime.fromisoformat(row.message["sent_at"]) == datetime(2026, 3, 11, 3, 20, tzinfo=UTC)


def test_generic_form_encoded_delivery_is_stored(http: httpx.Client, gateway: KanalUnderTest) -> None:
    body = urlencode(
        {"msisdn": "6281311223344", "message_id": "gw-form-1", "text": "Pohon tumbang di Jl. Cikini"}
    ).encode()
    prepared = GENERIC.prepare_raw(http, body)
    response = GENERIC.send(
        http, replace(prepared, headers={**prepared.headers, "Content-Type": "application/x-www-form-urlencoded"})
    )
    assert response.status_code == 200, response.text
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["text"] == "Pohon tumbang di Jl. Cikini" and row.message["sender"]["id"] == CITIZEN


def test_generic_delivery_report_is_ignored(http: httpx.Client, gateway: KanalUnderTest) -> None:
    response = GENERIC.send(http, GENERIC.prepare(http, "generic_delivery_report.json"))
    assert response.status_code == 200 and "ignored" in response.json()
    assert inbox_count(gateway.runtime.engine) == 0


def test_generic_wrong_secret_is_refused_and_quarantined(http: httpx.Client, gateway: KanalUnderTest) -> None:
    body = (FIXTURES / "generic_text.json").read_bytes()
    forged = hmac.new(b"not-the-gateway-secret", body, hashlib.sha256).hexdigest()
    response = GENERIC.send(http, Prepared(body, {"Content-Type": "application/json", "X-SMS-Signature": forged}))
    assert response.status_code == 401
    assert inbox_count(gateway.runtime.engine) == 0 and len(quarantine_rows(gateway.runtime.engine)) == 1


def test_a_three_part_sms_is_stored_as_three_deliveries(http: httpx.Client, gateway: KanalUnderTest) -> None:
    for n in (2, 1, 3):  # operators do not promise the order
        assert GENERIC.send(http, GENERIC.prepare(http, f"generic_part{n}.json")).status_code == 200
    rows = inbound_messages(gateway.runtime.engine)
    assert sorted(r.external_id for r in rows) == [f"gw-20260311-0042{n}:{n}/3" for n in (1, 2, 3)]
    assemblies = sorted((r.message["assembly"] for r in rows), key=lambda a: a["part"])
    assert [(a["key"], a["segment"], a["part"], a["total"]) for a in assemblies] == [
        (f"sms:{CITIZEN}", f"{CITIZEN}:42", n, 3) for n in (1, 2, 3)
    ]


def test_a_three_part_sms_becomes_one_report_in_the_right_order(http: httpx.Client, gateway: KanalUnderTest) -> None:
    for n in (3, 1, 2):
        assert GENERIC.send(http, GENERIC.prepare(http, f"generic_part{n}.json")).status_code == 200
    engine = gateway.runtime.engine
    [report] = wait_until(lambda: reports(engine), timeout=20, what="one report from the three parts")
    assert report.text_original == "".join(PARTS).strip()
    wait_until(lambda: len(reports(engine)) == 1, timeout=1, what="no second report")


def test_quick_successive_sms_of_one_number_become_one_complaint(http: httpx.Client, gateway: KanalUnderTest) -> None:
    texts = ["Ada genangan air tinggi", "di underpass Kemayoran arah Gunung Sahari", "mobil tidak bisa lewat"]
    for number, text in enumerate(texts):
        body = json.dumps({"msisdn": "081311223344", "message_id": f"gw-fold-{number}", "text": text}).encode()
        assert GENERIC.send(http, GENERIC.prepare_raw(http, body)).status_code == 200
    other = json.dumps({"msisdn": "081299990000", "message_id": "gw-other", "text": "Lampu taman mati"}).encode()
    assert GENERIC.send(http, GENERIC.prepare_raw(http, other)).status_code == 200
    engine = gateway.runtime.engine
    wait_until(lambda: len(reports(engine)) >= 2, timeout=20, what="two reports")
    assert sorted(r.text_original for r in reports(engine)) == sorted(["\n".join(texts), "Lampu taman mati"])
