"""Nothing hangs: working days, SLA rules, the sweeper, the overdue-first list and `kanal sla report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from adapters.contract import InboundMessage
from crm_sim.server import RunningCRMSim
from gateway import migrate
from gateway.db import make_engine, write_session
from gateway.settings import ChannelConfig, CRMConfig, SLAConfig
from normalizer.taxonomy import load_taxonomy
from review_queue import service, sla
from review_queue.auth import create_admin
from review_queue.history import record_change
from review_queue.tables import AdminNotification, AdminRole, Report, ReportEvent, ReportState
from review_queue.workdays import WIB, HolidayFileError, WorkCalendar, load_calendar
from tests.conftest import base_settings
from tests.support.inbox_rows import normalize_pending, put_message
from tests.support.servers import RunningGateway

CALENDAR = load_calendar()
REPO = Path(__file__).resolve().parent.parent


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WIB).astimezone(UTC)


# -- the calendar ------------------------------------------------------------------------------


def test_one_working_day_from_friday_is_due_at_the_end_of_monday() -> None:
    friday = wib(2026, 8, 7, 10)
    assert CALENDAR.add_working_days(friday, 1) == wib(2026, 8, 11)  # 24:00 Monday 10 August
    assert CALENDAR.add_working_days(wib(2026, 8, 8, 9), 1) == wib(2026, 8, 11), "Saturday counts from Monday"
    assert CALENDAR.working_days_between(friday, wib(2026, 8, 10, 23, 59)) == 1


def test_independence_day_monday_is_skipped() -> None:
    # 17 August 2026 is a Monday and Hari Kemerdekaan: a Friday report is due at the end of Tuesday.
    friday = wib(2026, 8, 14, 10)
    assert not CALENDAR.is_working_day(wib(2026, 8, 17, 12).astimezone(WIB).date())
    assert CALENDAR.add_working_days(friday, 1) == wib(2026, 8, 19)
    assert CALENDAR.working_days_between(friday, wib(2026, 8, 18, 9)) == 1
    assert WorkCalendar().add_working_days(friday, 1) == wib(2026, 8, 18), "without holidays Monday would count"


def test_lebaran_cuti_bersama_is_skipped() -> None:
    # 2026: cuti bersama 18, 20, 23, 24 March, Nyepi 19 March, Idul Fitri 21-22 March.
    tuesday = wib(2026, 3, 17, 15)
    assert CALENDAR.add_working_days(tuesday, 1) == wib(2026, 3, 26)  # end of Wednesday 25 March
    assert CALENDAR.working_days_between(tuesday, wib(2026, 3, 24, 23)) == 0


def test_a_broken_holiday_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "libur.yaml"
    bad.write_text("years:\n  2026:\n    - {date: 2027-01-01, name: Tahun Baru, kind: libur}\n", encoding="utf-8")
    with pytest.raises(HolidayFileError, match=r"libur\.yaml: .*years\.2026\.0\.date: 2027-01-01 is not in 2026"):
        load_calendar(bad)
    bad.write_text("years:\n  2026:\n    - {date: 2026-01-01, name: Tahun Baru, kind: libur_nasional}\n")
    with pytest.raises(HolidayFileError, match=r"libur\.yaml: years\.2026\.0\.kind"):
        load_calendar(bad)


def test_the_shipped_holiday_list_covers_2025_to_2027() -> None:
    assert {2025, 2026, 2027} <= CALENDAR.years


# -- rules -------------------------------------------------------------------------------------


def _facts(state: str, *, channel_type: str = "api", category: str | None = None, **times: datetime) -> sla.ReportFacts:
    return sla.ReportFacts(
        channel_id=f"{channel_type}:x",
        channel_type=channel_type,
        category_code=category,
        state=state,
        received_at=times.get("received_at", wib(2026, 8, 3, 9)),
        approved_at=times.get("approved_at"),
        info_requested_at=times.get("info_requested_at"),
    )


def test_default_follow_up_is_seven_days_red_after_six() -> None:
    approved = wib(2026, 8, 3, 10)
    facts = _facts("forwarded", approved_at=approved)
    config = SLAConfig()
    assert sla.evaluate(facts, config, CALENDAR, approved + timedelta(days=5)).level == sla.Level.GREEN
    red = sla.evaluate(facts, config, CALENDAR, approved + timedelta(days=6, hours=1))
    assert (red.level, red.due_at, red.next_at) == (sla.Level.RED, approved + timedelta(days=7), red.due_at)
    late = sla.evaluate(facts, config, CALENDAR, approved + timedelta(days=7))
    assert (late.stage, late.level, late.overdue_since) == ("follow_up", sla.Level.OVERDUE, late.due_at)


def test_lapor_has_three_working_days_to_verify_and_five_to_follow_up() -> None:
    friday = wib(2026, 8, 14, 10)
    review = sla.evaluate(
        _facts("pending_review", channel_type="lapor", received_at=friday), SLAConfig(), CALENDAR, friday
    )
    # Working days after Friday 14 August: Tue 18, Wed 19, Thu 20 (Monday 17 is a holiday).
    assert (review.rule, review.due_at) == ("lapor", wib(2026, 8, 21))
    follow = sla.evaluate(_facts("approved", channel_type="lapor", approved_at=friday), SLAConfig(), CALENDAR, friday)
    assert follow.due_at == wib(2026, 8, 25), "Tue 18 .. Mon 24 August"
    other = sla.evaluate(_facts("pending_review", received_at=friday), SLAConfig(), CALENDAR, friday)
    assert (other.rule, other.due_at) == ("default", wib(2026, 8, 19))


def test_the_first_matching_rule_wins_and_a_stage_it_leaves_out_falls_through() -> None:
    config = SLAConfig.model_validate(
        {
            "rules": [
                {"name": "banjir", "match": {"categories": ["banjir"]}, "review": {"within": 0}},
                {"name": "walk-in", "match": {"channel_types": ["walk_in"]}, "review": {"within": 2}},
                {"name": "walk-in banjir", "match": {"channel_types": ["walk_in"]}, "follow_up": {"within": 3}},
            ]
        }
    )
    pick = sla.choose_limit
    assert pick(config, "review", channel_id="walk_in:a", channel_type="walk_in", category_code="banjir")[0] == "banjir"
    assert pick(config, "review", channel_id="walk_in:a", channel_type="walk_in", category_code="jalan")[0] == "walk-in"
    assert pick(config, "follow_up", channel_id="walk_in:a", channel_type="walk_in", category_code="banjir")[0] == (
        "walk-in banjir"
    )
    assert pick(config, "review", channel_id="api:p", channel_type="api", category_code=None)[0] == "default"


def test_limits_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="yellow_after <= red_after <= within"):
        SLAConfig.Limit(within=7, unit="days", red_after=8)


def test_rejected_and_crm_moved_reports_have_no_clock() -> None:
    for state in ("rejected", "in_progress", "resolved"):
        assert sla.evaluate(_facts(state), SLAConfig(), CALENDAR, wib(2026, 9, 1)) == sla.SLAStatus()


# -- the sweeper, on both engines ------------------------------------------------------------------

#: Thursday 6 August 2026, 09:00 WIB: received; approved at 11:00 the same day; forwarded at 11:05.
RECEIVED = wib(2026, 8, 6, 9)
APPROVED = wib(2026, 8, 6, 11)
POTHOLE = "Jalan berlubang besar di Jl. Kramat Raya depan halte, kel. Kenari kec. Senen. Bahaya buat motor."
CHANNELS = {"api:partner": ChannelConfig(type="api")}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _report(engine: Engine, text: str = POTHOLE, *, received_at: datetime = RECEIVED, n: int = 1) -> str:
    message = InboundMessage(external_id=f"sla-{n}", text=text)
    ticket = put_message(engine, "api:partner", message, received_at=received_at)
    assert normalize_pending(engine, channels=CHANNELS) == 1
    return ticket


def _approve_and_forward(engine: Engine, ticket: str, *, at: datetime = APPROVED) -> None:
    """Approve as an admin and record the CRM's acceptance; the history says it happened `at`."""
    with write_session(engine) as session:
        report = service.approve(
            session, key=ticket, actor="admin:rina", crm=CRMConfig(), taxonomy=load_taxonomy(), version=None
        )
        record_change(
            session,
            report,
            actor="system:crm",
            action="forwarded",
            state=ReportState.FORWARDED,
            crm_service_request_id="SR-1",
        )
        session.flush()
        session.execute(
            update(ReportEvent)
            .where(col(ReportEvent.report_id) == report.id, col(ReportEvent.action).in_(["approved", "forwarded"]))
            .values(at=at)
        )


