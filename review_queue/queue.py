"""The review queue: what an admin should look at next, in their scope, a page at a time.

Order: overdue first, then red ("almost late"), yellow, green and reports without an SLA clock (those
waiting for the citizen); within each, the least complete first (asking the citizen for what is missing
is the decision with the longest round trip, so it is made first), then the oldest. That is the key
(level rank, completeness, received_at, id).

Paging is by keyset, never OFFSET: the cursor is the last row's key. Each (state, SLA level) pair is
one range of the index `ix_report_queue` (state, sla_level, completeness, received_at, id), read in
order from the cursor with a LIMIT, so a page costs a handful of short index reads at 10k reports or
at 1M. The ranges are merged here. The level is the sweeper's (review_queue/sla.py), so a report
whose deadline passed since its last round is still in its old band until the next one, seconds
later; the colour shown is recomputed from the deadline at read time.

Every query carries the admin's scope (`Scope.report_clause`).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select, tuple_, union_all
from sqlmodel import Session, col

from gateway.db import UTCDateTime
from review_queue.accounts import Scope
from review_queue.tables import Report, ReportState

#: Bands in queue order; None: no SLA clock runs (e.g. needs_info).
LEVELS: tuple[str | None, ...] = ("overdue", "red", "yellow", "green", None)
RANK = {level: rank for rank, level in enumerate(LEVELS)}
DEFAULT_STATES: tuple[str, ...] = (ReportState.PENDING_REVIEW.value, ReportState.NEEDS_INFO.value)
#: States an admin may filter the queue on.
QUEUE_STATES: tuple[str, ...] = tuple(s.value for s in ReportState)
EXCERPT_CHARS = 160
MAX_LIMIT = 200

_LEVEL_COLUMN = {"kota": Report.kota_code, "kecamatan": Report.kecamatan_code, "kelurahan": Report.kelurahan_code}
_LEVEL_OF_PARTS = {2: "kota", 3: "kecamatan", 4: "kelurahan"}


class BadCursor(ValueError):
    """The cursor is not one this queue handed out; start again from the first page."""


@dataclass(frozen=True)
class Filters:
    """What the admin narrowed the queue to; every field optional except the states."""

    states: tuple[str, ...] = DEFAULT_STATES
    channel_id: str | None = None
    category_code: str | None = None
    agency_code: str | None = None
    #: A kota, kecamatan or kelurahan code.
    wilayah: str | None = None
    duplicates_only: bool = False

    def clause(self) -> list[ColumnElement[bool]]:
        """WHERE terms for everything but the state (each state is its own index range)."""
        terms: list[ColumnElement[bool]] = []
        if self.channel_id:
            terms.append(col(Report.channel_id) == self.channel_id)
        if self.category_code:
            terms.append(col(Report.category_code) == self.category_code)
        if self.agency_code:
            terms.append(col(Report.agency_code) == self.agency_code)
        if self.wilayah:
            level = _LEVEL_OF_PARTS.get(self.wilayah.count(".") + 1)
            if level is None:
                terms.append(literal(False))
            else:
                terms.append(col(_LEVEL_COLUMN[level]) == self.wilayah)
        if self.duplicates_only:
            terms.append(col(Report.duplicate_of).is_not(None))
        return terms


@dataclass(frozen=True, order=True)
class Key:
    """A row's place in the queue order; also the cursor (the last row of a page)."""

    rank: int
    completeness: int
    received_at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.rank, self.completeness, self.received_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Key:
        try:
            rank, completeness, received, report_id = json.loads(
                base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            )
            key = cls(int(rank), int(completeness), datetime.fromisoformat(received), str(report_id))
        except (binascii.Error, ValueError, TypeError):
            raise BadCursor(f"invalid queue cursor {cursor[:40]!r}; open the queue's first page again") from None
        if key.received_at.tzinfo is None or not 0 <= key.rank < len(LEVELS):
            raise BadCursor("invalid queue cursor; open the queue's first page again")
        return key


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue: enough to triage, nothing personal (the text is the masked one, cut)."""

    id: str
    ticket_code: str
    channel_id: str
    state: str
    excerpt: str
    kota_code: str | None
    kecamatan_code: str | None
    kelurahan_code: str | None
    category_code: str | None
    agency_code: str | None
    agency_unit: str | None
    received_at: datetime
    completeness: int
    completeness_missing: list[str]
    duplicate_of: str | None
    sla_level: str | None
    sla_due_at: datetime | None
    version: int

    @property
    def key(self) -> Key:
        return Key(RANK.get(self.sla_level, RANK[None]), self.completeness, self.received_at, self.id)

    def level_at(self, now: datetime) -> str | None:
        """The colour now: overdue as soon as the deadline passes, else the sweeper's level."""
        if self.sla_due_at is not None and self.sla_due_at <= now and self.state == ReportState.PENDING_REVIEW:
            return "overdue"
        return self.sla_level


