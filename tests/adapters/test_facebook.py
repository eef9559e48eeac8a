"""The `facebook` channel type through the real route: the adapter kit's contract, the Page's documented
webhook payloads (feed posts and comments, Messenger), what is ignored, and the subscription check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.meta import sign
from kanal_testing import Case, ChannelProfile, ContractSuite, Prepared, run_case
from kanal_testing.store import inbound_messages, inbox_count, quarantine_rows
from tests.support.servers import RunningGateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facebook"
CHANNEL_ID = "facebook:dki"
PAGE_ID = "104857392011223"
APP_SECRET = "fb-app-secret-0123456789abcdef"
VERIFY_TOKEN = "fb-verify-token-kanal-2026"
ACCESS_TOKEN = "EAAB-page-access-token-for-tests-0123456789"
PSID = "7412589630258741"
COMMENT_TEXT = (
    "Lampu PJU di Jl. Kramat Raya depan halte Senen mati sejak seminggu, jalan gelap gulita dan rawan jambret. "
    "Mohon segera diperbaiki."
)


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Headers as Meta sends a delivery: JSON, signed with the app secret over the raw body."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret.encode(), body)}


class FacebookProfile(ChannelProfile):
    channel_type = "facebook"
    channel_id = CHANNEL_ID
    channel_settings = {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "access_token": ACCESS_TOKEN,
        "page_id": PAGE_ID,
    }
    fixtures = FIXTURES
    # A comment under one of the page's posts: no assembly window, so it becomes a report at once.
    valid_fixture = "feed_comment.json"
    expected_text = COMMENT_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, signed(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=signed(prepared.content, secret="not-the-app-secret-at-all"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = FacebookProfile()


class TestFacebookContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The suite's gateway settings with this channel configured."""
    settings["channels"][CHANNEL_ID] = PROFILE.channel_config()
    return settings


def deliver(http: httpx.Client, fixture: str) -> httpx.Response:
    return PROFILE.send(http, PROFILE.prepare(http, fixture))


