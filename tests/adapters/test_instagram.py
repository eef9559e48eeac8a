"""The `instagram` channel type through the real route: the adapter kit's contract, the documented
webhook payloads (comments, @mentions, Direct messages), what is ignored, and the subscription check."""

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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "instagram"
CHANNEL_ID = "instagram:dkijakarta"
IG_USER_ID = "17841455512345678"
APP_SECRET = "ig-app-secret-0123456789abcdef"
VERIFY_TOKEN = "ig-verify-token-kanal-2026"
ACCESS_TOKEN = "IGQ-access-token-for-tests-0123456789"
IGSID = "1123581321345589"
COMMENT_TEXT = (
    "@dkijakarta Jalan berlubang besar di Jl. Gunung Sahari depan Mangga Dua Square, sudah banyak motor jatuh. "
    "Mohon segera ditambal."
)
MID = (
    "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDU1NTEyMzQ1Njc4OjM0MDI4MjM2Njg0MTcxMDMwMDk0OTEyODE3MDc2Njk2NjgwODk4Nzo"
)


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Headers as Meta sends a delivery: JSON, signed with the app secret over the raw body."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret.encode(), body)}


class InstagramProfile(ChannelProfile):
    channel_type = "instagram"
    channel_id = CHANNEL_ID
    channel_settings = {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "access_token": ACCESS_TOKEN,
        "ig_user_id": IG_USER_ID,
    }
    fixtures = FIXTURES
    # A comment on one of the account's posts: no assembly window, so it becomes a report at once.
    valid_fixture = "comment.json"
    expected_text = COMMENT_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, signed(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=signed(prepared.content, secret="not-the-app-secret-at-all"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = InstagramProfile()


class TestInstagramContract(ContractSuite):
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
    Case("comment on the account's post", "comment.json", 200, text=COMMENT_TEXT, external_id="17865799348089039"),
    Case(
        "reply under a citizen's comment",
        "comment_reply.json",
        200,
        text="Lubangnya tepat di lajur kiri, dekat lampu merah.",
        external_id="17865799348089555",
    ),
    Case("comment on a live video", "live_comment.json", 200, external_id="17865799348081234"),
    Case(
        "mention in someone's comment",
        "mention_comment.json",
        200,
        external_id="mention:17858893269000001",
        media_count=0,
    ),
    Case("mention in someone's caption", "mention_caption.json", 200, external_id="mention:media:17920238422030507"),
    Case(
        "Direct message",
        "dm_text.json",
        200,
        text="Halo admin, lampu lalu lintas di simpang Pasar Baru mati sejak pagi, macet parah.",
        external_id=f"{MID}-text",
    ),
    Case(
        "Direct message with a photo", "dm_image.json", 200, text="Ini foto got mampet di Jl. Kwitang.", media_count=1
    ),
    Case("story mentioning the account", "dm_story_mention.json", 200, text="[Mention di story]", media_count=1),
    Case(
        "reply to the account's story",
        "dm_story_reply.json",
        200,
        text="[Balasan story] Di Cempaka Mas juga belum ada petugas.",
        media_count=0,
    ),
    Case("Direct message delivered as a change", "dm_as_change.json", 200, external_id=f"{MID}-change"),
    Case("a Page delivery sent to the Instagram channel", "wrong_object.json", 422, error="object 'instagram'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_instagram_case(case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    run_case(PROFILE, case, http, gateway)


IGNORED = [
    ("own_comment.json", "our own comment"),
    ("other_account.json", "not this channel's account"),
    ("story_insights.json", "story_insights"),
    ("dm_echo.json", "echo"),
    ("dm_seen.json", "read"),
    ("dm_deleted.json", "deleted"),
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


def test_a_mention_says_what_it_is_and_names_its_ids(http: httpx.Client, gateway: RunningGateway) -> None:
    assert deliver(http, "mention_comment.json").status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["text"].startswith("[Mention] komentar 17858893269000001 pada media 17920238422030506")
    assert row.message["thread_id"] == "instagram-mention:17920238422030506:17858893269000001"


def test_a_comments_author_is_kept_by_username(http: httpx.Client, gateway: RunningGateway) -> None:
    assert deliver(http, "comment.json").status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["sender"] == {"id": "1789012345678901", "handle": "budi.santoso"}


def test_direct_messages_wait_to_be_put_together_as_one_complaint(http: httpx.Client, gateway: RunningGateway) -> None:
    for fixture in ("dm_text.json", "dm_image.json"):
        assert deliver(http, fixture).status_code == 200
    rows = inbound_messages(gateway.runtime.engine)
    assert {row.assembly_key for row in rows} == {f"instagram:{IGSID}"}
    assert {row.message["thread_id"] for row in rows} == {f"instagram-dm:{IGSID}"}


def test_a_redelivered_direct_message_is_stored_once(http: httpx.Client, gateway: RunningGateway) -> None:
    prepared = PROFILE.prepare(http, "dm_image.json")
    first, again = PROFILE.send(http, prepared), PROFILE.send(http, prepared)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["accepted"][0]["duplicate"] is True
    assert len(inbound_messages(gateway.runtime.engine)) == 1


def test_a_wrong_signature_is_refused_and_quarantined(http: httpx.Client, gateway: RunningGateway) -> None:
    body = (FIXTURES / "dm_text.json").read_bytes()
    response = http.post(PROFILE.url(), content=body, headers=signed(body, secret="an-old-rotated-secret"))
    assert response.status_code == 401
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    [kept] = quarantine_rows(engine)
    assert kept.status_code == 401


def test_subscription_check_echoes_the_challenge(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "987654321"}
    response = http.get(PROFILE.url(), params=query)
    assert (response.status_code, response.text) == (200, "987654321")


def test_subscription_check_with_another_token_is_refused(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "fb-verify-token-kanal-2026", "hub.challenge": "987654321"}
    assert http.get(PROFILE.url(), params=query).status_code == 403
