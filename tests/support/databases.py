"""A fresh database per test on each engine: a SQLite file, or a PostgreSQL database cloned from a migrated template."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from gateway import migrate
from gateway.db import make_engine

#: The PostgreSQL server the suite uses; trust auth on this machine. Override to point elsewhere.
ADMIN_URL = os.environ.get("KANAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: CI sets this so an unreachable PostgreSQL fails the run instead of skipping its tests.
REQUIRE_POSTGRES = os.environ.get("KANAL_TEST_REQUIRE_POSTGRES") == "1"


def _conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresTemplates:
    """Creates one migrated template per test session; each test gets a clone of it, dropped afterwards."""

    def __init__(self) -> None:
        self.template = f"kanal_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._ready = False
        self._unreachable: str | None = None

    def available(self) -> None:
        """Skip (or, in CI, fail) the calling test when PostgreSQL cannot be reached."""
        if self._unreachable is None and not self._ready:
            try:
                self._create_template()
                self._ready = True
            except psycopg.OperationalError as exc:
                self._unreachable = str(exc).strip().splitlines()[0]
        if self._unreachable is not None:
            message = (
                f"PostgreSQL not reachable at {make_url(ADMIN_URL).render_as_string(hide_password=True)} "
                f"({self._unreachable}); start it or set KANAL_TEST_POSTGRES_URL"
            )
            if REQUIRE_POSTGRES:
                pytest.fail(message + " [KANAL_TEST_REQUIRE_POSTGRES=1]")
            pytest.skip(message)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(_conninfo(ADMIN_URL), autocommit=True, connect_timeout=3)

    def _create_template(self) -> None:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        engine = make_engine(self.url_for(self.template))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def url_for(self, database: str) -> str:
        return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)

    @contextmanager
    def fresh(self) -> Iterator[str]:
        self.available()
        name = f"kanal_t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield self.url_for(name)
        finally:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._ready:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'kanal.sqlite3'}"
