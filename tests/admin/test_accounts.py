"""Roles and scopes: who may act, and which reports each admin sees, the same in SQL and in Python."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from gateway import migrate
from gateway.db import make_engine, read_session
from review_queue import service
from review_queue.accounts import AccountError, Scope, can_act, get_report_in_scope, scope_of, validate_account
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, AdminUser, Report
from tests.admin.support import GAMBIR, KEBON_KELAPA, MENTENG, PASSWORD, add_report


def _admin(role: AdminRole, channels: list[str] | None = None, wilayah: list[str] | None = None) -> AdminUser:
    return AdminUser(
        username="x", password_hash="-", role=role, scope_channels=channels or [], scope_wilayah=wilayah or []
    )


def test_who_may_act() -> None:
    acting = [AdminRole.SUPERADMIN, AdminRole.REVIEWER, AdminRole.CHANNEL_ADMIN, AdminRole.WILAYAH_ADMIN]
    assert all(can_act(_admin(role)) for role in acting)
    assert not can_act(_admin(AdminRole.VIEWER))
    disabled = _admin(AdminRole.SUPERADMIN)
    disabled.disabled = True
    assert not can_act(disabled)


def test_scope_of_reads_the_stored_lists() -> None:
    assert scope_of(_admin(AdminRole.SUPERADMIN)).everything
    assert scope_of(_admin(AdminRole.REVIEWER, ["*"])).everything
    assert scope_of(_admin(AdminRole.REVIEWER)).is_empty
    scope = scope_of(_admin(AdminRole.CHANNEL_ADMIN, ["twitter:*", "api:partner"], ["31.71"]))
    assert scope == Scope(
        everything=False,
        channels=frozenset({"api:partner"}),
        channel_types=frozenset({"twitter"}),
        wilayah=frozenset({"31.71"}),
    )
    # "*" with a wilayah part is simply "any channel in that wilayah".
    assert scope_of(_admin(AdminRole.WILAYAH_ADMIN, ["*"], [GAMBIR])) == Scope(
        everything=False, wilayah=frozenset({GAMBIR})
    )


def test_describe_says_what_an_admin_sees_in_both_languages() -> None:
    assert scope_of(_admin(AdminRole.SUPERADMIN)).describe("id") == "Semua laporan"
    assert "no channel and no wilayah" in scope_of(_admin(AdminRole.VIEWER)).describe("en")
    text = scope_of(_admin(AdminRole.WILAYAH_ADMIN, ["twitter:*"], [GAMBIR])).describe("id")
    assert "twitter:*" in text and f"Gambir ({GAMBIR})" in text


@pytest.mark.parametrize(
    ("role", "channels", "wilayah", "problem"),
    [
        ("reviewer", None, ["31.71.99.9999"], "unknown wilayah code '31.71.99.9999'"),
        ("reviewer", None, ["31"], "whole provinsi"),
        ("reviewer", ["twitter"], None, "is not a channel id"),
        ("channel_admin", None, None, "needs at least one scope channel"),
        ("wilayah_admin", ["twitter:*"], None, "needs at least one wilayah code"),
        ("boss", None, None, "unknown role 'boss'"),
    ],
)
def test_bad_accounts_are_refused_naming_the_problem(
    role: str, channels: list[str] | None, wilayah: list[str] | None, problem: str
) -> None:
    with pytest.raises(AccountError, match=problem):
        validate_account(role=role, scope_channels=channels, scope_wilayah=wilayah)


def test_a_reviewer_or_viewer_given_no_scope_sees_the_whole_city() -> None:
    assert validate_account(role="reviewer", scope_channels=None, scope_wilayah=None) == (["*"], [])
    assert validate_account(role="viewer", scope_channels=None, scope_wilayah=None) == (["*"], [])
    # Asked for explicitly, an empty scope stays empty (and sees nothing).
    assert validate_account(role="viewer", scope_channels=[], scope_wilayah=[]) == ([], [])


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


SCOPES = {
    "superadmin": _admin(AdminRole.SUPERADMIN),
    "city reviewer": _admin(AdminRole.REVIEWER, ["*"]),
    "empty": _admin(AdminRole.REVIEWER),
    "kelurahan gambir": _admin(AdminRole.WILAYAH_ADMIN, [], [GAMBIR]),
    "kecamatan gambir": _admin(AdminRole.WILAYAH_ADMIN, [], ["31.71.01"]),
    "jakarta pusat": _admin(AdminRole.WILAYAH_ADMIN, [], ["31.71"]),
    "two kelurahan": _admin(AdminRole.WILAYAH_ADMIN, [], [GAMBIR, MENTENG]),
    "twitter type": _admin(AdminRole.CHANNEL_ADMIN, ["twitter:*"]),
    "one channel": _admin(AdminRole.CHANNEL_ADMIN, ["api:partner"]),
    "twitter in gambir": _admin(AdminRole.CHANNEL_ADMIN, ["twitter:*"], [GAMBIR]),
}


def test_sql_and_python_agree_on_every_report(engine: Engine) -> None:
    reports = {
        "tw gambir": add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR),
        "tw kebon kelapa": add_report(engine, channel_id="twitter:dkijakarta", kelurahan=KEBON_KELAPA),
        "tw nowhere": add_report(engine, channel_id="twitter:dkijakarta"),
        "api menteng": add_report(engine, channel_id="api:partner", kelurahan=MENTENG),
        "api nowhere": add_report(engine, channel_id="api:partner"),
        # A channel id that merely starts like the type is not of that type; nor is one in other case.
        "twitterx gambir": add_report(engine, channel_id="twitterx:fake", kelurahan=GAMBIR),
        "Twitter gambir": add_report(engine, channel_id="Twitter:caps", kelurahan=GAMBIR),
    }
    names = {r.id: name for name, r in reports.items()}
    expected = {
        "superadmin": set(reports),
        "city reviewer": set(reports),
        "empty": set(),
        "kelurahan gambir": {"tw gambir", "twitterx gambir", "Twitter gambir"},
        "kecamatan gambir": {"tw gambir", "tw kebon kelapa", "twitterx gambir", "Twitter gambir"},
        "jakarta pusat": set(reports) - {"tw nowhere", "api nowhere"},
        "two kelurahan": {"tw gambir", "api menteng", "twitterx gambir", "Twitter gambir"},
        "twitter type": {"tw gambir", "tw kebon kelapa", "tw nowhere"},  # no wilayah part: also no place
        "one channel": {"api menteng", "api nowhere"},
        "twitter in gambir": {"tw gambir"},
    }
    with read_session(engine) as session:
        for label, admin in SCOPES.items():
            scope = scope_of(admin)
            clause = scope.report_clause()
            query = select(Report) if clause is None else select(Report).where(clause)
            in_sql = {names[r.id] for r in session.execute(query).scalars()}
            in_python = {names[r.id] for r in session.execute(select(Report)).scalars() if scope.allows(r)}
            assert in_sql == expected[label], label
            assert in_python == expected[label], label


def test_a_report_outside_the_scope_is_not_found_like_a_missing_one(engine: Engine) -> None:
    report = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=MENTENG)
    gambir = scope_of(SCOPES["kelurahan gambir"])
    with read_session(engine) as session:
        assert get_report_in_scope(session, report.ticket_code, scope_of(SCOPES["jakarta pusat"])).id == report.id
        with pytest.raises(service.ReportNotFound):
            get_report_in_scope(session, report.ticket_code, gambir)
        with pytest.raises(service.ReportNotFound):
            get_report_in_scope(session, report.id, gambir)


def test_create_admin_stores_the_scope_and_language(engine: Engine) -> None:
    admin = create_admin(
        engine,
        username="lurah.gambir",
        password=PASSWORD,
        role=AdminRole.WILAYAH_ADMIN,
        scope_wilayah=[GAMBIR, GAMBIR],
        language="en",
    )
    with read_session(engine) as session:
        stored = session.get(AdminUser, admin.id)
    assert stored is not None
    assert (stored.scope_channels, stored.scope_wilayah, stored.language) == ([], [GAMBIR], "en")
    with pytest.raises(AccountError, match="unknown wilayah code '31.71.01.9999'"):
        create_admin(
            engine, username="typo", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=["31.71.01.9999"]
        )
