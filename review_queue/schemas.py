"""What the review API accepts and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.contract import Location


class ReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    ticket_code: str
    channel_id: str
    state: str
    created_at: datetime
    updated_at: datetime
    text_original: str
    text_clean: str
    completeness: int
    completeness_missing: list[str]
    sender: dict[str, Any] | None
    location: dict[str, Any] | None
    media: list[dict[str, Any]]
    service_code: str | None
    decisions: list[dict[str, Any]]
    reject_reason: str | None
    crm_service_request_id: str | None
    crm_token: str | None
    version: int


class ReportPage(BaseModel):
    items: list[ReportPublic]
    #: Pass as `cursor` to get the next page; null on the last page.
    next_cursor: str | None


class ReportEdit(BaseModel):
    """Corrections an admin makes before approving; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    text_clean: str | None = Field(default=None, min_length=1, max_length=20_000)
    service_code: str | None = Field(default=None, min_length=1, max_length=100)
    location: Location | None = None


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The version the admin looked at; if someone changed the report since, the approval is refused.
    version: int | None = None
    edits: ReportEdit | None = None


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)
    version: int | None = None


class EditRequest(ReportEdit):
    version: int | None = None


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None
