"""Reading X API v2 pages into messages (`read_page`, pure) and fitting replies into 280: what the citizen
and the admin would notice, and that no page, however odd, makes the parser crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.contract import InboundMessage, RejectedItem
from adapters.errors import PayloadRejected
from adapters.twitter import ELLIPSIS, PageReading, fit_tweet, read_page, tweet_weight

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twitter"
OURS = "1501000000000000001"
PAGES = sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "create_tweet.json")


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def only(reading: PageReading) -> InboundMessage:
    [message] = reading.messages
    return message


def tweet(text: str, **fields: Any) -> dict[str, Any]:
    return {"id": "1897009234567890001", "text": text, "author_id": "1345678901234567890", **fields}


# ------------------------------------------------------------------------------------------------- reading


def test_our_own_handle_is_dropped_only_where_it_addresses_us() -> None:
    entities = {
        "mentions": [
            {"start": 0, "end": 11, "username": "DKIJakarta", "id": OURS},
            {"start": 12, "end": 22, "username": "BPBDJakarta", "id": "99"},
            {"start": 56, "end": 67, "username": "DKIJakarta", "id": OURS},
        ]
    }
    text = "@DKIJakarta @BPBDJakarta tolong cek pintu air Manggarai, @DKIJakarta"
    message = only(read_page({"data": [tweet(text, entities=entities)]}, own_user_id=OURS))
    assert message.text == "@BPBDJakarta tolong cek pintu air Manggarai, @DKIJakarta"


def test_our_handle_is_recognised_from_the_expanded_users_when_mentions_carry_no_id() -> None:
    document = {
        "data": [
            tweet(
                "@dkijakarta Trotoar rusak.", entities={"mentions": [{"start": 0, "end": 11, "username": "dkijakarta"}]}
            )
        ],
        "includes": {"users": [{"id": OURS, "username": "DKIJakarta", "name": "Pemprov DKI Jakarta"}]},
    }
    assert only(read_page(document, own_user_id=OURS)).text == "Trotoar rusak."


def test_links_are_expanded_and_html_entities_decoded() -> None:
    document = fixture("search_recent.json")
    first = read_page(document, own_user_id=OURS).messages[0]
    assert first.text.endswith("#jakartabanjir https://bpbd.jakarta.go.id/waterlevel")
    plain = only(read_page(fixture("mentions_plain.json"), own_user_id=OURS))
    assert "jatuh & macet" in plain.text


def test_a_long_post_is_read_whole_from_note_tweet() -> None:
    whole = "Sudah sebulan " + "jalan di Jl. Raya Condet rusak parah, " * 12 + "mohon segera ditangani."
    document = {"data": [tweet(whole[:270] + "\u2026 https://t.co/AbCdEf1234", note_tweet={"text": whole})]}
    assert only(read_page(document, own_user_id=OURS)).text == whole


def test_a_district_sized_place_gives_its_name_but_no_made_up_coordinates() -> None:
    document = {
        "data": [tweet("Pohon tumbang.", geo={"place_id": "kec"})],
        "includes": {
            "places": [
                {
                    "id": "kec",
                    "full_name": "Kebayoran Baru, Indonesia",
                    "place_type": "city",
                    "geo": {"bbox": [106.7756, -6.2597, 106.8226, -6.2179]},
                }
            ]
        },
    }
    location = only(read_page(document, own_user_id=OURS)).location
    assert location is not None and location.address == "Kebayoran Baru, Indonesia"
    assert location.lat is None and location.lng is None


def test_an_exact_point_wins_over_the_place_centre() -> None:
    place = fixture("mentions_place.json")
    pinned = read_page(place, own_user_id=OURS).messages[1]
    assert pinned.location is not None and (pinned.location.lat, pinned.location.lng) == (-6.2615, 106.8012)


def test_created_at_in_the_reference_examples_older_form_is_understood() -> None:
    message = only(
        read_page({"data": [tweet("Got mampet.", created_at="Wed Jan 06 18:40:40 +0000 2021")]}, own_user_id=OURS)
    )
    assert message.sent_at is not None and message.sent_at.isoformat() == "2021-01-06T18:40:40+00:00"


def test_what_is_not_a_complaint_is_counted_as_ignored_not_rejected() -> None:
    reading = read_page(fixture("mentions_ignored.json"), own_user_id=OURS)
    assert reading.messages == [] and reading.rejected == []
    assert [why for _, why in reading.ignored] == ["a retweet", "our own tweet", "only a mention, nothing to report"]
    assert len(reading.seen) == 3, "ignored tweets still move the checkpoint"


def test_a_bare_mention_with_a_photo_is_kept() -> None:
    document = fixture("mentions_photo.json")
    document["data"][0]["text"] = "@DKIJakarta https://t.co/Qw3rTy12Ab"
    message = only(read_page(document, own_user_id=OURS))
    assert message.text == "" and len(message.media) == 2


def test_one_broken_tweet_is_rejected_and_the_rest_of_the_page_still_counts() -> None:
    document = fixture("mentions_place.json")
    document["data"].append({"id": "1897003234567890099", "text": None})
    document["data"].append({"text": "no id at all"})
    reading = read_page(document, own_user_id=OURS)
    assert len(reading.messages) == 2
    assert [item.external_id for item in reading.rejected] == ["1897003234567890099", None]
    assert all(isinstance(item, RejectedItem) and item.body for item in reading.rejected)


@pytest.mark.parametrize(
    "document",
    [[], "data", {"data": {"id": "1"}}, {"data": [], "meta": []}, {"meta": {"next_token": 5}}],
    ids=["list", "string", "data not a list", "meta not an object", "token not a string"],
)
def test_a_page_that_is_not_a_tweets_page_is_rejected_as_a_whole(document: Any) -> None:
    with pytest.raises(PayloadRejected):
        read_page(document, own_user_id=OURS)


def test_an_empty_page_is_nothing_and_has_no_next_page() -> None:
    reading = read_page({"meta": {"result_count": 0}}, own_user_id=OURS)
    assert (reading.messages, reading.next_token, reading.seen) == ([], None, [])


# ------------------------------------------------------------------------------------------- hypothesis

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "data",
        "includes",
        "meta",
        "id",
        "text",
        "author_id",
        "created_at",
        "geo",
        "entities",
        "attachments",
        "referenced_tweets",
        "users",
        "media",
        "places",
        "tweets",
        "mentions",
        "urls",
        "coordinates",
        "bbox",
        "media_keys",
        "place_id",
        "note_tweet",
        "next_token",
        "username",
        "url",
        "expanded_url",
        "type",
    ]
)


def _check(document: Any) -> None:
    try:
        reading = read_page(document, own_user_id=OURS)
    except PayloadRejected:
        return
    assert isinstance(reading, PageReading)
    assert all(isinstance(m, InboundMessage) for m in reading.messages)
    assert all(isinstance(r, RejectedItem) for r in reading.rejected)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_any_json_is_messages_or_a_rejection(document: Any) -> None:
    _check(document)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=6))
def test_any_object_with_x_api_keys_is_messages_or_a_rejection(document: dict[str, Any]) -> None:
    _check(document)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    document: Any = copy.deepcopy(fixture(draw(st.sampled_from(PAGES))))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        replacement = draw(JSON)
        if not path:
            document = replacement
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures())
def test_mutated_documented_pages_are_messages_or_a_rejection(document: Any) -> None:
    _check(document)


# ------------------------------------------------------------------------------------------ reply length


def test_a_short_reply_is_sent_as_written() -> None:
    text = "Laporan Anda sudah kami terima dengan nomor K7M2Q9. Pantau di https://kanal.jakarta.go.id/status/K7M2Q9"
    assert fit_tweet(text, keep="K7M2Q9") == text


def test_a_link_counts_as_23_whatever_its_length_and_wide_characters_count_double() -> None:
    assert tweet_weight("https://kanal.jakarta.go.id/status/K7M2Q9-with-a-very-long-path") == 23
    assert tweet_weight("ok") == 2 and tweet_weight("\u6771\u4eac") == 4 and tweet_weight("\U0001f30a") == 2


def test_the_ticket_survives_the_cut_when_only_the_prose_named_it() -> None:
    text = "Petugas sudah meninjau lokasi dan menjadwalkan perbaikan saluran. " * 6 + "Nomor laporan Anda: K7M2Q9."
    fitted = fit_tweet(text, keep="K7M2Q9")
    assert tweet_weight(fitted) <= 280 and "K7M2Q9" in fitted and ELLIPSIS in fitted


@settings(max_examples=150, deadline=None)
@given(
    st.text(min_size=1, max_size=1500),
    st.lists(st.from_regex(r"https://kanal\.jakarta\.go\.id/status/[A-Z0-9]{6}", fullmatch=True), max_size=3),
)
def test_any_reply_fits_in_280_and_keeps_its_links(prose: str, links: list[str]) -> None:
    text = " ".join([prose, *links])
    fitted = fit_tweet(text)
    assert tweet_weight(fitted) <= 280
    for link in links:
        assert link in fitted
