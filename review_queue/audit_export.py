"""The audit trail as one list: sign-ins and account changes (`audit_log`) and report changes (`report_event`).

Both tables are read newest first, each through its own index, and merged here, so a page costs two
short index range scans however large the tables grow. Paging is by key (`Position`: time, source,
id), never by offset. What a reader sees:

- a superadmin: everything;
- anyone else: the history of the reports in their scope (`Scope.report_clause`), the `audit_log`
  rows about those reports (`target_type="report"`, `target_id=<report id>`), and their own sign-ins,
  failed sign-ins on their account, lock-outs and settings. Other admins' sign-ins are not shown;
- IP addresses: to a superadmin, and on a reader's own rows.

The export (`csv_chunks`, `jsonl_chunks` over `iter_entries`) reads in batches of `EXPORT_BATCH`
rows, each batch in its own short read transaction, and yields text as it goes: nothing holds the
whole trail in memory or a transaction open while a slow client downloads.

Writers of future audit rows about a report: `audit.record(..., target_type="report",
target_id=report.id)` makes the row visible to every admin whose scope sees that report.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Select, and_, or_, select, true
from sqlmodel import Session, col

from gateway.db import read_session
from review_queue.accounts import Scope, scope_of
from review_queue.audit import AuditLog
from review_queue.tables import AdminRole, AdminUser, Report, ReportEvent

Source = Literal["audit_log", "report_event"]
#: Ties on time are broken by source, then id: the same order on every page and in the export.
_RANK: dict[str, int] = {"audit_log": 0, "report_event": 1}
_SOURCES: tuple[Source, ...] = ("audit_log", "report_event")
#: `report_event.actor` of an admin is "admin:<username>"; `audit_log.actor_name` is the bare username.
ADMIN_PREFIX = "admin:"
EXPORT_BATCH = 500
#: The target type of `audit_log` rows about one report; their `target_id` is the report's id.
REPORT_TARGET = "report"

# The indexes these queries read report_event through are declared on ReportEvent (migration 0013).


class BadCursor(ValueError):
    """The `cursor` parameter is not one this module made; start again from the first page."""


@dataclass(frozen=True, order=True)
class Position:
    """Where an entry sits in the trail: entries are listed from the greatest position down."""

    at: datetime
    rank: int
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.rank, self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            at, rank, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None or rank not in _RANK.values() or not isinstance(entry_id, str):
                raise ValueError(cursor)
            return cls(at=moment, rank=rank, id=entry_id)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise BadCursor(cursor) from None


@dataclass(frozen=True)
class AuditFilter:
    """What to list. Every part is optional; the parts combine with AND."""

    #: An admin's username (with or without "admin:") or a system actor ("system:sla").
    actor: str | None = None
    action: str | None = None
    #: From this moment (inclusive) to `until` (exclusive), aware UTC.
    since: datetime | None = None
    until: datetime | None = None
    #: One report's id: its history and the audit rows about it. The caller resolves a ticket code
    #: to an id inside the reader's scope (`accounts.get_report_in_scope`).
    report_id: str | None = None

    def as_detail(self) -> dict[str, str]:
        """The filters set, as JSON-ready text (for the audit row that records an export)."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "report_id": self.report_id,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class AuditEntry:
    """One line of the trail, whichever table it came from."""

    source: Source
    id: str
    at: datetime
    #: As recorded: a username, "system:normalizer", or "anonymous" (nobody was signed in).
    actor: str
    action: str
    ticket_code: str | None
    report_id: str | None
    #: What the row is about when it is not a report: "admin_user:<id>".
    target: str | None
    #: The fields that changed (report events), or from/to pairs an audit row carries.
    changes: tuple[Change, ...] = ()
    #: Other facts of an audit row (the username tried, the reason, "via").
    detail: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    #: None when the reader may not see it.
    ip: str | None = None

    @property
    def position(self) -> Position:
        return Position(at=self.at, rank=_RANK[self.source], id=self.id)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    #: Where the next (older) page starts; None: this is the last page.
    next: Position | None


def actor_name(value: str) -> str:
    """The name shown and filtered on: an admin's username without "admin:"; others as recorded."""
    value = value.strip()
    return value[len(ADMIN_PREFIX) :] if value.startswith(ADMIN_PREFIX) else value


def is_superadmin(admin: AdminUser) -> bool:
    return not admin.disabled and admin.role == AdminRole.SUPERADMIN


# -- reading ----------------------------------------------------------------------------------------


