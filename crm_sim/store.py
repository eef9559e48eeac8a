"""SQLite persistence of the simulated CRM (its own database file, stdlib ``sqlite3``).

What callers may rely on:

* All methods are thread-safe: one connection, serialised by a lock.
* Data survives process restarts; ``close()`` only releases the connection, the next call reopens it.
* Timestamps are stored in UTC; ``StoredRequest`` carries them as aware ``datetime`` objects.
* ``service_request_id`` values are sequential and readable (``CRM-000001``); a request may exist
  without one while it waits for deferred assignment.
* An ``idempotency_key`` is unique: creating again with the same key returns the first request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CRM_STATUSES: tuple[str, ...] = ("Menunggu", "Koordinasi", "Disposisi", "Proses", "Selesai")
DEFAULT_CRM_STATUS = "Menunggu"
BUSY_TIMEOUT_MS = 5000

# Fixed-width UTC text so that SQL string comparison equals chronological comparison.
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    service_request_id TEXT UNIQUE,
    token              TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    status_notes       TEXT,
    crm_status         TEXT NOT NULL DEFAULT 'Menunggu',
    service_code       TEXT NOT NULL,
    description        TEXT,
    lat                REAL,
    long               REAL,
    address_string     TEXT,
    address_id         TEXT,
    email              TEXT,
    first_name         TEXT,
    last_name          TEXT,
    phone              TEXT,
    device_id          TEXT,
    account_id         TEXT,
    media_url          TEXT,
    attributes         TEXT NOT NULL DEFAULT '{}',
    jurisdiction_id    TEXT,
    idempotency_key    TEXT UNIQUE,
    service_notice     TEXT,
    agency_responsible TEXT,
    requested_datetime TEXT NOT NULL,
    updated_datetime   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_service_requests_requested ON service_requests (requested_datetime);
"""


def utc_now() -> datetime:
    """Current time as an aware UTC datetime (the store's default clock)."""
    return datetime.now(UTC)


