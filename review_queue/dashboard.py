"""The figures of the head of office's dashboard: arrivals per channel, the backlog, review and closure times.

Every function takes a connection or session, the viewing admin's scope as a SQL condition on `Report`
(None: everything), and the instant `now`; it reads and never writes. Days are WIB calendar days.

What each figure costs stays bounded by recent traffic, not by history:

* arrivals read the reports of the window through the ``created_at`` index;
* the backlog and the per-kelurahan counts read open reports through the ``state`` index;
* review and closure times read the history rows of the window. They need an index on
  ``report_event (action, at)`` (``ix_report_event_action_at``); without it they scan the whole
  history table (see bench/dashboard.py for both).

Medians are computed in Python from the window's durations, which SQL subtracts (numbers are far
cheaper to read than timestamps): SQLite has no percentile function, and a 30-day window holds a few
tens of thousands of durations at most (Jakarta's busiest day had 800 reports).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Float, and_, case, exists, func, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col

from normalizer.gazetteer import load_gazetteer
from review_queue.sla import OPEN_STATES as SLA_OPEN_STATES
from review_queue.tables import Report, ReportEvent, ReportState
from review_queue.workdays import WIB

Db = Connection | Session
#: The viewing admin's `Scope.report_clause()` (review_queue/accounts.py); None: every report.
ScopeClause = ColumnElement[bool] | None

#: Open: anything an admin or the CRM still has to finish (in progress at the CRM included).
OPEN_STATES: tuple[str, ...] = tuple(
    s.value for s in ReportState if s not in (ReportState.REJECTED, ReportState.RESOLVED)
)
#: The history actions that end review. Only admins' count: a trusted channel's automatic approval
#: (actor "system:normalizer") is not a review, and counting it would pull the median to zero.
DECISIONS = ("approved", "rejected")
SYSTEM_ACTORS = "system:%"
#: The key under which a backlog groups reports with no agency or no place yet.
NONE_KEY = ""
MAX_DAYS = 366


class wib_date(FunctionElement[date]):  # noqa: N801 - reads like the SQL function it stands for
    """The WIB calendar day of a UTC timestamp column, in SQL, on both engines."""

    name = "wib_date"
    inherit_cache = True
    type = Date()


@compiles(wib_date)
def _wib_date_standard(element: wib_date, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    return f"CAST(({compiler.process(argument, **kw)} AT TIME ZONE 'Asia/Jakarta') AS DATE)"


@compiles(wib_date, "sqlite")
def _wib_date_sqlite(element: wib_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores naive UTC text and has no time zones; WIB is UTC+7 all year (no daylight saving).
    (argument,) = element.clauses
    return f"date({compiler.process(argument, **kw)}, '+7 hours')"


class seconds_between(FunctionElement[float]):  # noqa: N801 - reads like the SQL function it stands for
    """``end - start`` in seconds, computed in SQL: reading numbers is far cheaper than parsing timestamps."""

    name = "seconds_between"
    inherit_cache = True
    type = Float()


@compiles(seconds_between)
def _seconds_between_standard(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


class unindexed(FunctionElement[Any]):  # noqa: N801 - reads like the SQL it stands for
    """`expression` as a value no index may serve: SQLite's unary ``+`` (plain on other engines).

    SQLite's planner has no statistics unless someone runs ANALYZE, and guesses that any equality
    on an indexed column is very selective. Two guesses go badly here: serving a per-report
    subquery from the ``(action, at)`` index (every approval ever made, once per outer row), and
    driving a query by the scope's ``kota_code = ?`` (a fifth of all history) instead of by the
    window or the open reports. PostgreSQL keeps statistics and needs no such help.
    """

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_standard(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    return str(compiler.process(argument, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    return f"+({compiler.process(argument, **kw)})"


def _as_date(value: date | str) -> date:
    # SQLite's date() answers text, whatever type the expression declares.
    return date.fromisoformat(value) if isinstance(value, str) else value


def _scoped(query: Any, scope: ScopeClause) -> Any:
    # The scope filters; the window or the open reports drive (see `unindexed`). A scope of one
    # kelurahan would be cheaper the other way round, but this way no scope costs more than the window.
    return query if scope is None else query.where(unindexed(scope))


def _window_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    return days


def wib_day_start(day: date) -> datetime:
    """00:00 WIB of `day`, as an aware instant."""
    return datetime.combine(day, time(), tzinfo=WIB)


# -- arrivals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyCounts:
    """Reports received per channel per WIB day; every day of the window is there, zeros included."""

    days: tuple[date, ...]
    #: Channel id -> one count per entry of `days`; channels with no report in the window are absent.
    by_channel: dict[str, tuple[int, ...]]

    @property
    def per_day(self) -> tuple[int, ...]:
        return tuple(sum(counts[i] for counts in self.by_channel.values()) for i in range(len(self.days)))

    @property
    def total(self) -> int:
        return sum(sum(counts) for counts in self.by_channel.values())


def reports_per_channel_per_day(db: Db, *, scope: ScopeClause, now: datetime, days: int = 14) -> DailyCounts:
    """Reports received in the last `days` WIB days (today included, up to `now`), per channel and day."""
    today = now.astimezone(WIB).date()
    first = today - timedelta(days=_window_days(days) - 1)
    since = wib_day_start(first)
    day = wib_date(col(Report.received_at))
    query = (
        select(col(Report.channel_id), day, func.count())
        .where(
            # A report is made after its message arrived (created_at >= received_at), so this range on
            # the indexed created_at drops nothing the range on received_at keeps. Both ends are given:
            # SQLite's planner takes a one-sided range for a quarter of the table and would rather walk
            # the channel_id index to skip sorting the groups.
            col(Report.created_at) >= since,
            col(Report.created_at) <= now,
            col(Report.received_at) >= since,
            col(Report.received_at) <= now,
        )
        # The day first: no index yields that order, so no index walk competes with the range.
        .group_by(day, col(Report.channel_id))
    )
    window = tuple(first + timedelta(days=n) for n in range(days))
    position = {d: n for n, d in enumerate(window)}
    by_channel: dict[str, list[int]] = {}
    for channel_id, value, count in db.execute(_scoped(query, scope)):
        n = position.get(_as_date(value))
        if n is not None:
            by_channel.setdefault(channel_id, [0] * days)[n] += count
    ordered = sorted(by_channel.items(), key=lambda item: (-sum(item[1]), item[0]))
    return DailyCounts(days=window, by_channel={channel: tuple(counts) for channel, counts in ordered})


# -- backlog -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacklogRow:
    """Open and overdue reports of one agency or area. `code` is NONE_KEY for "not known yet"."""

    code: str
    label: str
    open: int
    overdue: int


@dataclass(frozen=True)
class Backlog:
    """Open reports (not rejected, not resolved) and the overdue among them, grouped three ways.

    Rows are sorted worst first: most overdue, then most open, then by label.
    """

    open: int = 0
    overdue: int = 0
    by_agency: tuple[BacklogRow, ...] = ()
    by_kota: tuple[BacklogRow, ...] = ()
    by_kecamatan: tuple[BacklogRow, ...] = ()
    #: Open reports per kelurahan code (those with no kelurahan left out): the choropleth's values.
    by_kelurahan: dict[str, int] = field(default_factory=dict)


def backlog(
    db: Db,
    *,
    scope: ScopeClause,
    now: datetime,
    agency_names: Mapping[str, str] | None = None,
    unknown_agency: str = "Belum ada instansi",
    unknown_place: str = "Lokasi belum diketahui",
) -> Backlog:
    """Open and overdue reports at `now`, by agency, by kota and by kecamatan (open ones by kelurahan too).

    Overdue means what `kanal sla report` means: a report with an SLA stage whose stored deadline
    has passed, even before the next sweep colours it. Labels: `agency_names` (code -> name, e.g.
    from the taxonomy) for agencies, the shipped wilayah names for areas.
    """
    overdue = case(
        (and_(col(Report.state).in_(SLA_OPEN_STATES), col(Report.sla_due_at) <= now), 1),
        else_=0,
    )
    # One pass over the open reports; the four groupings are rolled up from its few thousand groups.
    keys = (
        _group_key(Report.agency_code),
        _group_key(Report.kota_code),
        _group_key(Report.kecamatan_code),
        _group_key(Report.kelurahan_code),
    )
    query = select(*keys, func.count(), func.sum(overdue)).where(col(Report.state).in_(OPEN_STATES)).group_by(*keys)
    agencies: Counter[str] = Counter()
    kota: Counter[str] = Counter()
    kecamatan: Counter[str] = Counter()
    late_agencies: Counter[str] = Counter()
    late_kota: Counter[str] = Counter()
    late_kecamatan: Counter[str] = Counter()
    kelurahan: Counter[str] = Counter()
    total = total_late = 0
    for agency_code, kota_code, kecamatan_code, kelurahan_code, count, late in db.execute(_scoped(query, scope)):
        late = int(late or 0)
        total, total_late = total + count, total_late + late
        if kelurahan_code != NONE_KEY:
            kelurahan[kelurahan_code] += count
        for counter, late_counter, key in (
            (agencies, late_agencies, agency_code),
            (kota, late_kota, kota_code),
            (kecamatan, late_kecamatan, kecamatan_code),
        ):
            counter[key] += count
            late_counter[key] += late
    names = agency_names or {}
    regions = load_gazetteer().regions

    def area_name(code: str) -> str:
        if code == NONE_KEY:
            return unknown_place
        region = regions.get(code)
        return region.short_name if region is not None else code

    def rows(counter: Counter[str], late: Counter[str], label: Callable[[str], str]) -> tuple[BacklogRow, ...]:
        made = [BacklogRow(code=key, label=label(key), open=n, overdue=late[key]) for key, n in counter.items()]
        return tuple(sorted(made, key=lambda r: (-r.overdue, -r.open, r.label)))

    return Backlog(
        open=total,
        overdue=total_late,
        by_agency=rows(agencies, late_agencies, lambda k: unknown_agency if k == NONE_KEY else names.get(k, k)),
        by_kota=rows(kota, late_kota, area_name),
        by_kecamatan=rows(kecamatan, late_kecamatan, area_name),
        by_kelurahan=dict(kelurahan),
    )


def open_by_kelurahan(db: Db, *, scope: ScopeClause) -> dict[str, int]:
    """Open reports per kelurahan code (reports with no kelurahan are left out): the choropleth's values.

    `backlog` gives the same counts from its own pass (`Backlog.by_kelurahan`); this is for a caller
    that needs only the map.
    """
    key = _group_key(Report.kelurahan_code)
    query = select(key, func.count()).where(col(Report.state).in_(OPEN_STATES)).group_by(key)
    return {code: count for code, count in db.execute(_scoped(query, scope)) if code != NONE_KEY}


def _group_key(column: Any) -> ColumnElement[str]:
    """`column`, NULL read as NONE_KEY, to group open reports by.

    Also keeps the plan right on SQLite: grouping by a bare indexed column lets its planner walk that
    column's whole index to skip a sort, instead of reading the open reports through the state index
    (10 to 20 times slower once ANALYZE has run). No index yields this expression's order.
    """
    return func.coalesce(col(column), NONE_KEY)


# -- durations ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DurationStats:
    """How long something took over a window: how many, the median and the 90th percentile (None if none)."""

    count: int = 0
    median: timedelta | None = None
    p90: timedelta | None = None


def duration_stats(durations: Iterable[timedelta]) -> DurationStats:
    """Median and 90th percentile of `durations` (negative ones, from clock skew, count as zero)."""
    return seconds_stats(d.total_seconds() for d in durations)


def seconds_stats(durations: Iterable[float]) -> DurationStats:
    """`duration_stats` of durations given in seconds."""
    # Rounded to the millisecond: SQLite's julianday arithmetic is a float of days, good to ~0.1 ms.
    seconds = sorted(round(max(0.0, float(s)), 3) for s in durations)
    if not seconds:
        return DurationStats()
    # The nearest-rank 90th percentile: an actual duration someone waited, not an interpolation.
    p90 = seconds[max(0, -(-len(seconds) * 9 // 10) - 1)]
    return DurationStats(
        count=len(seconds),
        median=timedelta(seconds=statistics.median(seconds)),
        p90=timedelta(seconds=p90),
    )


def time_to_review(db: Db, *, scope: ScopeClause, now: datetime, days: int = 30) -> DurationStats:
    """From receipt to an admin's first approval or rejection, for first decisions made in the window.

    The window is the last `days` days up to `now`: it measures how fast reviews are now, not how
    fast reports received long ago were eventually reviewed.
    """
    since = now - timedelta(days=_window_days(days))
    earlier = aliased(ReportEvent)
    # No GROUP BY on purpose: grouping by report_id lets SQLite prefer a walk of the whole history in
    # report_id order (no sort needed) over the range of the window. "First" is a NOT EXISTS instead.
    decided_before = exists().where(
        col(earlier.report_id) == col(ReportEvent.report_id),
        unindexed(col(earlier.action)).in_(DECISIONS),
        unindexed(col(earlier.at)) < col(ReportEvent.at),
        not_(col(earlier.actor).like(SYSTEM_ACTORS)),
    )
    query = (
        select(seconds_between(col(Report.received_at), col(ReportEvent.at)))
        .join_from(ReportEvent, Report, col(Report.id) == col(ReportEvent.report_id))
        .where(
            col(ReportEvent.action).in_(DECISIONS),
            col(ReportEvent.at) >= since,
            col(ReportEvent.at) <= now,
            not_(col(ReportEvent.actor).like(SYSTEM_ACTORS)),
            not_(decided_before),
        )
    )
    return seconds_stats(db.execute(_scoped(query, scope)).scalars())


def time_to_closure(db: Db, *, scope: ScopeClause, now: datetime, days: int = 30) -> DurationStats:
    """From the first approval to the CRM closing the report (state resolved), for closures in the window.

    The closure is when Kanal learned it (the status change's history row), so the status poll's
    interval is part of it. A report the CRM reopened and closed again counts at each closure, each
    measured from its approval: the whole time it took to get it done.
    """
    since = now - timedelta(days=_window_days(days))
    after_state = col(ReportEvent.after)["state"].as_string()
    before_state = col(ReportEvent.before)["state"].as_string()
    approval = aliased(ReportEvent)
    approved_at = (
        select(func.min(col(approval.at)))
        .where(col(approval.report_id) == col(ReportEvent.report_id), unindexed(col(approval.action)) == "approved")
        .scalar_subquery()
    )
    query = (
        select(seconds_between(approved_at, col(ReportEvent.at)))
        .join_from(ReportEvent, Report, col(Report.id) == col(ReportEvent.report_id))
        .where(
            col(ReportEvent.action) == "crm_status",
            col(ReportEvent.at) >= since,
            col(ReportEvent.at) <= now,
            # A change into "resolved", not a later note on a report already closed.
            after_state == ReportState.RESOLVED.value,
            or_(before_state.is_(None), before_state != ReportState.RESOLVED.value),
        )
    )
    # A report with no approval in its history (older than the history) has no start: NULL, left out.
    return seconds_stats(s for s in db.execute(_scoped(query, scope)).scalars() if s is not None)


# -- everything at once ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows, read at one instant."""

    now: datetime
    arrivals: DailyCounts
    backlog: Backlog
    review: DurationStats
    closure: DurationStats
    open_by_kelurahan: dict[str, int]


def load_dashboard(
    db: Db,
    *,
    scope: ScopeClause,
    now: datetime,
    arrival_days: int = 14,
    duration_days: int = 30,
    agency_names: Mapping[str, str] | None = None,
    unknown_agency: str = "Belum ada instansi",
    unknown_place: str = "Lokasi belum diketahui",
) -> Dashboard:
    """Every figure of the dashboard for one admin's scope. Run it in one read transaction for one snapshot."""
    open_reports = backlog(
        db, scope=scope, now=now, agency_names=agency_names, unknown_agency=unknown_agency, unknown_place=unknown_place
    )
    return Dashboard(
        now=now,
        arrivals=reports_per_channel_per_day(db, scope=scope, now=now, days=arrival_days),
        backlog=open_reports,
        review=time_to_review(db, scope=scope, now=now, days=duration_days),
        closure=time_to_closure(db, scope=scope, now=now, days=duration_days),
        open_by_kelurahan=open_reports.by_kelurahan,
    )


#: The code of the row `top_rows` sums the rest into.
OTHERS_KEY = "*"


def top_rows(rows: Sequence[BacklogRow], limit: int, *, others: str = "{n} lainnya") -> tuple[BacklogRow, ...]:
    """The first `limit` rows, the last of them summing the rest (label `others`) so totals still add up."""
    if len(rows) <= limit:
        return tuple(rows)
    rest = rows[limit - 1 :]
    other = BacklogRow(
        code=OTHERS_KEY,
        label=others.format(n=len(rest)),
        open=sum(r.open for r in rest),
        overdue=sum(r.overdue for r in rest),
    )
    return (*rows[: limit - 1], other)
