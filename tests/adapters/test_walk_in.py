"""The `walk_in` channel type: the adapter kit's contract, labelled intakes through the real route, the
desk's place rules, and a parser that never fails on any input."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract import InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.walk_in import PHOTO_REF, WalkInAdapter, WalkInSettings, sign
from gateway.plugins import derive_secret
from gateway.settings import KanalSettings
from kanal_testing import Case, ChannelProfile, ContractSuite, Prepared, build_adapter, run_case
from kanal_testing.server import TEST_SECRET_KEY, kanal_settings
from tests.support.servers import RunningGateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "walk_in"
FULL_TEXT = (
    "Saluran air di depan pos RW 03 tersumbat sampah, air meluap ke jalan setiap hujan. Warga minta segera dikeruk."
)
GAMBIR = "31.71.01.1001"
DESK = {"desk_kind": "kelurahan", "desk_name": "Kantor Kelurahan Gambir", "wilayah_code": GAMBIR}


def instance_secret(channel_id: str, secret_key: str = TEST_SECRET_KEY) -> bytes:
    """The desk's secret as Kanal derives it from the deployment's secret_key (what only Kanal holds)."""
    settings = KanalSettings.model_validate(kanal_settings("sqlite://", {}) | {"secret_key": secret_key})
    return derive_secret(settings, f"channel:{channel_id}")


class WalkInProfile(ChannelProfile):
    channel_type = "walk_in"
    channel_id = "walk_in:kel-gambir"
    channel_settings = DESK
    fixtures = FIXTURES
    expected_text = FULL_TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, sign(instance_secret(self.channel_id), body))

    def tamper(self, prepared: Prepared) -> Prepared:
        # Signed with another desk's secret: one desk's key must not open another's route.
        return replace(prepared, headers=sign(instance_secret("walk_in:kel-menteng"), prepared.content))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"content-type": "application/json"})


PROFILE = WalkInProfile()


class TestWalkInContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        # Kanal's own suite runs the contract on both engines (the conftest's `database_url`).
        return database_url


CASES = [
    Case(
        "kelurahan desk, citizen with contact and photo",
        "full.json",
        200,
        text=FULL_TEXT,
        external_id="loket-gambir-0001-abcdef",
        sender_name="Siti Aminah",
        address="Kel. Gambir, Kec. Gambir, Jakarta Pusat",
        media_count=1,
    ),
    Case("only what the page always sends", "minimal.json", 200, text="Lampu jalan mati sejak seminggu"),
    Case("call centre with coordinates", "call_centre.json", 200, sender_name="Penelepon 112", media_count=0),
    Case("phone kept without consent", "contact_without_consent.json", 422, error="contact_consent"),
    Case("a wilayah outside Jakarta", "unknown_wilayah.json", 422, error="wilayah.csv"),
    Case("a PDF as the photo", "not_a_photo.json", 415, error="JPEG, PNG or WebP"),
    Case("no officer named", "no_officer.json", 422, error="received_by"),
    Case("a field the page never sends", "unknown_field.json", 422, error="priority"),
    Case("latitude without longitude", "half_coordinates.json", 422, error="lat and lng"),
    Case("a list instead of an object", "list.json", 400, error="one JSON object"),
]


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    settings = kanal_settings(f"sqlite:///{tmp_path / 'kanal.sqlite3'}", {PROFILE.channel_id: PROFILE.channel_config()})
    with RunningGateway(settings) as running:
        yield running


@pytest.fixture
def http(gateway: RunningGateway) -> Any:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_walk_in_case(case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    run_case(PROFILE, case, http, gateway)


def test_the_officer_is_recorded_and_the_photo_served_from_the_delivery(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "full.json")).status_code == 200
    from kanal_testing import inbound_messages, raw_deliveries

    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["received_by"] == "petugas.gambir"
    assert row.message["media"][0]["url"] == PHOTO_REF
    [delivery] = raw_deliveries(gateway.runtime.engine)
    adapter = gateway.runtime.channels[PROFILE.channel_id].adapter
    request = _request(delivery.body)
    content_type, data = adapter.inline_attachment(request, PHOTO_REF)
    assert content_type == "image/png" and data.startswith(b"\x89PNG")


# -- the adapter on its own ----------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _adapter(**overrides: Any) -> WalkInAdapter:
    adapter = build_adapter(WalkInAdapter, {**DESK, **overrides}, channel_id="walk_in:kel-gambir")
    assert isinstance(adapter, WalkInAdapter)
    return adapter


def _request(body: bytes, headers: dict[str, str] | None = None) -> RawRequest:
    return RawRequest("POST", "http://127.0.0.1/channels/walk_in:kel-gambir/inbound", headers or {}, {}, body, "", NOW)


def _intake(**fields: Any) -> bytes:
    return json.dumps({"intake_id": "a" * 20, "text": "Jalan rusak", "received_by": "budi", **fields}).encode()


def test_a_complaint_with_no_place_at_a_kelurahan_desk_is_placed_in_that_kelurahan() -> None:
    adapter = _adapter(default_place_to_desk=True)
    [message] = adapter.parse(_request(_intake()))
    assert message.location is not None
    assert message.location.address == "Kel. Gambir, Kec. Gambir, Jakarta Pusat"


def test_a_complaint_with_its_own_address_keeps_it_and_gets_no_desk_place() -> None:
    adapter = _adapter(default_place_to_desk=True)
    [message] = adapter.parse(_request(_intake(address="Jl. Kramat Raya, Senen")))
    assert message.location is not None and message.location.address == "Jl. Kramat Raya, Senen"


def test_without_default_place_a_placeless_complaint_stays_placeless() -> None:
    [message] = _adapter().parse(_request(_intake()))
    assert message.location is None and message.sender is None


def test_the_chosen_area_is_written_with_the_cues_the_normalizer_trusts() -> None:
    [message] = _adapter().parse(_request(_intake(address="depan masjid", wilayah_code="31.71.06")))
    assert message.location is not None and message.location.address == "depan masjid, Kec. Menteng, Jakarta Pusat"


def test_only_this_desks_secret_opens_its_route() -> None:
    adapter = _adapter()
    body = _intake()
    adapter.verify(_request(body, sign(adapter.context.instance_secret, body, int(NOW.timestamp()))))
    with pytest.raises(SignatureInvalid):
        adapter.verify(_request(body, sign(b"another-desk", body, int(NOW.timestamp()))))
    with pytest.raises(SignatureInvalid, match="clock"):
        adapter.verify(_request(body, sign(adapter.context.instance_secret, body, int(NOW.timestamp()) - 3600)))


@pytest.mark.parametrize(
    ("settings_", "problem"),
    [
        ({"wilayah_code": "32.73"}, "wilayah.csv"),
        ({"desk_kind": "pos_ronda"}, "desk_kind"),
        ({"wilayah_code": "31", "default_place_to_desk": True}, "default_place_to_desk"),
        ({"desk_name": ""}, "desk_name"),
    ],
)
def test_a_misconfigured_desk_is_refused_at_start(settings_: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        WalkInSettings.model_validate({**DESK, **settings_})


def test_a_desk_cannot_message_the_citizen_and_says_so() -> None:
    import asyncio

    from adapters.contract import OutboundReply, Sender

    with pytest.raises(NotImplementedError, match="printed receipt"):
        asyncio.run(_adapter().send(OutboundReply(recipient=Sender(phone="0812"), text="Tiket Anda")))


# -- any input ------------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=5),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    ["intake_id", "text", "received_by", "citizen", "contact_consent", "address", "lat", "lng", "wilayah_code", "photo"]
)
_FULL = json.loads((FIXTURES / "full.json").read_text())
_FUZZ_ADAPTER = _adapter(default_place_to_desk=True)


def _outcome(body: bytes) -> None:
    adapter = _FUZZ_ADAPTER
    request = _request(body, sign(adapter.context.instance_secret, body, int(NOW.timestamp())))
    adapter.verify(request)
    try:
        messages = adapter.parse(request)
    except (PayloadRejected, PayloadIgnored):
        return
    assert messages and all(isinstance(m, InboundMessage) for m in messages)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    _outcome(body)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_any_json_parses_or_is_refused(document: Any) -> None:
    _outcome(json.dumps(document).encode())


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_FIELDS, _JSON, max_size=4))
def test_any_mutation_of_a_real_intake_parses_or_is_refused(changes: dict[str, Any]) -> None:
    _outcome(json.dumps({**_FULL, **changes}).encode())


def test_a_photo_that_is_not_base64_is_refused_not_crashed() -> None:
    body = _intake(photo={"data_base64": "@@@@not base64"})
    with pytest.raises(PayloadRejected, match="base64"):
        _adapter().parse(_request(body))
