"""Upgrading a database that already holds reports keeps them and masks what goes onward (both engines)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from gateway import migrate
from gateway.db import make_engine

T = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def test_upgrading_from_the_first_schema_keeps_reports_and_masks_them(database_url: str) -> None:
    if "sqlite" not in database_url:
        # The shared PostgreSQL template is already at head: start this database from nothing.
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO raw_delivery (id, channel_id, received_at, headers, body) "
                "VALUES ('d1', 'api:partner', :t, '{}', :b)"
            ),
            {"t": T.replace(tzinfo=None), "b": b"{}"},
        )
        connection.execute(
            text(
                "INSERT INTO inbound_message (id, channel_id, external_id, ticket_code, delivery_id, received_at, "
                "message, state, delivery_count, attempts) VALUES ('m1', 'api:partner', 'e1', 'AB1CD-2EF3G', 'd1', "
                ":t, '{}', 'normalized', 1, 1)"
            ),
            {"t": T.replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO report (id, ticket_code, channel_id, inbound_message_id, state, created_at, updated_at, "
                "text_original, text_clean, completeness, completeness_missing, media, decisions, version) VALUES "
                "('r1', 'AB1CD-2EF3G', 'api:partner', 'm1', 'pending_review', :t, :t, :x, :x, 40, '[]', '[]', "
                "'[]', 1)"
            ),
            {"t": T.replace(tzinfo=None), "x": "Jalan rusak, hubungi 0812-3456-7890 atau a@b.id"},
        )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT text_clean, text_masked, received_at FROM report")).one()
    engine.dispose()
    assert row.text_clean.endswith("a@b.id"), "the protected text is kept as it was"
    assert "3456" not in row.text_masked and "a@b.id" not in row.text_masked
    assert row.received_at is not None