def _get(engine: Engine, ticket: str) -> Report:
    with Session(engine) as session:
        return service.get_report(session, ticket)


def _events(engine: Engine, report_id: str, action: str) -> list[ReportEvent]:
    with Session(engine) as session:
        query = select(ReportEvent).where(col(ReportEvent.report_id) == report_id, col(ReportEvent.action) == action)
        return list(session.execute(query).scalars())


def test_a_forwarded_report_without_crm_movement_goes_overdue_once(engine: Engine) -> None:
    rina = create_admin(engine, username="rina", password="correct-horse-battery", role=AdminRole.REVIEWER)
    create_admin(engine, username="vera", password="correct-horse-battery", role=AdminRole.VIEWER)
    ticket = _report(engine)
    _approve_and_forward(engine, ticket)
    config = SLAConfig()

    sla.sweep(engine, config, channels=CHANNELS, now=APPROVED + timedelta(days=6, hours=2))
    report = _get(engine, ticket)
    assert (report.sla_stage, report.sla_level) == ("follow_up", "red")
    assert report.sla_due_at == APPROVED + timedelta(days=7)
    assert _events(engine, report.id, "overdue") == []

    late = APPROVED + timedelta(days=8)
    first = sla.sweep(engine, config, channels=CHANNELS, now=late)
    again = sla.sweep(engine, config, channels=CHANNELS, now=late + timedelta(hours=1), since=None)
    report = _get(engine, ticket)
    assert (report.sla_level, report.overdue_since) == ("overdue", APPROVED + timedelta(days=7))
    assert (first.newly_overdue, again.newly_overdue) == (1, 0)
    [event] = _events(engine, report.id, "overdue")
    assert event.actor == "system:sla" and event.after is not None and event.after["sla_stage"] == "follow_up"
    with Session(engine) as session:
        notes = list(session.execute(select(AdminNotification)).scalars())
    assert [(n.admin_id, n.report_id, n.kind) for n in notes] == [(rina.id, report.id, "overdue")], "viewers can't act"
    assert ticket in notes[0].message and "WIB" in notes[0].message
    assert report.version == 3, "the sweeper never bumps the version an admin's edit is checked against"

    grouped = sla.overdue_reports(engine, now=late, calendar=CALENDAR)
    [(agency, [row])] = grouped.items()
    assert row.ticket_code == ticket and agency.startswith(report.agency_code or "unassigned")
    assert (row.age_days, row.age_working_days) == (8, 6)  # received Thu 6 August; Fri 7, Mon 10 .. Fri 14


