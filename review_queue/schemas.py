"""What the review API accepts and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.contract import Location


def _masked_contact(value: str) -> str:
    """Enough of a contact to tell two people apart ("0812****7890"), not enough to reach them."""
    value = value.strip()
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(value) <= 4:
        return "*" * len(value)
    return value[:4] + "*" * max(len(value) - 8, 2) + value[-4:] if len(value) > 8 else value[:2] + "***"


def masked_sender(sender: dict[str, Any] | None) -> dict[str, Any] | None:
    """The sender as every admin sees it: name initials, contacts partly hidden, ids kept for follow-ups."""
    if not sender:
        return sender
    shown = dict(sender)
    if shown.get("name"):
        shown["name"] = " ".join(part[:1] + "." for part in str(shown["name"]).split())
    for contact in ("phone", "email"):
        if shown.get(contact):
            shown[contact] = _masked_contact(str(shown[contact]))
    return shown


class ReportPublic(BaseModel):
    """A report as any admin sees it: personal data masked (see `ReportPersonalData` for the rest)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    ticket_code: str
    channel_id: str
    state: str
    received_at: datetime
    created_at: datetime
    updated_at: datetime
    #: The cleaned text with NIK, phone numbers and emails replaced by "[NIK]", "[telepon]", "[email]".
    text: str = Field(validation_alias="text_masked")
    masked_kinds: list[str]
    place: dict[str, Any] | None
    kota_code: str | None
    kecamatan_code: str | None
    kelurahan_code: str | None
    routing: dict[str, Any] | None
    category_code: str | None
    agency_code: str | None
    agency_unit: str | None
    needs_category_choice: bool
    duplicate_of: str | None
    duplicate_score: float | None
    #: Reports merged into this one (issue 6): [{"ticket_code", "channel_id"}]; its CRM request lists them.
    merged_sources: list[dict[str, Any]] = Field(default_factory=list)
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
    #: The SLA clock as of the sweeper's last round (docs/sla.md): stage, deadline and colour.
    sla_stage: str | None = None
    sla_due_at: datetime | None = None
    sla_level: str | None = None
    overdue_since: datetime | None = None

    @field_validator("sender", mode="before")
    @classmethod
    def _mask_sender(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return masked_sender(value)


class ReportPersonalData(BaseModel):
    """What only admins allowed to see personal data open; every opening is recorded in the history."""

    model_config = ConfigDict(from_attributes=True)

    ticket_code: str
    text_original: str
    text_clean: str
    sender: dict[str, Any] | None
    follow_ups: list[FollowUpPersonalData] = Field(default_factory=list)


class FollowUpPublic(BaseModel):
    """A later message attached to the report (it quoted the ticket, replied in the thread, ...)."""

    model_config = ConfigDict(from_attributes=True)

    ticket_code: str
    channel_id: str
    received_at: datetime
    reason: str
    text: str = Field(validation_alias="text_masked")
    media: list[dict[str, Any]]


class FollowUpPersonalData(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ticket_code: str
    text_original: str


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
    #: The admin's choice of category (a taxonomy code); the agency becomes the category's own.
    category_code: str | None = Field(default=None, min_length=1, max_length=100)
    #: Another agency than the category's (a taxonomy code), e.g. the kelurahan's PPSU for a small gutter.
    agency_code: str | None = Field(default=None, min_length=1, max_length=100)


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


# -- issue 6: the review app's actions (review_queue/decisions.py) ------------------------------------


class AskInfoRequest(BaseModel):
    """Ask the citizen for what is missing; the report waits in `needs_info` until they answer."""

    model_config = ConfigDict(extra="forbid")

    #: Completeness reason codes (too_short, no_concrete_problem, location_below_kelurahan, no_photo);
    #: null: what the normalizer found missing.
    missing: list[str] | None = None
    #: The admin's own question, added after the standard requests.
    note: str | None = Field(default=None, max_length=1000)
    version: int | None = None


class MergeRequest(BaseModel):
    """Fold this report into `into` (the primary), which then goes to the CRM listing both sources."""

    model_config = ConfigDict(extra="forbid")

    into: str = Field(min_length=1, max_length=40, description="the primary report's ticket code or id")
    version: int | None = None


class MergeResult(BaseModel):
    report: ReportPublic
    primary: ReportPublic
    #: "request": the primary's CRM request (not yet sent) lists both sources; "not_sent": the primary's
    #: request had already left, Open311 cannot amend it, and the link is kept in Kanal only.
    crm: str


class ReassignRequest(BaseModel):
    """Another category, agency and/or kelurahan; the report stays open, possibly in other admins' scope."""

    model_config = ConfigDict(extra="forbid")

    category_code: str | None = Field(default=None, min_length=1, max_length=100)
    agency_code: str | None = Field(default=None, min_length=1, max_length=100)
    kelurahan_code: str | None = Field(default=None, min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=2000)
    version: int | None = None


class RejectReasonPublic(BaseModel):
    code: str
    id: str
    en: str