def read_page(
    session: Session, reader: AdminUser, filters: AuditFilter, *, after: Position | None, limit: int
) -> AuditPage:
    """Up to `limit` entries older than `after` (None: the newest), newest first, that `reader` may see."""
    rows: list[AuditEntry] = []
    for source in _SOURCES:
        rows.extend(_read_source(session, source, reader, filters, after=after, limit=limit + 1))
    rows.sort(key=lambda e: e.position, reverse=True)
    page = rows[:limit]
    return AuditPage(entries=page, next=page[-1].position if len(rows) > limit and page else None)


def iter_entries(
    engine: Engine, reader: AdminUser, filters: AuditFilter, *, batch: int = EXPORT_BATCH
) -> Iterator[AuditEntry]:
    """Every entry `reader` may see, newest first, read `batch` at a time in short transactions."""
    after: Position | None = None
    while True:
        with read_session(engine) as session:
            page = read_page(session, reader, filters, after=after, limit=batch)
        yield from page.entries
        if page.next is None:
            return
        after = page.next


def _read_source(
    session: Session, source: Source, reader: AdminUser, filters: AuditFilter, *, after: Position | None, limit: int
) -> list[AuditEntry]:
    if source == "audit_log":
        log_rows = session.execute(_audit_log_query(reader, filters, after).limit(limit)).all()
        return [_from_log(row, ticket, reader) for row, ticket in log_rows]
    event_rows = session.execute(_report_event_query(reader, filters, after).limit(limit)).all()
    return [_from_event(row, ticket) for row, ticket in event_rows]


def _after_clause(at_column: Any, id_column: Any, rank: int, after: Position | None) -> ColumnElement[bool]:
    """Rows of this source (of `rank`) strictly below `after` in (time, source, id) order."""
    if after is None:
        return true()
    if rank < after.rank:  # at the same time, this source comes after (below) the other
        return at_column <= after.at
    if rank > after.rank:
        return at_column < after.at
    return or_(at_column < after.at, and_(at_column == after.at, id_column < after.id))


def _audit_log_query(reader: AdminUser, filters: AuditFilter, after: Position | None) -> Select[AuditLog, str]:
    at, row_id = col(AuditLog.at), col(AuditLog.id)
    about_report = and_(col(AuditLog.target_type) == REPORT_TARGET, col(Report.id) == col(AuditLog.target_id))
    query = (
        select(AuditLog, col(Report.ticket_code))
        .outerjoin(Report, about_report)
        .where(_after_clause(at, row_id, _RANK["audit_log"], after))
        .order_by(at.desc(), row_id.desc())
    )
    if not is_superadmin(reader):
        query = query.where(_own_or_in_scope(reader, scope_of(reader)))
    if filters.actor:
        name = actor_name(filters.actor)
        query = query.where(col(AuditLog.actor_name).in_([name, ADMIN_PREFIX + name]))
    if filters.action:
        query = query.where(col(AuditLog.action) == filters.action)
    if filters.since is not None:
        query = query.where(at >= filters.since)
    if filters.until is not None:
        query = query.where(at < filters.until)
    if filters.report_id is not None:
        query = query.where(col(AuditLog.target_type) == REPORT_TARGET, col(AuditLog.target_id) == filters.report_id)
    return query


def _own_or_in_scope(reader: AdminUser, scope: Scope) -> ColumnElement[bool]:
    """Audit rows a non-superadmin sees: by them, about their account, or about a report in their scope."""
    own = or_(
        col(AuditLog.actor_id) == reader.id,
        and_(col(AuditLog.target_type) == "admin_user", col(AuditLog.target_id) == reader.id),
    )
    in_scope = scope.report_clause()
    if in_scope is None:  # the whole city: every report's rows
        return or_(own, col(Report.id).is_not(None))
    if scope.is_empty:
        return own
    return or_(own, and_(col(Report.id).is_not(None), in_scope))


def _report_event_query(reader: AdminUser, filters: AuditFilter, after: Position | None) -> Select[ReportEvent, str]:
    at, row_id = col(ReportEvent.at), col(ReportEvent.id)
    query = (
        select(ReportEvent, col(Report.ticket_code))
        .join(Report, col(Report.id) == col(ReportEvent.report_id))
        .where(_after_clause(at, row_id, _RANK["report_event"], after))
        .order_by(at.desc(), row_id.desc())
    )
    if not is_superadmin(reader):
        in_scope = scope_of(reader).report_clause()
        if in_scope is not None:
            query = query.where(in_scope)
    if filters.actor:
        name = actor_name(filters.actor)
        query = query.where(col(ReportEvent.actor).in_([ADMIN_PREFIX + name, name]))
    if filters.action:
        query = query.where(col(ReportEvent.action) == filters.action)
    if filters.since is not None:
        query = query.where(at >= filters.since)
    if filters.until is not None:
        query = query.where(at < filters.until)
    if filters.report_id is not None:
        query = query.where(col(ReportEvent.report_id) == filters.report_id)
    return query


