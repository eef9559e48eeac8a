"""Migration 0011: existing admins keep what they saw, and the schema is the models' (both engines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from gateway import migrate
from gateway.db import make_engine
from gateway.schema import metadata

T = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
OWN_TABLES = {"admin_user", "admin_session", "audit_log"}


def test_upgrading_keeps_existing_admins_seeing_what_they_saw(database_url: str) -> None:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        # The shared PostgreSQL template is already at head: start this database from nothing.
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine, "0010")
    with engine.begin() as connection:
        for name, role in [("ops", "superadmin"), ("rina", "reviewer"), ("vera", "viewer")]:
            connection.execute(
                text(
                    "INSERT INTO admin_user (id, username, password_hash, role, disabled, created_at) "
                    "VALUES (:id, :name, 'x', :role, false, :t)"
                ),
                {"id": name, "name": name, "role": role, "t": T.replace(tzinfo=None)},
            )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT username, scope_channels, scope_wilayah, language, failed_logins FROM admin_user")
        ).all()
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
    engine.dispose()
    stored = {r.username: (_json(r.scope_channels), _json(r.scope_wilayah), r.language, r.failed_logins) for r in rows}
    assert stored == {
        "ops": ([], [], "id", 0),
        "rina": (["*"], [], "id", 0),
        "vera": (["*"], [], "id", 0),
    }
    ours = [d for d in differences if _ours(d)]
    assert ours == [], "the admin tables' migrations and models disagree; write the missing migration"


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _ours(difference: Any) -> bool:
    """Whether an autogenerate difference concerns a table this migration owns."""
    flat = difference[0] if isinstance(difference, list) else difference
    for part in flat[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else part
        table = getattr(getattr(part, "table", None), "name", None)
        if name in OWN_TABLES or table in OWN_TABLES:
            return True
    return False