@dataclass(frozen=True)
class Page:
    rows: list[QueueRow]
    #: The cursor of the next page; None on the last.
    next_cursor: str | None
    #: The cursor of the previous page (`before=`); None on the first.
    prev_cursor: str | None = None


_COLUMNS = (
    col(Report.id),
    col(Report.ticket_code),
    col(Report.channel_id),
    col(Report.state),
    func.substr(col(Report.text_masked), 1, EXCERPT_CHARS + 1).label("excerpt"),
    col(Report.kota_code),
    col(Report.kecamatan_code),
    col(Report.kelurahan_code),
    col(Report.category_code),
    col(Report.agency_code),
    col(Report.agency_unit),
    col(Report.received_at),
    col(Report.completeness),
    col(Report.completeness_missing),
    col(Report.duplicate_of),
    col(Report.sla_level),
    col(Report.sla_due_at),
    col(Report.version),
)


def _row(mapping: Any) -> QueueRow:
    values = dict(mapping)
    excerpt = values["excerpt"] or ""
    values["excerpt"] = excerpt[:EXCERPT_CHARS] + ("…" if len(excerpt) > EXCERPT_CHARS else "")
    return QueueRow(**values)


def _base(scope: Scope, filters: Filters) -> list[ColumnElement[bool]]:
    terms = filters.clause()
    in_scope = scope.report_clause()
    if in_scope is not None:
        terms.append(in_scope)
    return terms


def _segment(
    terms: Sequence[ColumnElement[bool]],
    state: str,
    level: str | None,
    bound: Key | None,
    limit: int,
    *,
    backwards: bool = False,
) -> Select[Any]:
    """One (state, band) range of the index in queue order after `bound`, or before it read backwards."""
    level_term = col(Report.sla_level).is_(None) if level is None else col(Report.sla_level) == level
    query = select(*_COLUMNS).where(col(Report.state) == state, level_term, *terms)
    order = (col(Report.completeness), col(Report.received_at), col(Report.id))
    if bound is not None:
        row = tuple_(*order)
        key = tuple_(literal(bound.completeness), literal(bound.received_at, UTCDateTime()), literal(bound.id))
        query = query.where(row < key if backwards else row > key)
    if backwards:
        return query.order_by(*(c.desc() for c in order)).limit(limit)
    return query.order_by(*order).limit(limit)


