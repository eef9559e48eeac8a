"""Replaying the same inbox through the normalizer twice gives identical reports (acceptance 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from adapters.contract import InboundMessage, Location, Sender
from gateway import migrate
from gateway.db import make_engine
from review_queue.tables import Report, ReportFollowUp
from tests.support.databases import PostgresTemplates, sqlite_url
from tests.support.inbox_rows import normalize_pending, put_message

T0 = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)

# What a report is, apart from the row ids minted when it was stored.
_COMPARED = (
    "ticket_code",
    "channel_id",
    "received_at",
    "text_original",
    "text_clean",
    "text_masked",
    "masked_kinds",
    "place",
    "kota_code",
    "kecamatan_code",
    "kelurahan_code",
    "routing",
    "category_code",
    "agency_code",
    "agency_unit",
    "needs_category_choice",
    "duplicate_score",
    "match_terms",
    "completeness",
    "completeness_missing",
    "sender",
    "location",
    "media",
    "service_code",
    "decisions",
    "state",
)


def _inbox() -> list[tuple[str, InboundMessage, datetime, str]]:
    """The team's labelled complaints, spread over channels and days, with senders and coordinates."""
    lines = resources.files("normalizer").joinpath("data/complaints_labelled.jsonl").read_text("utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()][:240]
    inbox = []
    channels = ["twitter:dki", "jaki:app", "email:dki", "whatsapp:dki"]
    for number, item in enumerate(items):
        fields: dict[str, Any] = {"sender": Sender(phone=f"0812000{number % 37:05d}")}
        if number % 5 == 0:
            fields["location"] = Location(lat=-6.19356 + (number % 7) * 0.01, lng=106.84668 - (number % 3) * 0.01)
        message = InboundMessage(external_id=item["id"], text=item["text"], **fields)
        # The inbox is the same both times, down to the ticket codes the citizens were given.
        ticket = f"{number:05d}-R{number % 10}P{number % 7}Y"
        inbox.append((channels[number % 4], message, T0 + timedelta(minutes=17 * number), ticket))
    return inbox


def _replay(engine: Engine) -> list[dict[str, Any]]:
    for channel_id, message, at, ticket in _inbox():
        put_message(engine, channel_id, message, received_at=at, ticket=ticket)
    normalize_pending(engine, limit=64)
    with Session(engine) as session:
        reports = session.execute(select(Report).order_by(col(Report.received_at))).scalars().all()
        order = {r.id: n for n, r in enumerate(reports)}
        follow_ups = session.execute(select(ReportFollowUp).order_by(col(ReportFollowUp.received_at))).scalars()
        attached = [(f.received_at, order[f.report_id], f.reason) for f in follow_ups]
        rows = []
        for report in reports:
            row = {name: getattr(report, name) for name in _COMPARED}
            row["duplicate_of"] = order.get(report.duplicate_of) if report.duplicate_of else None
            rows.append(row)
    return rows + [{"follow_ups": attached}]


@pytest.fixture(params=["sqlite", "postgresql"])
def two_engines(
    request: pytest.FixtureRequest, tmp_path: Path, pg_templates: PostgresTemplates
) -> Iterator[tuple[Engine, Engine]]:
    with ExitStack() as stack:
        urls = []
        for name in ("first", "second"):
            if request.param == "sqlite":
                urls.append(sqlite_url(tmp_path / name))
            else:
                urls.append(stack.enter_context(pg_templates.fresh()))
        engines = [make_engine(url) for url in urls]
        for engine in engines:
            migrate.upgrade(engine)
        yield engines[0], engines[1]
        for engine in engines:
            engine.dispose()


def test_replaying_an_inbox_gives_identical_reports(two_engines: tuple[Engine, Engine]) -> None:
    first, second = (_replay(engine) for engine in two_engines)
    assert len(first) > 200
    assert any(row.get("duplicate_of") is not None for row in first[:-1]) or first[-1]["follow_ups"], (
        "the replayed inbox should exercise matching"
    )
    assert first == second