CASES = [
    Case(
        "comment under the page's post",
        "feed_comment.json",
        200,
        text=COMMENT_TEXT,
        external_id="912345678901234_1187654321098765",
        sender_name="Budi Santoso",
    ),
    Case(
        "reply under a citizen's comment",
        "feed_comment_reply.json",
        200,
        text="Tambahan: tiang lampunya nomor 27, dekat warung bakso.",
        external_id="912345678901234_1187654321099999",
    ),
    Case("comment with a photo", "feed_comment_photo.json", 200, sender_name="Siti Rahmawati", media_count=1),
    Case(
        "visitor post with a photo",
        "feed_visitor_post_photo.json",
        200,
        text="Trotoar di Jl. Salemba Raya depan Kampus UI ambles, berbahaya untuk pejalan kaki.",
        sender_name="Andi Wijaya",
        media_count=1,
    ),
    Case(
        "visitor post, text only",
        "feed_visitor_status.json",
        200,
        external_id="104857392011223_913000000000003",
        media_count=0,
    ),
    Case(
        "Messenger text",
        "messenger_text.json",
        200,
        text=(
            "Selamat siang, di Jl. Percetakan Negara IX RT 05/RW 07 ada pohon tumbang menutup jalan sejak tadi pagi."
        ),
        external_id="m_1Qx7kB2mN5pL8sT3vW6yZ9aC4dF0gH-text",
    ),
    Case("Messenger photo without text", "messenger_image.json", 200, text="", media_count=1),
    Case("Messenger photo with text", "messenger_image_text.json", 200, media_count=1),
    Case("Messenger shared location", "messenger_location.json", 200, address="Kramat Raya"),
    Case("a Messenger message without mid", "messenger_without_mid.json", 422, error="without `mid`"),
    Case("an Instagram delivery sent to the page's channel", "wrong_object.json", 422, error="object 'page'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_facebook_case(case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    run_case(PROFILE, case, http, gateway)


IGNORED = [
    ("feed_comment_edited.json", "edited"),
    ("feed_comment_remove.json", "remove"),
    ("feed_reaction.json", "reaction"),
    ("feed_page_reply.json", "page's own"),
    ("feed_other_page.json", "not this channel's page"),
    ("messenger_echo.json", "echo"),
    ("messenger_read.json", "read"),
    ("messenger_delivery.json", "delivery"),
    ("messenger_sticker.json", "sticker"),
]


@pytest.mark.parametrize(("fixture", "reason"), IGNORED, ids=[f for f, _ in IGNORED])
def test_events_without_a_complaint_are_answered_200_and_not_stored(
    fixture: str, reason: str, http: httpx.Client, gateway: RunningGateway
) -> None:
    response = deliver(http, fixture)
    assert response.status_code == 200, response.text
    assert reason in response.json()["ignored"]
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    assert quarantine_rows(engine) == [], "an authentic event without a complaint is not a refused delivery"


def test_every_message_of_a_batched_delivery_is_stored(http: httpx.Client, gateway: RunningGateway) -> None:
    response = deliver(http, "messenger_batch.json")
    assert response.status_code == 200, response.text
    stored = {row.external_id: row.message for row in inbound_messages(gateway.runtime.engine)}
    assert set(stored) == {
        "m_7Wy3qH8sT1vR4zZ9bC2eF5gI0jL6nO-batch1",
        "m_8Xz4rI9tU2wS5aA0cD3fG6hJ1kM7oP-batch2",
        "912345678901234_1187654321092222",
    }
    assert stored["912345678901234_1187654321092222"]["sender"]["name"] == "Rudi Hartono"
    assert len(response.json()["accepted"]) == 3


def test_a_redelivered_batch_is_stored_once(http: httpx.Client, gateway: RunningGateway) -> None:
    prepared = PROFILE.prepare(http, "messenger_batch.json")
    first, again = PROFILE.send(http, prepared), PROFILE.send(http, prepared)
    assert (first.status_code, again.status_code) == (200, 200)
    assert [a["duplicate"] for a in again.json()["accepted"]] == [True, True, True]
    assert len(inbound_messages(gateway.runtime.engine)) == 3


def test_a_shared_location_keeps_its_coordinates(http: httpx.Client, gateway: RunningGateway) -> None:
    assert deliver(http, "messenger_location.json").status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["location"] == {"lat": -6.18473, "lng": 106.84412, "address": "Jl. Kramat Raya, Senen"}


def test_messenger_messages_wait_to_be_put_together_as_one_complaint(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    for fixture in ("messenger_text.json", "messenger_image.json", "messenger_location.json"):
        assert deliver(http, fixture).status_code == 200
    rows = inbound_messages(gateway.runtime.engine)
    assert len(rows) == 3
    assert {row.assembly_key for row in rows} == {f"facebook:{PSID}"}
    assert {row.message["thread_id"] for row in rows} == {f"messenger:{PSID}"}


def test_a_wrong_signature_is_refused_and_quarantined(http: httpx.Client, gateway: RunningGateway) -> None:
    body = (FIXTURES / "messenger_text.json").read_bytes()
    response = http.post(PROFILE.url(), content=body, headers=signed(body, secret="an-old-rotated-secret"))
    assert response.status_code == 401
    assert "app_secret" in response.json()["detail"]
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    [kept] = quarantine_rows(engine)
    assert kept.status_code == 401


def test_a_body_changed_after_signing_is_refused(http: httpx.Client, gateway: RunningGateway) -> None:
    body = (FIXTURES / "feed_comment.json").read_bytes()
    forged = body.replace(b"Budi Santoso", b"Orang Lain!!")
    response = http.post(PROFILE.url(), content=forged, headers=signed(body))
    assert response.status_code == 401
    assert inbox_count(gateway.runtime.engine) == 0


def test_subscription_check_echoes_the_challenge(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = http.get(PROFILE.url(), params=query)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


def test_subscription_check_with_another_token_is_refused(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "someone-elses-token", "hub.challenge": "1158201444"}
    response = http.get(PROFILE.url(), params=query)
    assert response.status_code == 403
    assert "1158201444" not in response.text
