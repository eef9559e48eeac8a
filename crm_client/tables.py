"""The transactional outbox: what must reach the CRM, written in the same transaction as the approval.

Beside it: one `crm_attempt` row per request sent (the CRM's answer, secrets removed), and `crm_pause`,
the single row that holds all sending while the CRM refuses our credentials.
"""

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
    RESOLVING = "resolving"  # the CRM answered a token (deferred creation); its id is asked for at next_attempt_at
    SENT = "sent"  # the CRM acknowledged it (and gave its service_request_id)
    DEAD = "dead"  # gave up: refused by the CRM or out of attempts; `kanal outbox retry` replays it
    DROPPED = "dropped"  # an operator gave up on it, with a reason in the report's history


class Sink(StrEnum):
    OPEN311 = "open311"
    JSON_PUSH = "json_push"


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    #: Sent as the Idempotency-Key header: a retry after a lost answer never creates a second request.
    idempotency_key: str = Field(unique=True, max_length=100)
    #: What is sent, as approved (Open311 form fields, or the push document); the admin's approval is what goes.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    #: Which kind of CRM the payload was built for (crm.kind when it was enqueued).
    sink: str = Field(default=Sink.OPEN311, max_length=20)
    state: str = Field(default=OutboxState.PENDING, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_status_code: int | None = None
    last_error: str | None = None
    #: Deferred creation: the token the CRM answered, resolved through tokens/{token}.json.
    crm_token: str | None = Field(default=None, max_length=200)


class CRMAttempt(SQLModel, table=True):
    """One request to the CRM for one outbox item and what came back; never holds a key or secret."""

    __tablename__ = "crm_attempt"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    outbox_id: str = Field(foreign_key="outbox.id", index=True, max_length=36)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: "create", "resolve_token" or "push".
    operation: str = Field(max_length=20)
    http_status: int | None = None
    #: The CRM's answer body, truncated and with secrets redacted; or what went wrong before it answered.
    answer: str | None = None
    #: None for success; else the CRMError kind (rejected, auth, unavailable, config, protocol, deferred).
    error_kind: str | None = Field(default=None, max_length=20)
    duration_ms: int = 0


class CRMPause(SQLModel, table=True):
    """While this row exists, nothing is sent: the CRM refused our credentials (401/403).

    Kept in the database so a restart does not start a retry storm against a CRM that refuses us, and so
    every process sharing a PostgreSQL database stops at once.
    """

    __tablename__ = "crm_pause"

    name: str = Field(default="crm", primary_key=True, max_length=20)
    paused_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    reason: str
    #: A short hash of the credentials that were refused: a restart with other credentials lifts the pause.
    credentials_fingerprint: str = Field(max_length=64)
