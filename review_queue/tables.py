"""Reports, their append-only history, and the admins who review them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.db import UTCDateTime, utcnow
from gateway.ids import new_id


class ReportState(StrEnum):
    PENDING_REVIEW = "pending_review"  # waiting for an admin
    APPROVED = "approved"  # in the outbox, on its way to the CRM
    REJECTED = "rejected"  # an admin turned it down, with a reason
    FORWARDED = "forwarded"  # the CRM holds it (see crm_service_request_id / crm_token)
    CRM_FAILED = "crm_failed"  # the CRM refused it or never answered; in the dead-letter list
    IN_PROGRESS = "in_progress"  # the CRM is working on it (Koordinasi, Disposisi, Proses)
    RESOLVED = "resolved"  # the CRM closed it (Selesai)
    # -- issue 6, the review app (review_queue/decisions.py) --
    NEEDS_INFO = "needs_info"  # an admin asked the citizen for what is missing; back to pending_review on answer
    MERGED = "merged"  # folded into another report (duplicate_of); that one goes to the CRM for both


class Report(SQLModel, table=True):
    __tablename__ = "report"
    __table_args__ = (
        # The review queue's order within each state and SLA level (review_queue/queue.py): keyset pages
        # read it as an index range, whatever the table's size (migration 0012).
        Index("ix_report_queue", "state", "sla_level", "completeness", "received_at", "id"),
        # The same order within one kelurahan: a kelurahan admin's page (1/267 of Jakarta) would otherwise
        # walk the whole band to find its 50 rows (0014). Kota and kecamatan scopes are broad enough not to.
        Index("ix_report_queue_kelurahan", "state", "sla_level", "kelurahan_code", "completeness", "received_at", "id"),
        # The queue's counts per filter value (`queue.counts`) read only this index: every column they
        # group or filter by, after the state, so open reports are counted without a table row (0014).
        Index(
            "ix_report_facets",
            "state",
            "sla_level",
            "channel_id",
            "category_code",
            "agency_code",
            "kota_code",
            "kecamatan_code",
            "kelurahan_code",
            "duplicate_of",
        ),
        # The oldest report waiting for review (/healthz) without walking created_at from the start (0014).
        Index("ix_report_state_created_at", "state", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    ticket_code: str = Field(unique=True, max_length=11)
    channel_id: str = Field(index=True, max_length=100)
    inbound_message_id: str = Field(foreign_key="inbound_message.id", unique=True, max_length=36)
    state: str = Field(default=ReportState.PENDING_REVIEW, index=True, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    #: Indexed: the SLA sweeper looks at recently changed reports each round.
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    #: When the citizen's message reached Kanal: the clock for duplicate windows (not the normalizer's run).
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: Protected: exactly what the citizen wrote, and the cleaned text with personal data still in it.
    #: Only admins allowed to see personal data open them, and each opening is recorded.
    text_original: str
    text_clean: str
    #: `text_clean` with NIK, phone numbers, emails... replaced: what admins see by default and what goes onward.
    text_masked: str = ""
    masked_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: The normalizer's place (codes per level, street, RT/RW, precision, evidence); the codes are also
    #: columns so queues can be filtered by wilayah.
    place: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    kota_code: str | None = Field(default=None, index=True, max_length=20)
    kecamatan_code: str | None = Field(default=None, index=True, max_length=20)
    kelurahan_code: str | None = Field(default=None, index=True, max_length=20)
    #: The normalizer's category and agency, with confidence, reasons and alternatives.
    routing: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    category_code: str | None = Field(default=None, index=True, max_length=100)
    agency_code: str | None = Field(default=None, index=True, max_length=100)
    agency_unit: str | None = Field(default=None, max_length=300)
    #: The classifier was not sure: an admin picks the category.
    needs_category_choice: bool = False
    #: Another report about the same problem (same place and category, similar text, close in time).
    duplicate_of: str | None = Field(default=None, index=True, max_length=36)
    duplicate_score: float | None = None
    #: Reports merged into this one (review_queue/decisions.py): [{"ticket_code", "channel_id"}, ...], so
    #: the CRM request lists every source (crm_client/open311.py).
    merged_sources: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: The words duplicate detection compares (analysis form, no stop words, no personal data).
    match_terms: str = ""
    completeness: int = 0  # 0..100
    completeness_missing: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sender: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    media: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    service_code: str | None = Field(default=None, max_length=100)
    #: Every decision the normalizer made: step, what it decided, why.
    decisions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reject_reason: str | None = None
    crm_service_request_id: str | None = Field(default=None, index=True, max_length=200)
    crm_token: str | None = Field(default=None, max_length=200)
    #: The CRM's own status word (Menunggu, Koordinasi, Disposisi, Proses, Selesai; or Open311 open/closed),
    #: its note, and the CRM's time of that change: what status sync compares to record each change once.
    crm_status: str | None = Field(default=None, max_length=50)
    crm_status_notes: str | None = None
    crm_updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: When status sync last asked the CRM about this report: the oldest-checked go first.
    crm_checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))
    #: Bumped on every change so two admins acting at once cannot both win.
    version: int = 1
    #: The SLA clock of the current stage ("review", "follow_up"; None: no clock runs), kept by the
    #: sweeper in review_queue/sla.py from the report's history, so a re-run gives the same values.
    sla_stage: str | None = Field(default=None, max_length=20)
    sla_started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sla_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))
    #: When the level turns red (the CRM's "almost late"), if the rule has a warning.
    sla_warn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sla_level: str | None = Field(default=None, index=True, max_length=10)  # green, yellow, red, overdue
    #: The deadline it missed; None while within it.
    overdue_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: When the level next changes: the sweeper reads only rows whose time has come.
    sla_next_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))
    #: `version` when the SLA columns were computed; a different `version` means the report changed since.
    sla_version: int | None = None


class ReportEvent(SQLModel, table=True):
    """One change to a report: who, when, what, and the fields before and after."""

    __tablename__ = "report_event"
    # The audit page reads the history newest first, overall or by actor or action, a page at a time;
    # without these it would sort the whole history for every page (migration 0013).
    __table_args__ = (
        Index("ix_report_event_at_id", "at", "id"),
        Index("ix_report_event_actor_at", "actor", "at", "id"),
        Index("ix_report_event_action_at", "action", "at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=200)  # "admin:<username>", "system:normalizer", "system:crm"
    action: str = Field(max_length=50)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    note: str | None = None


class ReportMatchKey(SQLModel, table=True):
    """A blocking key of a report (same kelurahan and category; same sender; same thread) and when it came.

    Duplicate and follow-up lookups read only the rows of a new message's own keys inside the time
    window, through the (key, received_at) primary key, so their cost does not grow with history.
    """

    __tablename__ = "report_match_key"

    key: str = Field(primary_key=True, max_length=80)
    received_at: datetime = Field(sa_column=Column(UTCDateTime, primary_key=True))
    report_id: str = Field(primary_key=True, foreign_key="report.id", max_length=36)


class ReportFollowUp(SQLModel, table=True):
    """A later message attached to an earlier report instead of becoming a report of its own."""

    __tablename__ = "report_follow_up"

    inbound_message_id: str = Field(primary_key=True, foreign_key="inbound_message.id", max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    #: The ticket code the citizen was given for this message: it finds the report it was attached to.
    ticket_code: str = Field(unique=True, max_length=11)
    channel_id: str = Field(max_length=100)
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    #: Why it was attached: "ticket reference", "same thread", "same sender".
    reason: str = Field(max_length=300)
    text_original: str
    text_masked: str
    media: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AdminRole(StrEnum):
    """What an admin may do; which reports they see is their scope (review_queue/accounts.py)."""

    SUPERADMIN = "superadmin"  # every report, every action, the raw quarantine and the feed
    REVIEWER = "reviewer"  # acts on the reports in their scope
    VIEWER = "viewer"  # reads the reports in their scope, acts on none
    CHANNEL_ADMIN = "channel_admin"  # acts on the reports of their channels (scope_channels)
    WILAYAH_ADMIN = "wilayah_admin"  # acts on the reports of their kota/kecamatan/kelurahan (scope_wilayah)


class AdminUser(SQLModel, table=True):
    __tablename__ = "admin_user"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(unique=True, max_length=100)
    password_hash: str
    role: str = Field(default=AdminRole.REVIEWER, max_length=20)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: The reports this admin sees (ignored for a superadmin): channel ids ("twitter:dkijakarta"), channel
    #: types ("twitter:*") or "*" for every channel; and wilayah codes of any level below the provinsi.
    #: Read them through `review_queue.accounts.scope_of`, which states the rule.
    scope_channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scope_wilayah: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: The admin pages' language: "id" (Bahasa Indonesia) or "en".
    language: str = Field(default="id", max_length=2)
    #: Failed sign-ins since `failed_since`; at the configured limit the account is locked until
    #: `locked_until`. Kept here, not in process memory, so every process sharing the database agrees.
    failed_logins: int = 0
    failed_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored, so a database leak does not leak sessions."""

    __tablename__ = "api_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    admin_id: str = Field(foreign_key="admin_user.id", index=True, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class AdminSession(SQLModel, table=True):
    """A signed-in browser of the admin pages. Only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "admin_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    admin_id: str = Field(foreign_key="admin_user.id", index=True, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: Refreshed at most once a minute while the admin is active; the idle timeout counts from here.
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: The absolute end, however active the admin is.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class AdminNotification(SQLModel, table=True):
    """Something an admin must be told (for now: a report went overdue). Shown on /admin/notifications;
    delivery by e-mail or chat comes later.

    Written once per admin and occasion (`dedupe_key`), so a sweeper that runs twice tells nobody twice.
    """

    __tablename__ = "admin_notification"
    __table_args__ = (
        UniqueConstraint("admin_id", "dedupe_key"),
        # The menu counts each admin's unread ones on every page (review_queue/admin_inbox.py; 0015).
        Index("ix_admin_notification_unread", "admin_id", "read_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    admin_id: str = Field(foreign_key="admin_user.id", index=True, max_length=36)
    report_id: str | None = Field(default=None, foreign_key="report.id", index=True, max_length=36)
    kind: str = Field(max_length=30)  # "overdue"
    dedupe_key: str = Field(max_length=200)
    message: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: Set by whatever delivers it (a future e-mail/chat sender); `read_at` by the admin's "mark read".
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
