"""A LAPOR! complaint keeps LAPOR!'s national deadlines in Kanal: verification within 3 working days, the
agency's follow-up within 5 (config/sla.yaml, rule `lapor`), where a complaint from another channel has
Kanal's defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from adapters.contract import InboundMessage
from adapters.lapor import LaporAdapter
from gateway import migrate
from gateway.db import make_engine
from gateway.settings import ChannelConfig, SLAConfig
from kanal_testing import build_adapter
from review_queue import sla
from review_queue.tables import Report
from review_queue.workdays import load_calendar
from tests.peers.lapor import LaporPeer
from tests.support.inbox_rows import normalize_pending, put_message

WIB = timezone(timedelta(hours=7))
SHIPPED_SLA = Path(__file__).resolve().parents[2] / "config" / "sla.yaml"
CALENDAR = load_calendar()


def wib(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 8, day, hour, tzinfo=WIB).astimezone(UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def pulled_complaint() -> tuple[InboundMessage, dict[str, object]]:
    """A complaint as the adapter pulls it from LAPOR!, and the channel's settings."""
    with LaporPeer() as peer:
        peer.add_fixture("complaint_full.json")
        settings = peer.settings()
        adapter = build_adapter(LaporAdapter, settings, channel_id="lapor:dki")
        [message] = asyncio.run(adapter.fetch(None)).messages
    return message, settings


def test_a_lapor_complaint_must_be_verified_within_three_working_days(engine: Engine) -> None:
    message, settings = pulled_complaint()
    channels = {
        "lapor:dki": ChannelConfig(type="lapor", settings=settings),
        "api:partner": ChannelConfig(type="api"),
    }
    friday = wib(14, 10)  # Friday before Independence Day (Monday 17 August 2026)
    lapor_ticket = put_message(engine, "lapor:dki", message, received_at=friday)
    other = InboundMessage(external_id="api-1", text="Lampu jalan mati di Jl. Cikini Raya, Kel. Cikini, Menteng")
    other_ticket = put_message(engine, "api:partner", other, received_at=friday)
    assert normalize_pending(engine, channels=channels) == 2

    config = SLAConfig.model_validate(yaml.safe_load(SHIPPED_SLA.read_text(encoding="utf-8"))["sla"])
    sla.sweep(engine, config, channels=channels, now=friday, calendar=CALENDAR)
    with Session(engine) as session:
        found = {r.ticket_code: r for r in session.exec(select(Report))}
    lapor_report = found[lapor_ticket]
    # Working days after Friday 14 August: Tue 18, Wed 19, Thu 20 -> due at the end of Thursday (WIB).
    assert (lapor_report.sla_stage, lapor_report.sla_due_at) == ("review", wib(21))
    assert found[other_ticket].sla_due_at == wib(19), "other channels keep one working day"


def test_the_shipped_rule_gives_lapor_five_working_days_to_follow_up() -> None:
    config = SLAConfig.model_validate(yaml.safe_load(SHIPPED_SLA.read_text(encoding="utf-8"))["sla"])
    friday = wib(14, 10)
    facts = sla.ReportFacts(
        channel_id="lapor:dki",
        channel_type="lapor",
        category_code=None,
        state="forwarded",
        received_at=friday,
        approved_at=friday,
    )
    status = sla.evaluate(facts, config, CALENDAR, friday)
    assert (status.rule, status.stage, status.due_at) == ("lapor", "follow_up", wib(25))  # Tue 18 .. Mon 24
