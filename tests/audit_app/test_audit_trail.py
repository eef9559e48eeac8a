"""Reading the audit trail: scope, filters, key paging across both tables, the indexes (both engines)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from gateway import migrate
from gateway.db import make_engine, read_session
from gateway.schema import metadata
from review_queue import audit_export
from review_queue.audit_export import AuditFilter, Position, changes_between, iter_entries, read_page
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, AdminUser
from tests.admin.support import GAMBIR, MENTENG, add_report
from tests.audit_app.support import T0, add_event, add_log


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _admins(engine: Engine) -> tuple[AdminUser, AdminUser, AdminUser]:
    boss = create_admin(engine, username="kepala", password="x" * 12, role=AdminRole.SUPERADMIN)
    gambir = create_admin(
        engine, username="gambir", password="x" * 12, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[GAMBIR]
    )
    viewer = create_admin(engine, username="vera", password="x" * 12, role=AdminRole.VIEWER, scope_wilayah=[MENTENG])
    return boss, gambir, viewer


def _page(engine: Engine, reader: AdminUser, filters: AuditFilter | None = None, limit: int = 100) -> list[str]:
    with read_session(engine) as session:
        page = read_page(session, reader, filters or AuditFilter(), after=None, limit=limit)
    return [f"{e.action}:{e.actor}:{e.ticket_code or e.target or ''}" for e in page.entries]


def test_each_reader_sees_their_scope_and_their_own_sign_ins(engine: Engine) -> None:
    boss, gambir, viewer = _admins(engine)
    here = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    there = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=MENTENG)
    add_event(engine, here.id, actor="admin:gambir", action="personal_data_opened", at=T0)
    add_event(engine, there.id, actor="admin:kepala", action="approved", at=T0 + timedelta(minutes=1))
    add_log(engine, actor_id=gambir.id, actor_name="gambir", action="login", at=T0 + timedelta(minutes=2))
    add_log(engine, actor_id=boss.id, actor_name="kepala", action="login", at=T0 + timedelta(minutes=3))
    add_log(  # someone guessing gambir's password: gambir should know
        engine,
        actor_id=None,
        actor_name="anonymous",
        action="login_failed",
        target_type="admin_user",
        target_id=gambir.id,
        detail={"username": "gambir", "reason": "wrong_password"},
        at=T0 + timedelta(minutes=4),
        ip="203.0.113.5",
    )
    add_log(  # a future helper's row about a report
        engine,
        actor_id=boss.id,
        actor_name="kepala",
        action="reassigned",
        target_type="report",
        target_id=there.id,
        at=T0 + timedelta(minutes=5),
    )
    add_log(engine, actor_id=None, actor_name="anonymous", action="login_failed", at=T0 + timedelta(minutes=6))

    assert _page(engine, boss) == [
        "login_failed:anonymous:",
        f"reassigned:kepala:{there.ticket_code}",
        f"login_failed:anonymous:admin_user:{gambir.id}",
        "login:kepala:",
        "login:gambir:",
        f"approved:kepala:{there.ticket_code}",
        f"personal_data_opened:gambir:{here.ticket_code}",
    ]
    assert _page(engine, gambir) == [
        f"login_failed:anonymous:admin_user:{gambir.id}",
        "login:gambir:",
        f"personal_data_opened:gambir:{here.ticket_code}",
    ]
    assert _page(engine, viewer) == [f"reassigned:kepala:{there.ticket_code}", f"approved:kepala:{there.ticket_code}"]

    with read_session(engine) as session:
        seen_by_gambir = read_page(session, gambir, AuditFilter(), after=None, limit=10).entries
        seen_by_viewer = read_page(session, viewer, AuditFilter(), after=None, limit=10).entries
    assert seen_by_gambir[0].ip == "203.0.113.5", "failed sign-ins on one's own account show where from"
    assert seen_by_viewer[0].ip is None, "another admin's address is for superadmins"


def test_filters_combine(engine: Engine) -> None:
    boss, _gambir, _viewer = _admins(engine)
    one = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    two = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    add_event(engine, one.id, actor="system:normalizer", action="created", at=T0)
    add_event(engine, one.id, actor="admin:kepala", action="personal_data_opened", at=T0 + timedelta(hours=1))
    add_event(engine, two.id, actor="admin:kepala", action="personal_data_opened", at=T0 + timedelta(days=1))
    add_log(engine, actor_id=boss.id, actor_name="kepala", action="login", at=T0 + timedelta(minutes=30))

    assert _page(engine, boss, AuditFilter(actor="kepala")) == [
        f"personal_data_opened:kepala:{two.ticket_code}",
        f"personal_data_opened:kepala:{one.ticket_code}",
        "login:kepala:",
    ]
    assert _page(engine, boss, AuditFilter(actor="admin:kepala", action="login")) == ["login:kepala:"]
    assert _page(engine, boss, AuditFilter(actor="system:normalizer")) == [
        f"created:system:normalizer:{one.ticket_code}"
    ]
    assert _page(engine, boss, AuditFilter(report_id=one.id, action="personal_data_opened")) == [
        f"personal_data_opened:kepala:{one.ticket_code}"
    ]
    day = AuditFilter(since=T0 + timedelta(minutes=10), until=T0 + timedelta(hours=2))
    assert _page(engine, boss, day) == [f"personal_data_opened:kepala:{one.ticket_code}", "login:kepala:"]


def test_key_paging_walks_both_tables_without_gaps_or_repeats(engine: Engine) -> None:
    boss, _gambir, _viewer = _admins(engine)
    report = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    expected: list[str] = []
    for i in range(23):
        # Many rows share a time, in both tables: the order must still be total.
        at = T0 + timedelta(seconds=i // 4)
        expected.append(add_event(engine, report.id, actor="admin:kepala", action="edited", at=at))
        if i % 3 == 0:
            expected.append(add_log(engine, actor_id=boss.id, actor_name="kepala", action="login", at=at))
    walked: list[str] = []
    after: Position | None = None
    pages = 0
    while True:
        with read_session(engine) as session:
            page = read_page(session, boss, AuditFilter(), after=after, limit=4)
        walked.extend(e.id for e in page.entries)
        pages += 1
        if page.next is None:
            break
        after = Position.decode(page.next.encode())
    assert sorted(walked) == sorted(expected) and len(walked) == len(set(walked))
    with read_session(engine) as session:
        everything = read_page(session, boss, AuditFilter(), after=None, limit=1000).entries
    assert walked == [e.id for e in everything], "pages continue exactly where the last one stopped"
    assert [e.at for e in everything] == sorted((e.at for e in everything), reverse=True)
    assert pages == -(-len(expected) // 4)


def test_the_export_reads_in_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    boss, _gambir, _viewer = _admins(engine)
    report = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    for i in range(7):
        add_event(engine, report.id, actor="admin:kepala", action="edited", at=T0 + timedelta(seconds=i))
    calls: list[int] = []
    real = audit_export.read_page

    def counting(*args: object, **kwargs: object) -> audit_export.AuditPage:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit_export, "read_page", counting)
    entries = iter_entries(engine, boss, AuditFilter(), batch=3)
    first = [next(entries) for _ in range(4)]
    assert len(calls) == 2, "only the batches needed so far were read"
    assert len(first) + len(list(entries)) == 7 and len(calls) == 3


def test_what_changed() -> None:
    assert [(c.field, c.before, c.after) for c in changes_between({"state": "a", "x": 1}, {"state": "b", "x": 1})] == [
        ("state", "a", "b")
    ]
    created = changes_between(None, {"state": "pending_review", "reject_reason": None, "text_masked": ""})
    assert [c.field for c in created] == ["state"], "a new report lists the fields it was given"


def test_the_indexes_the_page_needs_exist_and_are_used(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
        assert [d for d in differences if "report_event" in repr(d)] == [], "migration 0013 and the models disagree"
        query = audit_export._report_event_query(
            AdminUser(username="x", password_hash="-", role=AdminRole.SUPERADMIN), AuditFilter(), None
        ).limit(51)
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "ix_report_event_at_id" in plan and "TEMP B-TREE" not in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))
            connection.execute(text("SET enable_sort = off"))
            plan = " ".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {compiled}")))
            assert "ix_report_event_at_id" in plan, plan
