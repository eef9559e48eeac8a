"""Conversations and multipart messages become one report: every part stored at once, put together later."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from adapters.contract import Assembly, InboundMessage, Location, MediaRef, Sender
from gateway.assembly import combine
from gateway.inbox import InboundMessageRow, MessageState
from gateway.ticket_lookup import make_ticket_lookup
from review_queue.tables import Report
from tests.conftest import base_settings
from tests.support.servers import RunningGateway, wait_until

CHANNEL = "test_parts:chat"
UNUSED_CRM = "http://127.0.0.1:9/"
CITIZEN = Sender(id="777", name="Siti")


@pytest.fixture(autouse=True)
def parts_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import plugins

    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "test_parts", "tests.support.parts_adapter")


def settings_for(database_url: str) -> dict[str, Any]:
    settings = base_settings(database_url, UNUSED_CRM)
    settings["channels"][CHANNEL] = {"type": "test_parts"}
    return settings


def part(external_id: str, text: str = "", **fields: Any) -> InboundMessage:
    assembly = fields.pop("assembly", None) or Assembly(key="chat:777", window_seconds=600)
    return InboundMessage(external_id=external_id, text=text, sender=CITIZEN, assembly=assembly, **fields)


def post(gateway: RunningGateway, message: InboundMessage) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway.url}/channels/{CHANNEL}/inbound",
        content=message.model_dump_json(exclude_none=True),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    accepted: dict[str, Any] = response.json()["accepted"][0]
    return accepted


def reports(engine: Engine) -> list[Report]:
    with engine.connect() as connection:
        return [Report.model_validate(dict(r)) for r in connection.execute(select(Report.__table__)).mappings()]  # type: ignore[attr-defined]


def states(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(col(InboundMessageRow.external_id), col(InboundMessageRow.state)))
        return {external_id: state for external_id, state in rows}


def test_a_conversation_of_text_location_and_photo_is_one_report(database_url: str) -> None:
    with RunningGateway(settings_for(database_url)) as gateway:
        engine = gateway.runtime.engine
        first = post(gateway, part("m1", "Ada pohon tumbang menutup jalan"))
        second = post(gateway, part("m2", location=Location(lat=-6.1754, lng=106.8272)))
        # Stored at once, but nothing is a report while the conversation goes on.
        assert states(engine) == {"m1": MessageState.ASSEMBLING, "m2": MessageState.ASSEMBLING}
        assert reports(engine) == []
        done = Assembly(key="chat:777", complete=True, window_seconds=600)
        post(gateway, part("m3", media=[MediaRef(url="https://example.org/p.jpg")], assembly=done))
        [report] = wait_until(lambda: reports(engine) or None, timeout=15, what="one report from the conversation")
        assert report.ticket_code == first["ticket"], "the report keeps the ticket the citizen was given first"
        assert report.text_original == "Ada pohon tumbang menutup jalan"
        assert report.location == {"lat": -6.1754, "lng": 106.8272}
        [photo] = report.media
        assert "/media/" in photo["url"], "the photo of the last part is the report's, behind Kanal's own link"
        assert states(engine) == {"m1": MessageState.NORMALIZED, "m2": MessageState.MERGED, "m3": MessageState.MERGED}
        # A citizen asking about the ticket of a later part hears about the conversation's report.
        lookup = make_ticket_lookup(engine, gateway.url)
        status = asyncio.run(lookup(second["ticket"].lower().replace("-", " ")))
        assert status is not None and status.ticket == first["ticket"] and status.state == report.state


def test_a_conversation_with_nothing_in_it_makes_no_report(database_url: str) -> None:
    done = Assembly(key="chat:777", complete=True, window_seconds=600)
    with RunningGateway(settings_for(database_url)) as gateway:
        engine = gateway.runtime.engine
        post(gateway, part("e1", "  ", assembly=done))
        wait_until(lambda: states(engine)["e1"] == MessageState.EMPTY, timeout=15, what="the empty group set aside")
        assert reports(engine) == []


def test_a_group_nobody_completes_is_taken_when_its_window_has_passed(database_url: str) -> None:
    window = Assembly(key="chat:777", window_seconds=1.0)
    with RunningGateway(settings_for(database_url)) as gateway:
        engine = gateway.runtime.engine
        post(gateway, part("w1", "Lampu jalan mati", assembly=window))
        post(gateway, part("w2", "di Jl. Cikini Raya depan nomor 12", assembly=window))
        [report] = wait_until(lambda: reports(engine) or None, timeout=15, what="the group after its window")
        assert report.text_original == "Lampu jalan mati\ndi Jl. Cikini Raya depan nomor 12"
        # A redelivery of a merged part is recognised, not a new group.
        post(gateway, part("w2", "di Jl. Cikini Raya depan nomor 12", assembly=window))
        assert states(engine)["w2"] == MessageState.MERGED


def test_a_part_after_the_group_was_taken_starts_a_new_one(database_url: str) -> None:
    done = Assembly(key="chat:777", complete=True, window_seconds=600)
    with RunningGateway(settings_for(database_url)) as gateway:
        engine = gateway.runtime.engine
        post(gateway, part("a1", "Saluran air mampet di Jl. Kemang Raya", assembly=done))
        wait_until(lambda: states(engine)["a1"] == MessageState.NORMALIZED, timeout=15, what="first group")
        post(gateway, part("a2", "Sampah menumpuk di Pasar Minggu", assembly=done))
        wait_until(lambda: states(engine)["a2"] == MessageState.NORMALIZED, timeout=15, what="second group")
        [first] = [r for r in reports(engine) if r.text_original.startswith("Saluran")]
        assert first.text_original == "Saluran air mampet di Jl. Kemang Raya", "the taken group is not reopened"


def test_multipart_segments_are_joined_in_part_order_without_a_separator() -> None:
    def segment(n: int, text: str) -> InboundMessage:
        return part(f"s{n}", text, assembly=Assembly(key="sms:+62811", segment="+62811:42", part=n, total=3))

    combined = combine(
        [
            part("p0", "Tolong:"),
            segment(2, "k di depan SDN 01 "),
            segment(1, "Ada lubang besar di Jl. Raya Bogor, banya"),
            segment(3, "sudah seminggu."),
        ]
    )
    assert combined.text == "Tolong:\nAda lubang besar di Jl. Raya Bogor, banyak di depan SDN 01 sudah seminggu."
    assert combined.external_id == "p0" and combined.assembly is None


def test_the_last_coordinates_win_and_keep_a_typed_address() -> None:
    combined = combine(
        [
            part("c1", "Banjir", location=Location(address="Jl. Kemang Raya 5")),
            part("c2", location=Location(lat=-6.26, lng=106.81)),
        ]
    )
    assert combined.location == Location(lat=-6.26, lng=106.81, address="Jl. Kemang Raya 5")
    assert json.loads(combined.model_dump_json(exclude_none=True))["sender"] == {"id": "777", "name": "Siti"}
