"""The `sms` adapter on its own: Twilio's signature rules, numbers, generic field mapping, settings, and
parsers that never fail on a stranger's bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters import twilio_signature
from adapters.contract import InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.sms import SmsAdapter, e164, sms_body
from kanal_testing import build_adapter
from tests.adapters.test_sms import AUTH_TOKEN, CITIZEN, GATEWAY_SECRET, generic_settings, twilio_settings
from tests.peers.sms_provider import twilio_signature as peer_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sms"
PUBLIC_BASE = "https://kanal.jakarta.go.id"
ROUTE = f"{PUBLIC_BASE}/channels/sms:test/inbound"
NOW = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)

# Twilio's documented example: auth token 12345, this URL and these parameters sign to this value.
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def twilio_adapter(**overrides: Any) -> SmsAdapter:
    adapter = build_adapter(
        SmsAdapter, twilio_settings(**overrides), channel_id="sms:test", public_base_url=PUBLIC_BASE
    )
    assert isinstance(adapter, SmsAdapter)
    return adapter


def generic_adapter(**overrides: Any) -> SmsAdapter:
    adapter = build_adapter(SmsAdapter, generic_settings(**overrides), channel_id="sms:test")
    assert isinstance(adapter, SmsAdapter)
    return adapter


def twilio_request(
    params: list[tuple[str, str]] | dict[str, str],
    *,
    signed_url: str = ROUTE,
    url: str = ROUTE,
    token: str = AUTH_TOKEN,
) -> RawRequest:
    pairs = list(params.items()) if isinstance(params, dict) else params
    body = urlencode(pairs).encode()
    return twilio_raw(body, signature=peer_signature(token, signed_url, pairs), url=url)


def twilio_raw(body: bytes, *, signature: str, url: str = ROUTE) -> RawRequest:
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return RawRequest("POST", url, headers, {}, body, "127.0.0.1", NOW)


def generic_request(body: bytes, *, headers: dict[str, str] | None = None) -> RawRequest:
    digest = hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    all_headers = {"content-type": "application/json", "x-sms-signature": digest, **(headers or {})}
    return RawRequest("POST", "http://10.0.0.5/channels/sms:test/inbound", all_headers, {}, body, "127.0.0.1", NOW)


def fixture_params(name: str) -> dict[str, str]:
    params: dict[str, str] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return params


# --------------------------------------------------------------------------------------- signatures


def test_twilio_documented_example_signs_to_the_documented_value() -> None:
    assert twilio_signature.compute("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert peer_signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE


def test_repeated_parameters_are_signed_with_their_values_sorted() -> None:
    params = [("b", "2"), ("a", "z"), ("a", "y")]
    assert twilio_signature.signed_string("https://x.id/h", params) == "https://x.id/hayazb2"


def test_the_signature_of_the_public_url_is_accepted_whatever_host_the_proxy_passed_on() -> None:
    adapter = twilio_adapter()
    request = twilio_request(fixture_params("twilio_text.json"), url="http://10.0.0.5:8000/channels/sms:test/inbound")
    adapter.verify(request)  # signed with the public route, received on the internal one


def test_a_signature_made_with_the_internal_url_is_refused() -> None:
    internal = "http://10.0.0.5:8000/channels/sms:test/inbound"
    request = twilio_request(fixture_params("twilio_text.json"), signed_url=internal, url=internal)
    with pytest.raises(SignatureInvalid, match="public_url"):
        twilio_adapter().verify(request)


def test_configured_public_url_is_what_twilio_signed() -> None:
    public = "https://sms.jakarta.go.id/webhook/twilio"
    twilio_adapter(public_url=public).verify(twilio_request(fixture_params("twilio_text.json"), signed_url=public))


@pytest.mark.parametrize("spelling", [ROUTE, ROUTE.replace(".go.id/", ".go.id:443/")])
def test_twilio_signing_with_or_without_the_default_port_is_accepted(spelling: str) -> None:
    twilio_adapter().verify(twilio_request(fixture_params("twilio_text.json"), signed_url=spelling))


def test_the_query_string_twilio_was_given_is_part_of_the_signed_url() -> None:
    params = fixture_params("twilio_text.json")
    request = twilio_request(
        params, signed_url=f"{ROUTE}?src=twilio", url="http://10.0.0.5/channels/sms:test/inbound?src=twilio"
    )
    twilio_adapter().verify(request)


def test_the_previous_auth_token_is_accepted_during_a_rotation() -> None:
    adapter = twilio_adapter(auth_token="the-new-auth-token-0000", previous_auth_tokens=[AUTH_TOKEN])
    adapter.verify(twilio_request(fixture_params("twilio_text.json")))
    adapter.verify(twilio_request(fixture_params("twilio_text.json"), token="the-new-auth-token-0000"))


@pytest.mark.parametrize("signature", ["", "not base64 at all", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "é"])
def test_missing_or_wrong_twilio_signatures_are_refused(signature: str) -> None:
    body = urlencode(fixture_params("twilio_text.json")).encode()
    with pytest.raises(SignatureInvalid):
        twilio_adapter().verify(twilio_raw(body, signature=signature))


def test_a_changed_parameter_breaks_the_signature() -> None:
    params = fixture_params("twilio_text.json")
    request = twilio_request(params)
    tampered = RawRequest(
        request.method, request.url, request.headers, {}, request.body.replace(b"Pramuka", b"Pemuda"), "", NOW
    )
    with pytest.raises(SignatureInvalid):
        twilio_adapter().verify(tampered)


def test_the_twilio_signature_header_is_kept_with_the_evidence_but_a_gateway_token_is_not() -> None:
    assert "x-twilio-signature" not in twilio_adapter().secret_headers
    adapter = generic_adapter(auth="token", token_header="X-Gateway-Key")
    assert "x-gateway-key" in adapter.secret_headers


@pytest.mark.parametrize(
    "header",
    [
        lambda body: hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest().upper(),
        lambda body: "sha256=" + hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest(),
        lambda body: (
            __import__("base64").b64encode(hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        ),
    ],
    ids=["hex upper case", "sha256= prefix", "base64"],
)
def test_generic_hmac_is_accepted_in_the_encodings_gateways_use(header: Any) -> None:
    body = (FIXTURES / "generic_text.json").read_bytes()
    generic_adapter().verify(generic_request(body, headers={"x-sms-signature": header(body)}))


def test_generic_token_mode_compares_the_header_with_the_secret() -> None:
    adapter = generic_adapter(auth="token", token_header="Authorization")
    body = (FIXTURES / "generic_text.json").read_bytes()
    adapter.verify(generic_request(body, headers={"authorization": f"Bearer {GATEWAY_SECRET}"}))
    with pytest.raises(SignatureInvalid, match="not this channel's token"):
        adapter.verify(generic_request(body, headers={"authorization": "Bearer guessed-token-000000000"}))
    with pytest.raises(SignatureInvalid, match="missing authorization"):
        adapter.verify(generic_request(body, headers={"authorization": ""}))


# ------------------------------------------------------------------------------------------ parsing


def test_twilio_sms_parses_to_one_message_in_the_senders_group() -> None:
    [message] = twilio_adapter(fold_window_seconds=120).parse(twilio_request(fixture_params("twilio_text.json")))
    assert message.external_id == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert message.sender is not None and (message.sender.id, message.sender.phone) == (CITIZEN, CITIZEN)
    assert message.assembly is not None
    assert (message.assembly.key, message.assembly.window_seconds, message.assembly.segment) == (
        f"sms:{CITIZEN}",
        120,
        None,
    )


def test_our_own_message_echoed_by_the_provider_is_ignored() -> None:
    params = {**fixture_params("twilio_text.json"), "From": "+628111272206", "To": CITIZEN}
    with pytest.raises(PayloadIgnored, match="our own"):
        twilio_adapter().parse(twilio_request(params))


def test_alphanumeric_senders_are_kept_without_a_phone() -> None:
    [message] = twilio_adapter().parse(twilio_request({**fixture_params("twilio_text.json"), "From": "TELKOMSEL"}))
    assert message.sender is not None and (message.sender.id, message.sender.phone) == ("TELKOMSEL", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("081311223344", "+6281311223344"),
        ("0813-1122-3344", "+6281311223344"),
        ("+62 813 1122 3344", "+6281311223344"),
        ("6281311223344", "+6281311223344"),
        ("006281311223344", "+6281311223344"),
        ("81311223344", "+6281311223344"),
        ("(021) 382 2255", "+62213822255"),
        ("+14155551212", "+14155551212"),
        ("1708", None),
        ("TELKOMSEL", None),
        ("+62 ８１３", None),
        ("", None),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, expected: str | None) -> None:
    assert e164(raw) == expected


def test_generic_parts_carry_their_concatenation_reference() -> None:
    adapter = generic_adapter()
    messages = [adapter.parse(generic_request((FIXTURES / f"generic_part{n}.json").read_bytes()))[0] for n in (1, 2, 3)]
    for number, message in enumerate(messages, start=1):
        assert message.assembly is not None
        assert message.assembly.model_dump() == {
            "key": f"sms:{CITIZEN}",
            "complete": False,
            "window_seconds": 1.5,
            "segment": f"{CITIZEN}:42",
            "part": number,
            "total": 3,
        }
    # Parts keep their spaces: the assembler joins them without a separator.
    assert messages[0].text.endswith("sejak ")


def test_a_single_part_concatenation_is_an_ordinary_sms() -> None:
    body = json.dumps(
        {"msisdn": "081311223344", "message_id": "1", "text": "x", "udh": {"ref": 7, "part": 1, "parts": 1}}
    )
    [message] = generic_adapter().parse(generic_request(body.encode()))
    assert message.assembly is not None and message.assembly.segment is None and message.external_id == "1"


@pytest.mark.parametrize(
    ("udh", "problem"),
    [
        ({"ref": "42", "part": 4, "parts": 3}, "larger than"),
        ({"ref": "42", "part": 0, "parts": 3}, "whole numbers"),
        ({"ref": "42", "part": 1}, "needs all of"),
        ({"part": 1, "parts": 2}, "needs all of"),
        ({"ref": "42", "part": "x", "parts": 2}, "whole numbers"),
    ],
)
def test_inconsistent_concatenation_is_refused(udh: dict[str, Any], problem: str) -> None:
    body = json.dumps({"msisdn": "081311223344", "message_id": "1", "text": "x", "udh": udh}).encode()
    with pytest.raises(PayloadRejected, match=problem) as refused:
        generic_adapter().parse(generic_request(body))
    assert refused.value.status_code == 422


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-11 10:15:01", datetime(2026, 3, 11, 3, 15, 1, tzinfo=UTC)),
        ("2026-03-11T10:15:01Z", datetime(2026, 3, 11, 10, 15, 1, tzinfo=UTC)),
        (1773198901, datetime(2026, 3, 11, 3, 15, 1, tzinfo=UTC)),
        ("1773198901000", datetime(2026, 3, 11, 3, 15, 1, tzinfo=UTC)),
    ],
)
def test_generic_times_are_read_with_jakarta_as_the_default_zone(value: Any, expected: datetime) -> None:
    body = json.dumps({"msisdn": "081311223344", "message_id": "1", "text": "x", "received_at": value}).encode()
    [message] = generic_adapter().parse(generic_request(body))
    assert message.sent_at == expected


def test_generic_missing_text_is_refused_with_the_field_name() -> None:
    body = json.dumps({"msisdn": "081311223344", "message_id": "1"}).encode()
    with pytest.raises(PayloadRejected, match="'text'"):
        generic_adapter().parse(generic_request(body))


# ----------------------------------------------------------------------------------------- settings


def test_twilio_mode_without_credentials_does_not_start() -> None:
    with pytest.raises(ValidationError, match="account_sid and auth_token"):
        build_adapter(SmsAdapter, {"mode": "twilio"})


def test_a_setting_of_the_other_mode_is_named() -> None:
    with pytest.raises(ValidationError, match="send_url not used in mode 'twilio'"):
        build_adapter(SmsAdapter, twilio_settings(send_url="https://gw.example/send"))


def test_generic_mode_needs_a_secret_and_a_complete_concatenation_mapping() -> None:
    with pytest.raises(ValidationError, match="mode generic needs secret"):
        build_adapter(SmsAdapter, {"mode": "generic"})
    with pytest.raises(ValidationError, match="concat_ref, concat_part and concat_total together"):
        build_adapter(SmsAdapter, generic_settings(fields={"concat_ref": "ref"}))


def test_reply_text_is_kept_gsm_friendly_and_cut_at_a_word() -> None:
    assert sms_body("Laporan “diterima” – terima kasih…", 600) == 'Laporan "diterima" - terima kasih...'
    long = "kata " * 200
    cut = sms_body(long, 600)
    assert len(cut) <= 600 and cut.endswith("kata...")


# ---------------------------------------------------------------------------------------- hypothesis

ALLOWED = (PayloadRejected, PayloadIgnored)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
TWILIO_FIELDS = ["MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0", "MessageStatus"]


def _outcome(adapter: SmsAdapter, request: RawRequest) -> None:
    adapter.verify(request)  # correctly signed: must pass
    try:
        messages = adapter.parse(request)
    except ALLOWED:
        return
    assert messages and all(isinstance(m, InboundMessage) for m in messages)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_twilio_parse_of_any_signed_bytes_stores_or_refuses(body: bytes) -> None:
    params = twilio_signature.form_params(body)
    _outcome(twilio_adapter(), twilio_raw(body, signature=peer_signature(AUTH_TOKEN, ROUTE, params)))


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(max_size=15), st.text(max_size=60), max_size=10),
    st.sampled_from(["twilio_text.json", "twilio_mms_photo.json", "twilio_status_delivered.json"]),
)
def test_twilio_parse_of_mutated_webhooks_stores_or_refuses(changes: dict[str, str], fixture: str) -> None:
    params = {**fixture_params(fixture), **changes}
    _outcome(twilio_adapter(), twilio_request(params))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_generic_parse_of_any_signed_bytes_stores_or_refuses(body: bytes) -> None:
    _outcome(generic_adapter(), generic_request(body))


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_generic_parse_of_any_signed_json_stores_or_refuses(document: Any) -> None:
    _outcome(generic_adapter(), generic_request(json.dumps(document).encode()))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["msisdn", "message_id", "text", "received_at", "udh", "dlr_status"]),
    json_values,
    st.sampled_from(["generic_part1.json", "generic_text.json"]),
)
def test_generic_parse_of_mutated_fixtures_stores_or_refuses(key: str, value: Any, fixture: str) -> None:
    document = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    document[key] = value
    _outcome(generic_adapter(), generic_request(json.dumps(document).encode()))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["ref", "part", "parts"]), json_values)
def test_generic_parse_of_mutated_concatenation_stores_or_refuses(key: str, value: Any) -> None:
    document = json.loads((FIXTURES / "generic_part2.json").read_text(encoding="utf-8"))
    document["udh"][key] = value
    _outcome(generic_adapter(), generic_request(json.dumps(document).encode()))
