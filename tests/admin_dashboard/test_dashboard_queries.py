"""The dashboard's figures on a seeded database, on both engines: arrivals, backlog, medians, scope."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, update
from sqlmodel import col

from adapters.contract import InboundMessage
from crm_client.status_sync import CRMStatus, apply_status
from gateway import migrate
from gateway.db import make_engine, write_connection, write_session
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.taxonomy import load_taxonomy
from review_queue import dashboard, service
from review_queue.history import record_change
from review_queue.tables import Report, ReportEvent, ReportState
from review_queue.workdays import WIB
from tests.support.inbox_rows import normalize_pending, put_message


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WIB).astimezone(UTC)


#: Thursday 20 August 2026, 10:00 WIB.
NOW = wib(2026, 8, 20, 10)
ADMIN, NORMALIZER, CRM = "admin:rina", "system:normalizer", "system:crm"
AGENCIES = {"bina_marga": "Dinas Bina Marga", "sda": "Dinas Sumber Daya Air"}
SELATAN = col(Report.kota_code) == "31.74"


@dataclass(frozen=True)
class Event:
    action: str
    at: datetime
    actor: str = ADMIN
    before: str | None = None  # the report's state before, as the history stores it
    after: str | None = None


def add_report(
    connection: Connection,
    *,
    channel: str = "api:partner",
    received: datetime,
    state: str = ReportState.PENDING_REVIEW,
    kota: str | None = None,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    agency: str | None = None,
    due: datetime | None = None,
    events: Sequence[Event] = (),
) -> str:
    """One report as the normalizer, the reviewers and the CRM leave it, written straight to the tables."""
    delivery, message, ticket = new_id(), new_id(), new_ticket_code()
    connection.execute(
        insert(RawDelivery),
        [{"id": delivery, "channel_id": channel, "received_at": received, "headers": {}, "body": b"{}"}],
    )
    connection.execute(
        insert(InboundMessageRow),
        [
            {
                "id": message,
                "channel_id": channel,
                "external_id": message,
                "ticket_code": ticket,
                "delivery_id": delivery,
                "received_at": received,
                "message": {},
                "state": "normalized",
                "delivery_count": 1,
                "attempts": 1,
            }
        ],
    )
    report = Report(
        ticket_code=ticket,
        channel_id=channel,
        inbound_message_id=message,
        state=state,
        received_at=received,
        created_at=received + timedelta(seconds=20),
        updated_at=received + timedelta(seconds=20),
        text_original="Jalan berlubang",
        text_clean="Jalan berlubang",
        text_masked="Jalan berlubang",
        kota_code=kota,
        kecamatan_code=kecamatan,
        kelurahan_code=kelurahan,
        agency_code=agency,
        sla_due_at=due,
    )
    connection.execute(insert(Report), [report.model_dump()])
    for step in events:
        connection.execute(
            insert(ReportEvent),
            [
                ReportEvent(
                    report_id=report.id,
                    at=step.at,
                    actor=step.actor,
                    action=step.action,
                    before={"state": step.before} if step.before else None,
                    after={"state": step.after} if step.after else None,
                ).model_dump()
            ],
        )
    return report.id


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """Reports around NOW; the comments give what each one adds to which figure."""
    selatan: dict[str, Any] = {"kota": "31.74", "kecamatan": "31.74.01", "kelurahan": "31.74.01.1001"}
    with write_connection(engine) as c:
        # Received 00:30 WIB today (still yesterday in UTC): today's bar. Open, overdue (review).
        add_report(c, received=wib(2026, 8, 20, 0, 30), agency="bina_marga", due=NOW - timedelta(hours=1), **selatan)
        # 23:30 WIB yesterday. Open, deadline tomorrow.
        add_report(
            c,
            received=wib(2026, 8, 19, 23, 30),
            kota="31.71",
            kecamatan="31.71.01",
            kelurahan="31.71.01.1001",
            agency="bina_marga",
            due=NOW + timedelta(days=1),
        )
        # Approved after 1 h, waiting for the CRM past its deadline: open, overdue (follow-up).
        add_report(
            c,
            channel="web_form:balaiwarga",
            received=wib(2026, 8, 18, 12),
            state=ReportState.APPROVED,
            agency="sda",
            due=NOW - timedelta(hours=2),
            events=[Event("approved", wib(2026, 8, 18, 13), before="pending_review", after="approved")],
            **selatan,
        )
        # Approved after 3 h, at the CRM now (a stale deadline the sweeper has not cleared: not overdue).
        add_report(
            c,
            channel="web_form:balaiwarga",
            received=wib(2026, 8, 18, 13),
            state=ReportState.IN_PROGRESS,
            kota="31.74",
            kecamatan="31.74.02",
            kelurahan="31.74.02.1001",
            agency="sda",
            due=NOW - timedelta(days=3),
            events=[
                Event("approved", wib(2026, 8, 18, 16), before="pending_review", after="approved"),
                Event("forwarded", wib(2026, 8, 18, 16, 1), CRM, "approved", "forwarded"),
                Event("crm_status", wib(2026, 8, 19, 9), CRM, "forwarded", "in_progress"),
            ],
        )
        # Rejected after 5 h: not open.
        add_report(
            c,
            received=wib(2026, 8, 18, 9),
            state=ReportState.REJECTED,
            kota="31.71",
            events=[Event("rejected", wib(2026, 8, 18, 14), before="pending_review", after="rejected")],
        )
        # Trusted channel (no review), closed by the CRM 11 days after its approval; a later note too.
        add_report(
            c,
            received=wib(2026, 7, 30, 10),
            state=ReportState.RESOLVED,
            kota="31.74",
            events=[
                Event("approved", wib(2026, 7, 30, 10), NORMALIZER, "pending_review", "approved"),
                Event("crm_status", wib(2026, 8, 1, 10), CRM, "forwarded", "in_progress"),
                Event("crm_status", wib(2026, 8, 10, 10), CRM, "in_progress", "resolved"),
                Event("crm_status", wib(2026, 8, 12, 10), CRM, "resolved", "resolved"),
            ],
        )
        # No place, no agency yet, past its deadline.
        add_report(c, received=wib(2026, 8, 17, 8), due=NOW - timedelta(days=1))
        # The first instant of the 14-day window (00:00 WIB, 7 August); trusted, closed 2 days later.
        add_report(
            c,
            received=wib(2026, 8, 7),
            state=ReportState.RESOLVED,
            kota="31.71",
            events=[
                Event("approved", wib(2026, 8, 7), NORMALIZER, "pending_review", "approved"),
                Event("crm_status", wib(2026, 8, 9), CRM, "forwarded", "resolved"),
            ],
        )
        # One minute before the window: not counted.
        add_report(c, received=wib(2026, 8, 6, 23, 59), state=ReportState.RESOLVED, kota="31.71")
        # First decided (rejected) before the 30-day window; a later approval does not make it a new review.
        add_report(
            c,
            received=wib(2026, 7, 1),
            state=ReportState.RESOLVED,
            kota="31.74",
            events=[
                Event("rejected", wib(2026, 7, 10), before="pending_review", after="rejected"),
                Event("approved", wib(2026, 8, 1), before="rejected", after="approved"),
            ],
        )
    return engine


WINDOW = tuple(date(2026, 8, 7) + timedelta(days=n) for n in range(14))


def per_day(counts: dict[date, int]) -> tuple[int, ...]:
    return tuple(counts.get(day, 0) for day in WINDOW)


def test_reports_per_channel_per_day_counts_wib_days(seeded: Engine) -> None:
    with seeded.connect() as c:
        arrivals = dashboard.reports_per_channel_per_day(c, scope=None, now=NOW, days=14)
    assert arrivals.days == WINDOW
    assert arrivals.by_channel == {
        # 00:30 WIB on the 20th is the 19th in UTC: it counts on the 20th, the day people saw it arrive.
        "api:partner": per_day(
            {
                date(2026, 8, 7): 1,
                date(2026, 8, 17): 1,
                date(2026, 8, 18): 1,
                date(2026, 8, 19): 1,
                date(2026, 8, 20): 1,
            }
        ),
        "web_form:balaiwarga": per_day({date(2026, 8, 18): 2}),
    }
    assert list(arrivals.by_channel) == ["api:partner", "web_form:balaiwarga"], "busiest channel first"
    assert arrivals.total == 7
    assert arrivals.per_day[-3:] == (3, 1, 1)


def test_a_quiet_window_still_has_every_day(seeded: Engine) -> None:
    with seeded.connect() as c:
        arrivals = dashboard.reports_per_channel_per_day(c, scope=None, now=wib(2027, 1, 10, 8), days=3)
    assert arrivals.days == (date(2027, 1, 8), date(2027, 1, 9), date(2027, 1, 10))
    assert (arrivals.by_channel, arrivals.total, arrivals.per_day) == ({}, 0, (0, 0, 0))
    with pytest.raises(ValueError, match="days"):
        dashboard.reports_per_channel_per_day(c, scope=None, now=NOW, days=0)


def test_backlog_by_agency_kota_and_kecamatan(seeded: Engine) -> None:
    with seeded.connect() as c:
        backlog = dashboard.backlog(c, scope=None, now=NOW, agency_names=AGENCIES)
    assert (backlog.open, backlog.overdue) == (5, 3)
    assert [(r.code, r.label, r.open, r.overdue) for r in backlog.by_agency] == [
        ("bina_marga", "Dinas Bina Marga", 2, 1),
        ("sda", "Dinas Sumber Daya Air", 2, 1),
        ("", "Belum ada instansi", 1, 1),
    ]
    assert [(r.code, r.label, r.open, r.overdue) for r in backlog.by_kota] == [
        ("31.74", "Jakarta Selatan", 3, 2),
        ("", "Lokasi belum diketahui", 1, 1),
        ("31.71", "Jakarta Pusat", 1, 0),
    ]
    assert [(r.label, r.open, r.overdue) for r in backlog.by_kecamatan] == [
        ("Tebet", 2, 2),
        ("Lokasi belum diketahui", 1, 1),
        ("Gambir", 1, 0),
        ("Setiabudi", 1, 0),
    ]


def test_open_reports_per_kelurahan(seeded: Engine) -> None:
    with seeded.connect() as c:
        values = dashboard.open_by_kelurahan(c, scope=None)
    assert values == {"31.74.01.1001": 2, "31.74.02.1001": 1, "31.71.01.1001": 1}
    with seeded.connect() as c:
        assert dashboard.backlog(c, scope=None, now=NOW).by_kelurahan == values, "the same counts from one pass"


def test_median_time_to_review_counts_admins_first_decision_in_the_window(seeded: Engine) -> None:
    with seeded.connect() as c:
        review = dashboard.time_to_review(c, scope=None, now=NOW, days=30)
    # 1 h, 3 h (approved) and 5 h (rejected); the trusted approvals and the report first decided in
    # July are not reviews of this window.
    assert review == dashboard.DurationStats(count=3, median=timedelta(hours=3), p90=timedelta(hours=5))


def test_median_time_to_closure_from_approval_to_resolved(seeded: Engine) -> None:
    with seeded.connect() as c:
        closure = dashboard.time_to_closure(c, scope=None, now=NOW, days=30)
    # 11 days and 2 days: the median of two is their mean. The later "resolved -> resolved" note is no closure.
    assert closure == dashboard.DurationStats(count=2, median=timedelta(days=6, hours=12), p90=timedelta(days=11))
    with seeded.connect() as c:
        assert dashboard.time_to_closure(c, scope=None, now=NOW, days=5) == dashboard.DurationStats()


def test_every_figure_follows_the_scope(seeded: Engine) -> None:
    with seeded.connect() as c:
        board = dashboard.load_dashboard(c, scope=SELATAN, now=NOW, agency_names=AGENCIES)
    assert board.arrivals.by_channel == {
        "web_form:balaiwarga": per_day({date(2026, 8, 18): 2}),
        "api:partner": per_day({date(2026, 8, 20): 1}),
    }
    assert (board.backlog.open, board.backlog.overdue) == (3, 2)
    assert [r.code for r in board.backlog.by_kota] == ["31.74"]
    assert [(r.code, r.open, r.overdue) for r in board.backlog.by_agency] == [("sda", 2, 1), ("bina_marga", 1, 1)]
    assert board.open_by_kelurahan == {"31.74.01.1001": 2, "31.74.02.1001": 1}
    assert board.review == dashboard.DurationStats(count=2, median=timedelta(hours=2), p90=timedelta(hours=3))
    assert board.closure == dashboard.DurationStats(count=1, median=timedelta(days=11), p90=timedelta(days=11))


def test_a_scope_by_channel_works_the_same(seeded: Engine) -> None:
    web_form = col(Report.channel_id) == "web_form:balaiwarga"
    with seeded.connect() as c:
        board = dashboard.load_dashboard(c, scope=web_form, now=NOW)
    assert list(board.arrivals.by_channel) == ["web_form:balaiwarga"]
    assert (board.backlog.open, board.backlog.overdue) == (2, 1)
    assert board.review.count == 2 and board.closure.count == 0


# -- the history as the real code writes it ----------------------------------------------------------


def test_durations_read_the_history_the_review_and_status_code_writes(engine: Engine) -> None:
    """Approve through the service and close through status sync, then move the clock of each row."""
    channels = {"api:partner": ChannelConfig(type="api")}
    received = wib(2026, 8, 17, 9)
    text = "Jalan berlubang besar di Jl. Kramat Raya depan halte, kel. Kenari kec. Senen."
    ticket = put_message(engine, "api:partner", InboundMessage(external_id="d-1", text=text), received_at=received)
    assert normalize_pending(engine, channels=channels) == 1
    with write_session(engine) as session:
        report = service.approve(
            session, key=ticket, actor="admin:rina", crm=CRMConfig(), taxonomy=load_taxonomy(), version=None
        )
        record_change(
            session, report, actor=CRM, action="forwarded", state=ReportState.FORWARDED, crm_service_request_id="SR-9"
        )
        for word in ("Proses", "Selesai"):
            status = CRMStatus("SR-9", crm_status=word, open311_status=None, notes=f"{word}.", updated_at=None)
            assert apply_status(session, report, status, source="test")
        session.flush()
        report_id = report.id
        for action, at in (("approved", wib(2026, 8, 17, 11)), ("crm_status", wib(2026, 8, 19, 11))):
            session.execute(
                update(ReportEvent)
                .where(col(ReportEvent.report_id) == report_id, col(ReportEvent.action) == action)
                .values(at=at)
            )
    with engine.connect() as c:
        review = dashboard.time_to_review(c, scope=None, now=NOW)
        closure = dashboard.time_to_closure(c, scope=None, now=NOW)
        backlog = dashboard.backlog(c, scope=None, now=NOW)
    assert (review.count, review.median) == (1, timedelta(hours=2))
    # Both status rows were moved to the same instant; only the one into "resolved" is the closure.
    assert (closure.count, closure.median) == (1, timedelta(days=2))
    assert backlog.open == 0


def test_duration_stats_on_known_numbers() -> None:
    hours = [timedelta(hours=h) for h in (4, 1, 3, 2)]
    stats = dashboard.duration_stats(hours)
    assert (stats.count, stats.median, stats.p90) == (4, timedelta(hours=2, minutes=30), timedelta(hours=4))
    assert dashboard.duration_stats([timedelta(minutes=-5)]).median == timedelta(0), "clock skew is not negative time"
    assert dashboard.duration_stats([]) == dashboard.DurationStats()
    ten = dashboard.duration_stats(timedelta(minutes=m) for m in range(1, 11))
    assert (ten.median, ten.p90) == (timedelta(minutes=5, seconds=30), timedelta(minutes=9))


def test_top_rows_keeps_totals() -> None:
    rows = [dashboard.BacklogRow(code=f"a{n}", label=f"A{n}", open=10 - n, overdue=n % 2) for n in range(6)]
    top = dashboard.top_rows(rows, 4)
    assert [r.label for r in top] == ["A0", "A1", "A2", "3 lainnya"]
    assert sum(r.open for r in top) == sum(r.open for r in rows)
    assert sum(r.overdue for r in top) == sum(r.overdue for r in rows)
    assert dashboard.top_rows(rows[:3], 4) == tuple(rows[:3])


def test_a_report_closed_again_after_reopening_counts_at_each_closure(engine: Engine) -> None:
    with write_connection(engine) as c:
        add_report(
            c,
            received=wib(2026, 8, 1, 9),
            state=ReportState.RESOLVED,
            events=[
                Event("approved", wib(2026, 8, 1, 10), before="pending_review", after="approved"),
                Event("crm_status", wib(2026, 8, 3, 10), CRM, "forwarded", "resolved"),
                Event("crm_status", wib(2026, 8, 4, 10), CRM, "resolved", "in_progress"),
                Event("crm_status", wib(2026, 8, 7, 10), CRM, "in_progress", "resolved"),
            ],
        )
    with engine.connect() as c:
        closure = dashboard.time_to_closure(c, scope=None, now=NOW)
    assert (closure.count, closure.median) == (2, timedelta(days=4))


# -- query plans on SQLite ---------------------------------------------------------------------------

#: sqlite_stat1 as ANALYZE writes it for a history of a million reports (from bench/dashboard.py's
#: data): what an operator who runs ANALYZE gives the planner. Without it SQLite guesses.
STATS_1M = {
    ("report", "ix_report_state"): "1000000 166667",
    ("report", "ix_report_channel_id"): "1000000 142857",
    ("report", "ix_report_agency_code"): "1000000 45460",
    ("report", "ix_report_kota_code"): "1000000 142857",
    ("report", "ix_report_kecamatan_code"): "1000000 22230",
    ("report", "ix_report_kelurahan_code"): "1000000 3740",
    ("report", "ix_report_created_at"): "1000000 1",
    ("report_event", "ix_report_event_report_id"): "4600000 5",
    ("report_event", "ix_report_event_action_at"): "4600000 766667 1",
}


@pytest.mark.parametrize("scoped", [False, True], ids=["everything", "one_kota"])
@pytest.mark.parametrize("statistics", [False, True], ids=["no_statistics", "after_analyze"])
def test_sqlite_reads_only_the_window_and_the_open_reports(tmp_path: Path, statistics: bool, scoped: bool) -> None:
    """Each figure goes through the index that bounds it by recent traffic, never a walk of the history.

    SQLite's planner prefers walking a whole index that yields the GROUP BY order over a range plus a
    sort, and without statistics it may serve a per-report subquery from the (action, at) index:
    both turned 20 ms queries into seconds at 100,000 reports (bench/dashboard.py).
    """
    scope = SELATAN if scoped else None
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.sqlite3'}")
    migrate.upgrade(engine)
    with write_connection(engine) as c:
        # The index the dashboard asks for (ix_report_event_action_at), as its migration will make it.
        c.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_report_event_action_at ON report_event (action, at)")
        if statistics:
            c.exec_driver_sql("ANALYZE")
            c.exec_driver_sql("DELETE FROM sqlite_stat1")
            for (table, index), stat in STATS_1M.items():
                c.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (table, index, stat))
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    def plan(run: Any) -> str:
        statements.clear()
        with engine.connect() as c:
            c.exec_driver_sql("ANALYZE sqlite_schema")  # (re)load the statistics above
            run(c)
            statement, parameters = statements[-1]
            return "\n".join(row[3] for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))

    arrivals = plan(lambda c: dashboard.reports_per_channel_per_day(c, scope=scope, now=NOW))
    # A kota scope is a fifth of all history: it filters, the window drives.
    assert "ix_report_created_at (created_at>? AND created_at<?)" in arrivals, arrivals
    open_reports: list[Callable[[Connection], object]] = [
        lambda c: dashboard.backlog(c, scope=scope, now=NOW),
        lambda c: dashboard.open_by_kelurahan(c, scope=scope),
    ]
    for run in open_reports:
        read = plan(run)
        # Any index that starts with state (ix_report_state, the queue's ix_report_queue) reads the open ones.
        assert re.search(r"SEARCH report USING (COVERING )?INDEX \w+ \(state=\?\)", read), read
    durations: list[Callable[[Connection], object]] = [
        lambda c: dashboard.time_to_review(c, scope=scope, now=NOW),
        lambda c: dashboard.time_to_closure(c, scope=scope, now=NOW),
    ]
    for run in durations:
        lines = plan(run).splitlines()
        assert "ix_report_event_action_at (action=? AND at>? AND at<?)" in lines[0], lines
        subqueries = [line for line in lines[1:] if "report_event" in line and "SEARCH" in line]
        assert subqueries and all("ix_report_event_report_id (report_id=?)" in s for s in subqueries), lines
    engine.dispose()
