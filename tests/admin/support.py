"""What the admin tests share: a gateway without workers, reports put straight in the database, a browser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select
from sqlmodel import col

from gateway.db import read_session, write_connection
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, RawDelivery
from kanal_testing.server import kanal_settings
from normalizer.gazetteer import load_gazetteer
from review_queue.audit import AuditLog
from review_queue.tables import Report
from tests.support.servers import RunningGateway

PASSWORD = "correct-horse-battery"
GAMBIR = "31.71.01.1001"  # kelurahan Gambir, kecamatan Gambir, Jakarta Pusat
KEBON_KELAPA = "31.71.01.1005"  # kelurahan Kebon Kelapa, the same kecamatan
MENTENG = "31.71.06.1001"  # kelurahan Menteng, Jakarta Pusat


@contextmanager
def admin_gateway(database_url: str, **auth: Any) -> Iterator[RunningGateway]:
    """Kanal on `database_url` with no background workers (nothing moves reports behind the test's back)."""
    settings = kanal_settings(database_url, {}, workers={"enabled": False}, auth=auth)
    with RunningGateway(settings) as running:
        yield running


def add_report(engine: Engine, *, channel_id: str, kelurahan: str | None = None) -> Report:
    """A pending report from `channel_id`, placed in `kelurahan` (with its kecamatan and kota) or nowhere."""
    lineage = {r.level: r.code for r in load_gazetteer().lineage(kelurahan)} if kelurahan else {}
    delivery_id, message_id, ticket = new_id(), new_id(), new_ticket_code()
    report = Report(
        ticket_code=ticket,
        channel_id=channel_id,
        inbound_message_id=message_id,
        text_original="Jalan berlubang, hubungi 0812-3456-7890",
        text_clean="Jalan berlubang, hubungi 0812-3456-7890",
        text_masked="Jalan berlubang, hubungi [telepon]",
        kota_code=lineage.get("kota"),
        kecamatan_code=lineage.get("kecamatan"),
        kelurahan_code=lineage.get("kelurahan"),
    )
    with write_connection(engine) as connection:
        connection.execute(
            insert(RawDelivery),
            [
                {
                    "id": delivery_id,
                    "channel_id": channel_id,
                    "received_at": report.received_at,
                    "headers": {},
                    "body": json.dumps({"text": report.text_original}).encode(),
                }
            ],
        )
        connection.execute(
            insert(InboundMessageRow),
            [
                {
                    "id": message_id,
                    "channel_id": channel_id,
                    "external_id": new_id(),
                    "ticket_code": ticket,
                    "delivery_id": delivery_id,
                    "received_at": report.received_at,
                    "message": {},
                    "state": "normalized",
                    "delivery_count": 1,
                    "attempts": 1,
                }
            ],
        )
        connection.execute(insert(Report), [report.model_dump()])
    return report


def audit_rows(engine: Engine, action: str | None = None) -> list[AuditLog]:
    query = select(AuditLog).order_by(col(AuditLog.at), col(AuditLog.id))
    if action is not None:
        query = query.where(col(AuditLog.action) == action)
    with read_session(engine) as session:
        return list(session.execute(query).scalars())


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_in(page: httpx.Response) -> str:
    match = _TOKEN.search(page.text)
    assert match, f"no csrf_token field on {page.request.url}:\n{page.text[:2000]}"
    return match.group(1)


class Browser:
    """An admin's browser: keeps cookies, does not follow redirects (the tests look at them)."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.http = httpx.Client(base_url=gateway.url, timeout=30, follow_redirects=False)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, username: str, password: str = PASSWORD, *, next: str = "") -> httpx.Response:
        form = self.http.get("/admin/login")
        assert form.status_code == 200, form.text
        data = {"username": username, "password": password, "next": next, "csrf_token": csrf_token_in(form)}
        return self.http.post("/admin/login", data=data)

    def session_token(self) -> str:
        """The CSRF token of this browser's session, read from a signed-in page as a form would."""
        page = self.http.get("/admin/account")
        assert page.status_code == 200, page.text
        return csrf_token_in(page)
