"""What a Kanal under test has stored: the rows an adapter test asserts on, read through Kanal's own tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from gateway.db import read_session
from gateway.inbox import InboundMessageRow, QuarantinedPayload, RawDelivery
from review_queue.tables import Report


def count(engine: Engine, model: type, *where: Any) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def inbox_count(engine: Engine, channel: str | None = None) -> int:
    """Messages in the inbox, of one channel or all."""
    where = [col(InboundMessageRow.channel_id) == channel] if channel else []
    return count(engine, InboundMessageRow, *where)


def inbound_messages(engine: Engine) -> list[InboundMessageRow]:
    """Every stored inbound message, oldest first."""
    with read_session(engine) as session:
        return list(session.execute(select(InboundMessageRow).order_by(col(InboundMessageRow.received_at))).scalars())


def raw_deliveries(engine: Engine) -> list[RawDelivery]:
    """Every delivery kept byte for byte (one per distinct delivery, not per redelivery)."""
    with read_session(engine) as session:
        return list(session.execute(select(RawDelivery)).scalars())


def quarantine_rows(engine: Engine) -> list[QuarantinedPayload]:
    """Refused deliveries kept for inspection, oldest first."""
    with read_session(engine) as session:
        return list(session.execute(select(QuarantinedPayload).order_by(col(QuarantinedPayload.received_at))).scalars())


def reports(engine: Engine) -> list[Report]:
    """Reports the normalizer made, oldest first."""
    with read_session(engine) as session:
        return list(session.execute(select(Report).order_by(col(Report.created_at))).scalars())
