"""`kanal admin create` with a role, a scope and a language (both engines)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import main
from gateway.db import make_engine, read_session
from review_queue.tables import AdminUser
from tests.admin.support import GAMBIR, PASSWORD
from tests.support.servers import write_config

TEST_SECRET = "test-secret-key-0123456789-abcdefghij"


@pytest.fixture
def kanal(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in [n for n in os.environ if n.startswith("KANAL_") and not n.startswith("KANAL_TEST")]:
        monkeypatch.delenv(name)  # only the config folder speaks
    monkeypatch.setenv(
        "KANAL_CONFIG_DIR",
        str(
            write_config(
                tmp_path / "config",
                {
                    "database_url": database_url,
                    "secret_key": TEST_SECRET,
                    "log_level": "WARNING",
                },
            )
        ),
    )
    return database_url


def _create(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(["admin", "create", *argv, "--password-stdin"])


def test_admin_create_with_scope_and_language(
    kanal: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(monkeypatch, "lurah", "--role", "wilayah_admin", "--scope-wilayah", GAMBIR, "--language", "en") == 0
    assert "Gambir" in capsys.readouterr().out
    assert (
        _create(
            monkeypatch,
            "medsos",
            "--role",
            "channel_admin",
            "--scope-channel",
            "twitter:*",
            "--scope-channel",
            "instagram:governor",
        )
        == 0
    )
    assert _create(monkeypatch, "--username", "rina") == 0  # the older spelling still works

    assert _create(monkeypatch, "typo", "--role", "wilayah_admin", "--scope-wilayah", "31.71.01.9999") == 1
    assert "unknown wilayah code '31.71.01.9999'" in capsys.readouterr().err
    assert _create(monkeypatch, "nobody", "--role", "channel_admin") == 1
    assert "--scope-channel" in capsys.readouterr().err

    engine = make_engine(kanal)
    with read_session(engine) as session:
        admins = {a.username: a for a in session.execute(select(AdminUser)).scalars()}
    engine.dispose()
    assert set(admins) == {"lurah", "medsos", "rina"}
    assert (admins["lurah"].role, admins["lurah"].scope_wilayah, admins["lurah"].language) == (
        "wilayah_admin",
        [GAMBIR],
        "en",
    )
    assert admins["medsos"].scope_channels == ["instagram:governor", "twitter:*"]
    assert (admins["rina"].role, admins["rina"].scope_channels) == ("reviewer", ["*"])


def test_an_operator_repairs_the_only_superadmin_from_the_command_line(
    kanal: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.db import utcnow, write_session
    from review_queue.audit import AuditLog
    from review_queue.auth import authenticate

    assert _create(monkeypatch, "kepala", "--role", "superadmin") == 0
    assert _create(monkeypatch, "rina") == 0
    engine = make_engine(kanal)
    with write_session(engine) as session:  # locked out by too many wrong passwords
        session.execute(
            update(AdminUser)
            .where(AdminUser.username == "kepala")
            .values(locked_until=utcnow() + timedelta(minutes=15), failed_logins=5)
        )
    capsys.readouterr()

    assert main(["admin", "list"]) == 0
    listed = capsys.readouterr().out
    assert "kepala" in listed and "locked until" in listed and "rina" in listed

    assert main(["admin", "unlock", "kepala"]) == 0
    assert "unlocked" in capsys.readouterr().out
    assert authenticate(engine, username="kepala", password=PASSWORD) is not None

    new = "another-long-password"
    monkeypatch.setattr("sys.stdin", io.StringIO(new + "\n"))
    assert main(["admin", "set-password", "kepala", "--password-stdin"]) == 0
    assert authenticate(engine, username="kepala", password=new) is not None
    assert authenticate(engine, username="kepala", password=PASSWORD) is None

    assert main(["admin", "disable", "kepala"]) == 1, "the last enabled superadmin stays"
    assert "last enabled superadmin" in capsys.readouterr().err
    assert main(["admin", "disable", "rina"]) == 0
    assert authenticate(engine, username="rina", password=PASSWORD) is None
    assert main(["admin", "enable", "rina"]) == 0
    assert main(["admin", "unlock", "nobody"]) == 1
    assert "kanal admin list" in capsys.readouterr().err

    by_operator = select(AuditLog).where(AuditLog.actor_name.startswith("cli:")).order_by(AuditLog.at)
    with read_session(engine) as session:
        trail = list(session.execute(by_operator).scalars())
    assert [row.action for row in trail] == [
        "account_unlocked",
        "account_password_set",
        "account_disabled",
        "account_enabled",
    ]
    assert all(new not in str(row.detail) and PASSWORD not in str(row.detail) for row in trail)
    engine.dispose()
