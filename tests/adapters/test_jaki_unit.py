"""The `jaki` adapter on its own: category mapping, settings, and a parser that never fails on any bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract import InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.jaki import JakiAdapter
from kanal_testing import build_adapter
from normalizer.taxonomy import load_taxonomy
from tests.adapters.test_jaki import CATEGORY_MAP, JAKI_SECRET, jaki_settings
from tests.peers.jaki_app import jaki_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jaki"


def adapter(**overrides: Any) -> JakiAdapter:
    built = build_adapter(JakiAdapter, jaki_settings(**overrides), channel_id="jaki:test")
    assert isinstance(built, JakiAdapter)
    return built


def signed(body: bytes, *, header: str = "x-kanal-signature") -> RawRequest:
    headers = {"content-type": "application/json", header: jaki_signature(JAKI_SECRET, body)}
    # Received now, as the signature is made now: a time fixed at import would drift out of the tolerance
    # when the module's tests run minutes after it was imported.
    now = datetime.now(UTC)
    return RawRequest("POST", "http://127.0.0.1/channels/jaki:test/inbound", headers, {}, body, "127.0.0.1", now)


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def test_the_example_category_map_names_codes_of_the_shipped_taxonomy() -> None:
    codes = {category.code for category in load_taxonomy().categories}
    assert set(CATEGORY_MAP.values()) <= codes


@pytest.mark.parametrize(
    ("label", "hint"),
    [("Jalan Rusak", "jalan"), ("jalan  rusak", "jalan"), (" PARKIR LIAR ", "parkir-liar"), ("Hewan Liar", None)],
)
def test_the_apps_category_is_matched_whatever_its_case_and_spacing(label: str, hint: str | None) -> None:
    [message] = adapter().parse(signed(json.dumps({**fixture("full.json"), "category": label}).encode()))
    assert message.category_hint == hint


def test_a_numeric_category_code_of_the_app_can_be_mapped() -> None:
    mapped = adapter(category_map={"101": "jalan"})
    [message] = mapped.parse(signed(json.dumps({**fixture("full.json"), "category": 101}).encode()))
    assert message.category_hint == "jalan"


def test_a_map_entry_that_is_not_a_category_code_stops_the_start() -> None:
    with pytest.raises(ValidationError, match="not a category code"):
        adapter(category_map={"Jalan Rusak": "Jalan Rusak"})


def test_photo_hosts_are_host_names_only() -> None:
    with pytest.raises(ValidationError, match="not a host name"):
        adapter(media_hosts=["https://foto.jaki.jakarta.go.id/laporan"])
    assert adapter().allowed_media_hosts() == frozenset({"foto.jaki.jakarta.go.id"})


def test_the_full_report_parses_to_one_message() -> None:
    [message] = adapter().parse(signed((FIXTURES / "full.json").read_bytes()))
    assert message.external_id == "JAKI-2026-03-000123"
    assert message.location is not None and (message.location.lat, message.location.lng) == (-6.18565, 106.84378)
    assert [m.content_type for m in message.media] == ["image/jpeg", "image/jpeg"]
    assert message.sender is not None and message.sender.phone == "+6281288991020"
    assert message.assembly is None  # a JAKI report is complete as it arrives


def test_a_report_saying_nothing_is_refused() -> None:
    body = json.dumps({**fixture("minimal.json"), "description": "  "}).encode()
    with pytest.raises(PayloadRejected, match="description or at least one photo") as refused:
        adapter().parse(signed(body))
    assert refused.value.status_code == 422


def test_the_signature_error_names_the_configured_header() -> None:
    body = (FIXTURES / "minimal.json").read_bytes()
    with pytest.raises(SignatureInvalid, match="missing X-Jaki-Signature"):
        adapter(signature_header="X-Jaki-Signature").verify(signed(body))


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    rotated = adapter(secret="the-new-jaki-secret-000000", previous_secrets=[JAKI_SECRET])
    rotated.verify(signed((FIXTURES / "minimal.json").read_bytes()))


# ---------------------------------------------------------------------------------------- hypothesis

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "report_id",
    "description",
    "category",
    "latitude",
    "longitude",
    "address",
    "photos",
    "reporter",
    "created_at",
]


def _outcome(request: RawRequest) -> None:
    jaki = adapter()
    jaki.verify(request)  # correctly signed: must pass
    try:
        messages = jaki.parse(request)
    except (PayloadRejected, PayloadIgnored):
        return
    assert messages and all(isinstance(m, InboundMessage) for m in messages)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_parse_of_any_signed_bytes_stores_or_refuses(body: bytes) -> None:
    _outcome(signed(body))


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_parse_of_any_signed_json_stores_or_refuses(document: Any) -> None:
    _outcome(signed(json.dumps(document).encode()))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FIELDS), json_values, st.sampled_from(["full.json", "photo_only.json", "minimal.json"]))
def test_parse_of_mutated_reports_stores_or_refuses(key: str, value: Any, name: str) -> None:
    document = fixture(name)
    document[key] = value
    _outcome(signed(json.dumps(document).encode()))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["id", "name", "phone", "email", "url", "content_type"]), json_values)
def test_parse_of_mutated_reporters_and_photos_stores_or_refuses(key: str, value: Any) -> None:
    document = fixture("full.json")
    target = document["photos"][0] if key in ("url", "content_type") else document["reporter"]
    target[key] = value
    _outcome(signed(json.dumps(document).encode()))