def _from_log(row: AuditLog, ticket_code: str | None, reader: AdminUser) -> AuditEntry:
    detail = dict(row.detail or {})
    changes: tuple[Change, ...] = ()
    if "from" in detail and "to" in detail:  # a setting changed: shown like a report field
        what = "language" if row.action == "language_changed" else "value"
        changes = (Change(what, detail.pop("from"), detail.pop("to")),)
    elif isinstance(detail.get("before"), dict) and isinstance(detail.get("after"), dict):
        # An account's settings (review_queue/account_admin.py): shown field by field, like a report's.
        changes = tuple(changes_between(detail.pop("before"), detail.pop("after")))
    about_report = row.target_type == REPORT_TARGET
    own = row.actor_id == reader.id or (row.target_type == "admin_user" and row.target_id == reader.id)
    return AuditEntry(
        source="audit_log",
        id=row.id,
        at=row.at,
        actor=actor_name(row.actor_name),
        action=row.action,
        ticket_code=ticket_code if about_report else None,
        report_id=row.target_id if about_report else None,
        target=None if about_report or not row.target_type else f"{row.target_type}:{row.target_id or ''}",
        changes=changes,
        detail=detail,
        ip=row.ip if is_superadmin(reader) or own else None,
    )


def _from_event(row: ReportEvent, ticket_code: str | None) -> AuditEntry:
    return AuditEntry(
        source="report_event",
        id=row.id,
        at=row.at,
        actor=actor_name(row.actor),
        action=row.action,
        ticket_code=ticket_code,
        report_id=row.report_id,
        target=None,
        changes=tuple(changes_between(row.before, row.after)),
        note=row.note,
    )


def changes_between(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """The fields whose value differs; for a new report (no `before`), the fields it was given."""
    before, after = before or {}, after or {}
    names = list(after) + [name for name in before if name not in after]
    found = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if old == new or (not before and new in (None, "", [], {})):
            continue
        found.append(Change(name, old, new))
    return found


# -- export -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "at_utc",
    "at_wib",
    "actor",
    "action",
    "ticket",
    "target",
    "changes",
    "detail",
    "note",
    "ip",
    "source",
    "id",
)
#: A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """`value` as a spreadsheet shows it but never runs it: a formula-like start gets a leading quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_record(entry: AuditEntry, wib_text: str) -> dict[str, Any]:
    """One entry as plain JSON-ready values (what JSON Lines holds; CSV flattens them)."""
    return {
        "at_utc": entry.at.isoformat(),
        "at_wib": wib_text,
        "actor": entry.actor,
        "action": entry.action,
        "ticket": entry.ticket_code,
        "target": entry.target,
        "changes": {c.field: {"before": c.before, "after": c.after} for c in entry.changes},
        "detail": entry.detail,
        "note": entry.note,
        "ip": entry.ip,
        "source": entry.source,
        "id": entry.id,
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def csv_chunks(entries: Iterable[AuditEntry], wib: Any, *, every: int = 200) -> Iterator[str]:
    """CSV text (header first) in pieces of about `every` rows; every cell made formula-safe.

    :param wib: how a time is written for people in Jakarta (`review_queue.web.render.wib`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, entry in enumerate(entries, start=1):
        record = export_record(entry, wib(entry.at))
        writer.writerow([safe_cell(_text(record[name])) for name in CSV_COLUMNS])
        if count % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(entries: Iterable[AuditEntry], wib: Any, *, every: int = 200) -> Iterator[str]:
    """One JSON object per line, in pieces of about `every` lines."""
    lines: list[str] = []
    for entry in entries:
        lines.append(json.dumps(export_record(entry, wib(entry.at)), ensure_ascii=False, default=str))
        if len(lines) >= every:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


__all__ = [
    "AuditEntry",
    "AuditFilter",
    "AuditPage",
    "BadCursor",
    "Change",
    "Position",
    "csv_chunks",
    "iter_entries",
    "jsonl_chunks",
    "read_page",
    "safe_cell",
]
