"""The inbox: every delivery kept byte for byte before it is acknowledged, and what it contained.

A delivery (`raw_delivery`) is the request as received, minus secret headers. Each message in it is an
`inbound_message`, unique per (channel, external id) so a redelivery is recognised and only counted.
A delivery that could not be accepted goes to `quarantined_payload` for someone to inspect.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.db import UTCDateTime, utcnow
from gateway.ids import new_id


class MessageState(StrEnum):
    NEW = "new"  # stored, waiting for the normalizer
    NORMALIZED = "normalized"  # a report exists for it
    FAILED = "failed"  # the normalizer gave up after repeated errors; needs a person
    ASSEMBLING = "assembling"  # one part of a conversation or multipart message; waits for the rest
    MERGED = "merged"  # a part whose content went into its group's first part (`merged_into`)
    EMPTY = "empty"  # a group that ended with nothing in it (a lone "done" command): no report is made


class RawDelivery(SQLModel, table=True):
    __tablename__ = "raw_delivery"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    channel_id: str = Field(index=True, max_length=100)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    content_type: str | None = Field(default=None, max_length=200)
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class InboundMessageRow(SQLModel, table=True):
    __tablename__ = "inbound_message"
    __table_args__ = (UniqueConstraint("channel_id", "external_id", name="uq_inbound_channel_external"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    channel_id: str = Field(max_length=100)
    external_id: str = Field(max_length=200)
    ticket_code: str = Field(unique=True, max_length=11)
    delivery_id: str = Field(foreign_key="raw_delivery.id", index=True, max_length=36)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: The parsed `adapters.contract.InboundMessage`, as JSON.
    message: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=MessageState.NEW, index=True, max_length=20)
    #: 1 for the first delivery, +1 for each redelivery the channel made.
    delivery_count: int = 1
    attempts: int = 0
    processed_by: str | None = Field(default=None, max_length=100)
    last_error: str | None = None
    #: Parts of one conversation or multipart message share a key (`adapters.contract.Assembly`) while
    #: they are `assembling`; the group is put together at `assembly_due_at` or when a part completes it.
    assembly_key: str | None = Field(default=None, index=True, max_length=200)
    assembly_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    merged_into: str | None = Field(default=None, max_length=36)


class QuarantinedPayload(SQLModel, table=True):
    __tablename__ = "quarantined_payload"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    channel_id: str = Field(index=True, max_length=100)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    status_code: int
    reason: str
    client_ip: str | None = Field(default=None, max_length=64)
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Size of the body as sent; `body` may hold only its first bytes (oversized or unauthenticated).
    body_size: int