def test_a_report_waiting_for_review_goes_overdue_after_one_working_day(engine: Engine) -> None:
    ticket = _report(engine, received_at=wib(2026, 8, 14, 16))  # Friday before Independence Day
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 18, 23))
    assert _get(engine, ticket).sla_level == "green", "Monday 17 August is a holiday: due end of Tuesday"
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 19, 0, 1))
    report = _get(engine, ticket)
    assert (report.sla_stage, report.sla_level) == ("review", "overdue")
    assert len(_events(engine, report.id, "overdue")) == 1


def test_a_restart_recomputes_the_same_answer(engine: Engine) -> None:
    ticket = _report(engine)
    _approve_and_forward(engine, ticket)
    late = APPROVED + timedelta(days=9)
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=late)
    before = _get(engine, ticket)
    with write_session(engine) as session:  # as if the columns were lost: only the history remains
        session.execute(update(Report).values(sla_level=None, sla_due_at=None, sla_version=None, sla_stage=None))
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=late)
    after = _get(engine, ticket)
    assert (after.sla_stage, after.sla_due_at, after.sla_level) == (before.sla_stage, before.sla_due_at, "overdue")
    assert len(_events(engine, after.id, "overdue")) == 1


def test_sla_report_command_lists_overdue_reports_by_agency(tmp_path: Path) -> None:
    database = tmp_path / "kanal.sqlite3"
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    ticket = _report(engine)
    _approve_and_forward(engine, ticket)
    unassigned = _report(engine, "tolong", received_at=wib(2026, 8, 3, 9), n=2)
    with write_session(engine) as session:  # one the normalizer could not route to an agency
        session.execute(
            update(Report).where(col(Report.ticket_code) == unassigned).values(agency_code=None, agency_unit=None)
        )
    engine.dispose()
    env = {**os.environ, "KANAL_DATABASE_URL": url, "KANAL_CONFIG_DIR": str(REPO / "config")}

    def kanal(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway.cli", "sla", "report", *args]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    # The real clock is long past August 2026; --sweep does what the running workers do each minute.
    answer = kanal("--sweep")
    assert answer.returncode == 0, answer.stderr
    assert ticket in answer.stdout and unassigned in answer.stdout
    assert "unassigned (1)" in answer.stdout and "WIB" in answer.stdout
    assert answer.stdout.index(unassigned) < answer.stdout.index(ticket), "oldest first"
    groups = [json.loads(line) for line in kanal("--json").stdout.splitlines()]
    by_ticket = {r["ticket_code"]: (g["agency"], r) for g in groups for r in g["reports"]}
    assert by_ticket[unassigned][0] == "unassigned" and by_ticket[ticket][1]["stage"] == "follow_up"
    assert by_ticket[ticket][1]["due_at"].endswith("+07:00")


def test_sla_report_says_what_to_do_when_the_database_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "KANAL_DATABASE_URL": f"sqlite:///{tmp_path}/none.sqlite3"}
    command = [sys.executable, "-m", "gateway.cli", "sla", "report"]
    answer = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert answer.returncode == 1
    assert "cannot read the database" in answer.stderr and "kanal db upgrade" in answer.stderr


