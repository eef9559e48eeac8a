"""How the `whatsapp` adapter reads Meta's webhook deliveries, without a gateway: what is kept of each message,
how a burst is grouped, what is ignored, and that no input makes the parser fail in any other way."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract import Assembly, InboundMessage, Location, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.whatsapp import WhatsAppAdapter
from kanal_testing import build_adapter
from tests.adapters.test_whatsapp import APP_SECRET, CITIZEN, FIXTURES, channel_settings, signed

ADAPTER = build_adapter(WhatsAppAdapter, channel_settings(fold_window_seconds=120), channel_id="whatsapp:pengaduan")
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))


def delivery(body: bytes | dict[str, Any], *, secret: str = APP_SECRET) -> RawRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {k.lower(): v for k, v in signed(raw, secret).items()}
    return RawRequest("POST", "https://kanal.test/", headers, {}, raw, "127.0.0.1", datetime.now(UTC))


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def parse(body: bytes | dict[str, Any]) -> list[InboundMessage]:
    request = delivery(body)
    ADAPTER.verify(request)
    return ADAPTER.parse(request)


def first_message(document: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = document["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


# ------------------------------------------------------------------------------------ what is kept


def test_a_text_message_keeps_who_sent_it_when_and_in_which_conversation() -> None:
    [message] = parse(fixture("text.json"))
    assert message.external_id == "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBMDFURVhUMDAwMDAwMDAwMDAwMQA="
    assert message.sender is not None
    assert message.sender.model_dump(exclude_none=True) == {
        "id": CITIZEN,
        "phone": f"+{CITIZEN}",
        "name": "Siti Rahmawati",
    }
    assert message.sent_at == datetime.fromtimestamp(1770001200, tz=UTC)
    assert message.thread_id == f"whatsapp:{CITIZEN}"


def test_every_message_is_a_part_of_its_senders_burst() -> None:
    [message] = parse(fixture("location.json"))
    assert message.assembly == Assembly(key=f"whatsapp:{CITIZEN}", window_seconds=120)


def test_the_fold_window_is_the_channels_setting() -> None:
    adapter = build_adapter(WhatsAppAdapter, channel_settings(fold_window_seconds=45))
    [message] = adapter.parse(delivery(fixture("text.json")))
    assert message.assembly is not None and message.assembly.window_seconds == 45


def test_a_location_pin_keeps_coordinates_and_names_the_place() -> None:
    [message] = parse(fixture("location.json"))
    assert message.location == Location(
        lat=-6.2248,
        lng=106.8662,
        address="Halte Kampung Melayu, Jl. Jatinegara Barat No.1, Kampung Melayu, Jatinegara, Jakarta Timur",
    )


def test_a_photo_is_referenced_by_its_media_id_and_its_caption_is_the_text() -> None:
    [message] = parse(fixture("image.json"))
    assert message.text == "Sampah menumpuk di pinggir Kali Ciliwung, Kampung Melayu"
    [ref] = message.media
    assert (ref.url, ref.platform_id, ref.content_type) == (
        "whatsapp:1013859600285441",
        "1013859600285441",
        "image/jpeg",
    )


def test_a_voice_note_says_it_was_not_transcribed() -> None:
    [message] = parse(fixture("voice.json"))
    assert "belum ditranskripsi" in message.text
    assert message.media[0].content_type == "audio/ogg; codecs=opus"


def test_a_delivery_with_several_entries_and_changes_gives_every_message_in_order() -> None:
    messages = parse(fixture("burst.json"))
    assert [m.text for m in messages] == ["Pak, ada pohon tumbang menutup jalan di Jl. Tebet Raya.", "", ""]
    assert messages[1].location is not None and messages[2].media
    assert {m.assembly.key for m in messages if m.assembly} == {f"whatsapp:{CITIZEN}"}


def test_a_message_repeated_inside_one_delivery_is_returned_once() -> None:
    document = fixture("text.json")
    value = document["entry"][0]["changes"][0]["value"]
    value["messages"].append(copy.deepcopy(value["messages"][0]))
    assert len(parse(document)) == 1


def test_statuses_beside_a_message_do_not_hide_it() -> None:
    document = fixture("text.json")
    document["entry"][0]["changes"][0]["value"]["statuses"] = fixture("status_read.json")["entry"][0]["changes"][0][
        "value"
    ]["statuses"]
    assert [m.text[:14] for m in parse(document)] == ["Selamat siang,"]


def test_two_citizens_in_one_delivery_are_two_conversations() -> None:
    document = fixture("text.json")
    value = document["entry"][0]["changes"][0]["value"]
    other = copy.deepcopy(value["messages"][0]) | {"from": "6289876543210", "id": "wamid.other-citizen"}
    value["messages"].append(other)
    value["contacts"].append({"profile": {"name": "Budi"}, "wa_id": "6289876543210"})
    first, second = parse(document)
    assert first.sender is not None and first.sender.name == "Siti Rahmawati"
    assert second.sender is not None and second.sender.name == "Budi"
    assert second.assembly is not None and second.assembly.key == "whatsapp:6289876543210"


def test_a_user_with_a_hidden_number_is_known_by_the_business_scoped_id() -> None:
    document = fixture("text.json")
    value = document["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Rina", "username": "@rina.jkt"}, "user_id": "ID.13491208655302741918"}]
    message = first_message(document)
    del message["from"]
    message["from_user_id"] = "ID.13491208655302741918"
    [parsed] = parse(document)
    assert parsed.sender is not None
    assert parsed.sender.model_dump(exclude_none=True) == {
        "id": "ID.13491208655302741918",
        "name": "Rina",
        "handle": "@rina.jkt",
    }
    assert parsed.thread_id == "whatsapp:ID.13491208655302741918"


# ---------------------------------------------------------------------------------- what is ignored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("status_sent.json", "status update(s) (sent)"),
        ("status_read.json", "(read)"),
        ("status_failed.json", "failed with 131047"),
        ("unsupported.json", "131051"),
        ("reaction.json", "reaction"),
        ("other_number.json", "phone number id 199999999999999"),
        ("account_update.json", "account_update"),
    ],
)
def test_deliveries_without_a_complaint_are_ignored_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(PayloadIgnored) as caught:
        parse(fixture(name))
    assert reason in caught.value.reason


def test_our_own_number_writing_is_not_a_complaint() -> None:
    document = fixture("text.json")
    first_message(document)["from"] = "628111272206"
    with pytest.raises(PayloadIgnored, match="our own message"):
        parse(document)


def test_a_flow_reply_is_ignored_rather_than_stored_empty() -> None:
    document = fixture("interactive_button_reply.json")
    first_message(document)["interactive"] = {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}
    with pytest.raises(PayloadIgnored, match="nfm_reply"):
        parse(document)


# --------------------------------------------------------------------------------- what is refused


def _without_contacts(document: dict[str, Any]) -> bool:
    del document["entry"][0]["changes"][0]["value"]["contacts"]
    return True


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda d: d.update(object="instagram"), "whatsapp_business_account"),
        (lambda d: d.pop("entry"), "entry"),
        (lambda d: first_message(d).pop("text"), "no 'text' object"),
        (lambda d: first_message(d).update(type="image", image={"id": "../../me"}), "image.id"),
        (lambda d: _without_contacts(d) and first_message(d).update({"from": "62 812/../x"}), "no usable sender"),
        (lambda d: d["entry"][0]["changes"][0]["value"].update(messaging_product="instagram"), "messaging_product"),
    ],
)
def test_malformed_deliveries_are_refused_with_what_is_wrong(change: Any, phrase: str) -> None:
    document = fixture("text.json")
    change(document)
    with pytest.raises(PayloadRejected) as caught:
        parse(document)
    assert phrase in caught.value.message and caught.value.status_code in (400, 422)


def test_a_wrong_app_secret_fails_verification() -> None:
    with pytest.raises(SignatureInvalid, match="app_secret"):
        ADAPTER.verify(delivery(fixture("text.json"), secret="some-other-app-secret"))


def test_settings_refuse_unknown_keys_and_a_malformed_template() -> None:
    with pytest.raises(ValidationError, match="phone_number"):
        build_adapter(WhatsAppAdapter, channel_settings(phone_number="628111272206"))
    with pytest.raises(ValidationError, match="language"):
        build_adapter(WhatsAppAdapter, channel_settings(reply_template={"name": "status_laporan", "language": "ID"}))


def test_the_phone_number_id_is_required() -> None:
    block = channel_settings()
    del block["phone_number_id"]
    with pytest.raises(ValidationError, match="phone_number_id"):
        build_adapter(WhatsAppAdapter, block)


# ---------------------------------------------------------------------------- no input breaks parse


def _outcome(body: bytes) -> None:
    """Parsing a validly signed body yields messages, a refusal or an ignore: nothing else."""
    request = delivery(body)
    ADAPTER.verify(request)
    try:
        messages = ADAPTER.parse(request)
    except (PayloadRejected, PayloadIgnored):
        return
    assert messages and all(isinstance(m, InboundMessage) for m in messages)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
#: Values a mutation puts in place of a fixture's: wrong types, edge values, other shapes.
ODD_VALUES = st.one_of(
    JSON,
    st.sampled_from(["", "0", "-1", "99999999999999999999999", "../..", "\x00", "whatsapp", "messages", "text"]),
    st.floats(min_value=-1e6, max_value=1e6),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> bytes:
    document = fixture(draw(st.sampled_from(FIXTURE_NAMES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        if not paths:
            break
        *parents, last = draw(st.sampled_from(paths))
        holder: Any = document
        for step in parents:
            holder = holder[step]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[last]
        else:
            holder[last] = draw(ODD_VALUES)
    return json.dumps(document).encode()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_break_the_parser(body: bytes) -> None:
    _outcome(body)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_arbitrary_json_never_breaks_the_parser(document: Any) -> None:
    _outcome(json.dumps(document).encode())


@settings(max_examples=150, deadline=None)
@given(mutated_fixtures())
def test_mutated_documented_payloads_never_break_the_parser(body: bytes) -> None:
    _outcome(body)


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=300),
    st.text(max_size=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_text_name_and_coordinates_are_stored_or_refused(text: str, name: str, lat: float, lng: float) -> None:
    burst = fixture("burst.json")
    first_message(burst)["text"]["body"] = text
    burst["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = name
    burst["entry"][0]["changes"][1]["value"]["messages"][0]["location"].update(latitude=lat, longitude=lng)
    _outcome(json.dumps(burst).encode())


def test_a_very_deeply_nested_body_is_refused_not_crashed() -> None:
    with pytest.raises(PayloadRejected):
        parse(b"[" * 100_000 + b"]" * 100_000)
