"""Refused deliveries, for the operator who has to find out why a channel's payloads bounce."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from gateway.deps import ReadSessionDep, SuperadminDep
from gateway.inbox import QuarantinedPayload

router = APIRouter(prefix="/api/v1", tags=["operations"])

PREVIEW_BYTES = 2048


class QuarantinedPublic(BaseModel):
    id: str
    channel_id: str
    received_at: datetime
    status_code: int
    reason: str
    client_ip: str | None
    headers: dict[str, str]
    body_size: int
    #: The first bytes of the body as text (undecodable bytes shown as U+FFFD).
    body_preview: str


@router.get("/quarantine", response_model=list[QuarantinedPublic])
def list_quarantine(
    session: ReadSessionDep,
    _admin: SuperadminDep,
    channel_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[QuarantinedPublic]:
    """The newest refused deliveries first, with why each was refused."""
    query = select(QuarantinedPayload).order_by(col(QuarantinedPayload.received_at).desc()).limit(limit)
    if channel_id is not None:
        query = query.where(col(QuarantinedPayload.channel_id) == channel_id)
    return [
        QuarantinedPublic(
            **row.model_dump(exclude={"body"}),
            body_preview=row.body[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
        )
        for row in session.exec(query)
    ]