def _to_db(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def _from_db(text: str) -> datetime:
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class NewRequest:
    """A validated service request as submitted by a client (before the CRM assigns anything)."""

    service_code: str
    token: str
    description: str | None = None
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    media_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    jurisdiction_id: str | None = None
    idempotency_key: str | None = None
    service_notice: str | None = None
    agency_responsible: str | None = None


@dataclass(frozen=True)
class StoredRequest:
    """A service request as the CRM holds it."""

    row_id: int
    service_request_id: str | None
    token: str
    status: str
    status_notes: str | None
    crm_status: str
    service_code: str
    description: str | None
    lat: float | None
    long: float | None
    address_string: str | None
    address_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    device_id: str | None
    account_id: str | None
    media_url: str | None
    attributes: dict[str, Any]
    jurisdiction_id: str | None
    idempotency_key: str | None
    service_notice: str | None
    agency_responsible: str | None
    requested_datetime: datetime
    updated_datetime: datetime

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredRequest:
        """Build from a ``SELECT *`` row of ``service_requests``."""
        data = dict(row)
        data["row_id"] = data.pop("id")
        data["attributes"] = json.loads(data["attributes"] or "{}")
        data["requested_datetime"] = _from_db(data["requested_datetime"])
        data["updated_datetime"] = _from_db(data["updated_datetime"])
        return cls(**data)


def format_request_id(row_id: int) -> str:
    """The readable, sequential public id for the ``row_id``-th request (``CRM-000123``)."""
    return f"CRM-{row_id:06d}"


class CRMStore:
    """Service-request storage in one SQLite file (WAL mode, busy timeout, one locked connection)."""

    def __init__(self, db_path: str | Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._path = Path(db_path)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- connection management -------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """Open (or reuse) the connection; caller must hold the lock."""
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: FastAPI runs handlers on a thread pool; the lock serialises use.
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one write transaction; rolls back on any exception."""
        with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock up front so read-then-write sequences cannot interleave
            # with another process writing to the same file.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[StoredRequest]:
        with self._lock:
            rows = self._connection().execute(sql, tuple(params)).fetchall()
        return [StoredRequest.from_row(r) for r in rows]

    def close(self) -> None:
        """Release the connection. Safe to call twice; later calls transparently reopen."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writes ------------------------------------------------------------------------------

    def create(self, new: NewRequest, *, assign_id: bool) -> tuple[StoredRequest, bool]:
        """Store ``new`` and return ``(request, created)``.

        With an ``idempotency_key`` already on file nothing is written and the earlier request is
        returned with ``created=False``. ``assign_id=False`` leaves ``service_request_id`` empty
        for later ``assign_pending_ids``.
        """
        now = _to_db(self._clock())
        with self._transaction() as conn:
            if new.idempotency_key is not None:
                existing = conn.execute(
                    "SELECT * FROM service_requests WHERE idempotency_key = ?", (new.idempotency_key,)
                ).fetchone()
                if existing is not None:
                    return StoredRequest.from_row(existing), False
            cursor = conn.execute(
                """INSERT INTO service_requests (
                       token, service_code, description, lat, long, address_string, address_id,
                       email, first_name, last_name, phone, device_id, account_id, media_url,
                       attributes, jurisdiction_id, idempotency_key, service_notice,
                       agency_responsible, crm_status, requested_datetime, updated_datetime)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    new.token,
                    new.service_code,
                    new.description,
                    new.lat,
                    new.long,
                    new.address_string,
                    new.address_id,
                    new.email,
                    new.first_name,
                    new.last_name,
                    new.phone,
                    new.device_id,
                    new.account_id,
                    new.media_url,
                    json.dumps(new.attributes, ensure_ascii=False),
                    new.jurisdiction_id,
                    new.idempotency_key,
                    new.service_notice,
                    new.agency_responsible,
                    DEFAULT_CRM_STATUS,
                    now,
                    now,
                ),
            )
            row_id = int(cursor.lastrowid or 0)
            if assign_id:
                conn.execute(
                    "UPDATE service_requests SET service_request_id = ? WHERE id = ?",
                    (format_request_id(row_id), row_id),
                )
            row = conn.execute("SELECT * FROM service_requests WHERE id = ?", (row_id,)).fetchone()
        return StoredRequest.from_row(row), True

    def assign_pending_ids(self, *, requested_before: datetime) -> int:
        """Give a ``service_request_id`` to every pending request submitted before the given moment.

        Returns how many were assigned. Ids follow submission order, like immediate assignment.
        """
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE service_requests SET service_request_id = printf('CRM-%06d', id) "
                "WHERE service_request_id IS NULL AND requested_datetime <= ?",
                (_to_db(requested_before),),
            )
            return cursor.rowcount

    def set_status(self, service_request_id: str, *, crm_status: str, note: str | None) -> StoredRequest | None:
        """Move a request to ``crm_status`` (``Selesai`` closes it, anything else reopens it).

        ``status_notes`` becomes ``note`` and ``updated_datetime`` the current time.
        Returns the updated request, or ``None`` if the id is unknown.
        """
        if crm_status not in CRM_STATUSES:
            raise ValueError(f"unknown CRM status {crm_status!r}")
        status = "closed" if crm_status == "Selesai" else "open"
        with self._transaction() as conn:
            conn.execute(
                "UPDATE service_requests SET crm_status = ?, status = ?, status_notes = ?, "
                "updated_datetime = ? WHERE service_request_id = ?",
                (crm_status, status, note, _to_db(self._clock()), service_request_id),
            )
            row = conn.execute(
                "SELECT * FROM service_requests WHERE service_request_id = ?", (service_request_id,)
            ).fetchone()
        return StoredRequest.from_row(row) if row is not None else None

    # -- reads -------------------------------------------------------------------------------

    def get(self, service_request_id: str) -> StoredRequest | None:
        """The request with this public id, or ``None``."""
        found = self._query("SELECT * FROM service_requests WHERE service_request_id = ?", (service_request_id,))
        return found[0] if found else None

    def get_by_token(self, token: str) -> StoredRequest | None:
        """The request answered with this token, or ``None``."""
        found = self._query("SELECT * FROM service_requests WHERE token = ?", (token,))
        return found[0] if found else None

    def get_many(self, service_request_ids: list[str]) -> list[StoredRequest]:
        """Requests with the given public ids, in the order asked; unknown ids are skipped."""
        if not service_request_ids:
            return []
        marks = ",".join("?" for _ in service_request_ids)
        found = self._query(
            f"SELECT * FROM service_requests WHERE service_request_id IN ({marks})",  # noqa: S608 - only '?'
            service_request_ids,
        )
        by_id = {r.service_request_id: r for r in found}
        return [by_id[i] for i in dict.fromkeys(service_request_ids) if i in by_id]

    def search(
        self,
        *,
        start: datetime,
        end: datetime,
        service_codes: list[str] | None = None,
        statuses: list[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredRequest]:
        """Requests with an id, submitted within ``[start, end]``, newest first, at most ``limit``."""
        clauses = ["service_request_id IS NOT NULL", "requested_datetime >= ?", "requested_datetime <= ?"]
        params: list[Any] = [_to_db(start), _to_db(end)]
        for column, values in (("service_code", service_codes), ("status", statuses)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' for _ in values)})")
                params.extend(values)
        sql = (
            f"SELECT * FROM service_requests WHERE {' AND '.join(clauses)} "  # noqa: S608 - fixed columns
            "ORDER BY requested_datetime DESC, id DESC LIMIT ?"
        )
        return self._query(sql, [*params, limit])

    def stats(self) -> dict[str, Any]:
        """``{"requests": n, "by_status": {crm_status: n}, "by_open311_status": {...}, "pending": n}``."""
        with self._lock:
            conn = self._connection()
            total = conn.execute("SELECT COUNT(*) FROM service_requests").fetchone()[0]
            by_crm = conn.execute("SELECT crm_status, COUNT(*) FROM service_requests GROUP BY crm_status")
            by_crm_status = {row[0]: row[1] for row in by_crm.fetchall()}
            by_open = conn.execute("SELECT status, COUNT(*) FROM service_requests GROUP BY status")
            by_open311 = {row[0]: row[1] for row in by_open.fetchall()}
            pending = conn.execute("SELECT COUNT(*) FROM service_requests WHERE service_request_id IS NULL").fetchone()[
                0
            ]
        return {
            "requests": total,
            "by_status": by_crm_status,
            "by_open311_status": by_open311,
            "pending": pending,
        }