# -- the review list, overdue first -----------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim) -> dict[str, Any]:
    """No workers: the test normalizes and sweeps itself, at the instants it chooses."""
    config = base_settings(database_url, crm.base_url)
    config["workers"]["enabled"] = False
    return config


def test_the_review_list_shows_overdue_reports_first(
    gateway: RunningGateway, http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    engine = gateway.runtime.engine
    approved = _report(engine, received_at=wib(2026, 8, 10, 9), n=1)  # follow-up due Mon 17 August 10:00
    _approve_and_forward(engine, approved, at=wib(2026, 8, 10, 10))
    late = _report(engine, "Lampu jalan mati di Jl. Salemba Raya", received_at=wib(2026, 8, 11, 9), n=2)
    later = _report(engine, "Sampah menumpuk di pinggir kali Ciliwung", received_at=wib(2026, 8, 12, 9), n=3)
    fresh = _report(engine, "Pohon tumbang menutup jalan di Cikini", received_at=wib(2026, 8, 13, 9), n=4)
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 14, 8))

    by_age = http.get("/api/v1/reports", headers=admin_headers).json()["items"]
    assert [r["ticket_code"] for r in by_age] == [approved, late, later, fresh], "the default stays oldest first"
    seen: list[tuple[str, str]] = []
    params: dict[str, Any] = {"order": "overdue", "limit": 1}
    while True:
        page = http.get("/api/v1/reports", params=params, headers=admin_headers).json()
        seen += [(r["ticket_code"], r["sla_level"]) for r in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [(late, "overdue"), (later, "overdue"), (fresh, "green"), (approved, "green")]
    overdue = http.get("/api/v1/reports", params={"sla_level": "overdue"}, headers=admin_headers).json()["items"]
    assert [r["ticket_code"] for r in overdue] == [late, later]
    assert overdue[0]["sla_due_at"].startswith("2026-08-12T17:00:00"), "end of Wed 12 August WIB, in UTC"
    bad = http.get("/api/v1/reports", params={"order": "overdue", "cursor": "nope"}, headers=admin_headers)
    assert bad.status_code == 400


# -- waiting for the citizen (issue 6: "ask for info") ------------------------------------------


def _ask_citizen(engine: Engine, ticket: str, *, at: datetime) -> None:
    """An admin asked the citizen for what is missing; the history says it happened `at`."""
    with write_session(engine) as session:
        report = service.get_report(session, ticket, for_update=True)
        record_change(session, report, actor="admin:rina", action="info_requested", state=ReportState.NEEDS_INFO)
        session.flush()
        session.execute(
            update(ReportEvent)
            .where(col(ReportEvent.report_id) == report.id, col(ReportEvent.action) == "info_requested")
            .where(col(ReportEvent.at) > at)
            .values(at=at)
        )


def test_a_question_the_citizen_never_answers_goes_overdue_five_working_days_after_it_was_asked(
    engine: Engine,
) -> None:
    ticket = _report(engine, received_at=wib(2026, 8, 3, 9))
    asked = wib(2026, 8, 12, 10)  # Wednesday; Monday 17 August is Independence Day
    _ask_citizen(engine, ticket, at=asked)

    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 19, 12))
    waiting = _get(engine, ticket)
    assert (waiting.sla_stage, waiting.sla_started_at, waiting.sla_level) == ("citizen_answer", asked, "green")
    assert waiting.sla_due_at == wib(2026, 8, 21), "Thu 13, Fri 14, Tue 18, Wed 19 and Thu 20 August"

    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 20, 12))
    assert _get(engine, ticket).sla_level == "red", "the last day"
    sla.sweep(engine, SLAConfig(), channels=CHANNELS, now=wib(2026, 8, 21, 0, 5))
    late = _get(engine, ticket)
    assert (late.state, late.sla_level) == ("needs_info", "overdue"), "still waiting, now first in the queue"
    [event] = _events(engine, late.id, "overdue")
    assert event.after is not None and event.after["sla_stage"] == "citizen_answer"
    assert event.note is not None and "citizen's answer" in event.note


