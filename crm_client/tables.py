"""The transactional outbox: what must reach the CRM, written in the same transaction as the approval."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from gateway.db import UTCDateTime, utcnow
from gateway.ids import new_id


class OutboxState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    SENT = "sent"  # the CRM acknowledged it
    DEAD = "dead"  # gave up: refused by the CRM or out of attempts; `kanal outbox retry` replays it


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    #: Sent as the Idempotency-Key header: a retry after a lost answer never creates a second request.
    idempotency_key: str = Field(unique=True, max_length=100)
    #: The Open311 form fields as approved; what the admin approved is exactly what is sent.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=OutboxState.PENDING, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_status_code: int | None = None
    last_error: str | None = None