def page(
    session: Session,
    scope: Scope,
    filters: Filters,
    *,
    cursor: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of the queue: after `cursor` (a page's `next_cursor`), or the page before `before` (a
    page's `prev_cursor`); the first page without either. Raises `BadCursor`."""
    limit = max(1, min(limit, MAX_LIMIT))
    if before:
        earlier = _page_before(session, _base(scope, filters), filters.states, Key.decode(before), limit)
        if earlier.prev_cursor is not None:
            return earlier
        # Back at the start: the first page itself, full, whatever has joined or left the queue since.
        return page(session, scope, filters, limit=limit)
    after = Key.decode(cursor) if cursor else None
    terms = _base(scope, filters)
    found: list[QueueRow] = []
    for rank, level in enumerate(LEVELS):
        if after is not None and rank < after.rank:
            continue
        start = after if after is not None and rank == after.rank else None
        segments = [
            [_row(r._mapping) for r in session.execute(_segment(terms, state, level, start, limit + 1))]
            for state in filters.states
        ]
        found.extend(heapq.merge(*segments, key=lambda row: row.key))
        if len(found) > limit:
            break  # later bands sort after everything found so far
    rows = found[:limit]
    return Page(
        rows=rows,
        next_cursor=rows[-1].key.encode() if len(found) > limit else None,
        # Something came before the cursor; if it has left the queue since, that page starts the queue.
        prev_cursor=rows[0].key.encode() if after is not None and rows else None,
    )


def _page_before(
    session: Session, terms: Sequence[ColumnElement[bool]], states: Sequence[str], bound: Key, limit: int
) -> Page:
    """The `limit` rows just before `bound`, read backwards band by band, returned in queue order."""
    found: list[QueueRow] = []
    for rank in range(bound.rank, -1, -1):
        level = LEVELS[rank]
        start = bound if rank == bound.rank else None
        segments = [
            [_row(r._mapping) for r in session.execute(_segment(terms, state, level, start, limit + 1, backwards=True))]
            for state in states
        ]
        found.extend(heapq.merge(*segments, key=lambda row: row.key, reverse=True))
        if len(found) > limit:
            break  # earlier bands sort before everything found so far
    rows = list(reversed(found[:limit]))
    return Page(
        rows=rows,
        next_cursor=rows[-1].key.encode() if rows else None,
        prev_cursor=rows[0].key.encode() if len(found) > limit else None,
    )


@dataclass
class Counts:
    """How many reports of the scope (in the chosen states) each filter value would show."""

    total: int = 0
    state: Counter[str] = field(default_factory=Counter)
    level: Counter[str] = field(default_factory=Counter)
    channel: Counter[str] = field(default_factory=Counter)
    category: Counter[str] = field(default_factory=Counter)
    agency: Counter[str] = field(default_factory=Counter)
    kota: Counter[str] = field(default_factory=Counter)
    kecamatan: Counter[str] = field(default_factory=Counter)
    kelurahan: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


#: The value counted for reports without one (no category, no place...).
NONE_VALUE = ""


def counts(session: Session, scope: Scope, states: Iterable[str]) -> Counts:
    """Counts per filter value over the admin's scope and `states` (the other filters not applied, so
    every value stays visible).

    One statement, a UNION ALL of one small GROUP BY per dimension: each reads the open reports once
    through the state index and returns a few hundred rows at most (grouping by every dimension at
    once would return nearly one row per report, and rolling those up here costs more than the scans).
    """
    where = [col(Report.state).in_(list(states)), *_base(scope, Filters())]
    none = literal(None)

    def grouped(name: str, *columns: Any) -> Select[Any]:
        # Grouped by an expression, not the bare column: SQLite would otherwise walk that column's whole
        # index to avoid a sort (every report, open or not) instead of the state range (the open ones).
        columns = tuple(func.coalesce(c, "") for c in columns)
        padded = [*columns, *([none] * (3 - len(columns)))]
        return (
            select(
                literal(name).label("dim"), *(c.label(f"v{i}") for i, c in enumerate(padded)), func.count().label("n")
            )
            .where(*where)
            .group_by(*columns)
        )

    duplicate = case((col(Report.duplicate_of).is_(None), ""), else_="dup")
    statement = union_all(
        grouped("level", col(Report.state), col(Report.sla_level), duplicate),
        grouped("channel", col(Report.channel_id)),
        grouped("category", col(Report.category_code)),
        grouped("agency", col(Report.agency_code)),
        grouped("wilayah", col(Report.kota_code), col(Report.kecamatan_code), col(Report.kelurahan_code)),
    )
    result = Counts()
    for row in session.execute(statement):
        n = int(row.n)
        if row.dim == "level":
            result.total += n
            result.state[row.v0] += n
            result.level[row.v1 or NONE_VALUE] += n
            if row.v2:
                result.duplicates += n
        elif row.dim == "wilayah":
            result.kota[row.v0 or NONE_VALUE] += n
            result.kecamatan[row.v1 or NONE_VALUE] += n
            result.kelurahan[row.v2 or NONE_VALUE] += n
        else:
            getattr(result, row.dim)[row.v0 or NONE_VALUE] += n
    return result


def position(rows: Sequence[QueueRow], report_id: str) -> tuple[str | None, str | None]:
    """The ticket codes before and after `report_id` in `rows` (for next/previous on the decision screen)."""
    for index, row in enumerate(rows):
        if row.id == report_id:
            before = rows[index - 1].ticket_code if index > 0 else None
            after = rows[index + 1].ticket_code if index + 1 < len(rows) else None
            return before, after
    return None, None


def and_all(terms: Sequence[ColumnElement[bool]]) -> ColumnElement[bool] | None:
    return and_(*terms) if terms else None