def test_asking_again_restarts_the_citizens_clock() -> None:
    first, second = wib(2026, 8, 3, 10), wib(2026, 8, 10, 10)
    facts = _facts("needs_info", received_at=wib(2026, 8, 1, 9), info_requested_at=second)
    status = sla.evaluate(facts, SLAConfig(), CALENDAR, second + timedelta(hours=1))
    assert (status.stage, status.started_at, status.level) == ("citizen_answer", second, sla.Level.GREEN)
    assert status.due_at is not None and status.due_at > first + timedelta(days=7)


def test_overdue_notices_go_only_to_admins_whose_scope_holds_the_report(engine: Engine) -> None:
    ticket = _report(engine)
    kelurahan = _get(engine, ticket).kelurahan_code
    assert kelurahan is not None, "the complaint names its kelurahan"
    elsewhere = "31.71.01.1001" if kelurahan != "31.71.01.1001" else "31.71.01.1002"
    own = create_admin(
        engine,
        username="lurah.here",
        password="correct-horse-battery",
        role=AdminRole.WILAYAH_ADMIN,
        scope_wilayah=[kelurahan],
    )
    create_admin(
        engine,
        username="lurah.there",
        password="correct-horse-battery",
        role=AdminRole.WILAYAH_ADMIN,
        scope_wilayah=[elsewhere],
    )
    boss = create_admin(engine, username="boss", password="correct-horse-battery", role=AdminRole.SUPERADMIN)
    config = SLAConfig(notify_roles=["superadmin", "wilayah_admin"])

    sla.sweep(engine, config, channels=CHANNELS, now=RECEIVED + timedelta(days=10))

    with Session(engine) as session:
        told = {n.admin_id for n in session.execute(select(AdminNotification)).scalars()}
    assert told == {own.id, boss.id}, "the other kelurahan's admin cannot open this report, so is not told"
