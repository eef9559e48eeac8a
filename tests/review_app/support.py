"""What the review app's tests share: reports put straight in the database, admins, a signed-in browser."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, insert

from gateway.db import utcnow, write_connection
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, RawDelivery
from normalizer.gazetteer import load_gazetteer
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, Report
from tests.admin.support import GAMBIR, KEBON_KELAPA, MENTENG, PASSWORD, Browser, csrf_token_in

__all__ = ["GAMBIR", "KEBON_KELAPA", "MENTENG", "PASSWORD", "Browser", "csrf_token_in", "make_admin", "put_report"]

XSS = 'Jalan rusak <script>alert("x")</script> <img src=x onerror=alert(1)> di Gambir'


def put_report(
    engine: Engine,
    *,
    channel_id: str = "api:partner",
    kelurahan: str | None = GAMBIR,
    text: str = "Jalan berlubang di depan kantor kelurahan, hubungi 0812-3456-7890",
    age: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    raw_body: bytes | None = None,
    **fields: Any,
) -> Report:
    """A report as the normalizer would have stored it, with its inbox row and raw delivery."""
    lineage = {r.level: r.code for r in load_gazetteer().lineage(kelurahan)} if kelurahan else {}
    received = (now or utcnow()) - age
    delivery_id, message_id, ticket = new_id(), new_id(), new_ticket_code()
    values: dict[str, Any] = {
        "ticket_code": ticket,
        "channel_id": channel_id,
        "inbound_message_id": message_id,
        "received_at": received,
        "created_at": received,
        "text_original": text,
        "text_clean": text,
        "text_masked": text.replace("0812-3456-7890", "[telepon]"),
        "kota_code": lineage.get("kota"),
        "kecamatan_code": lineage.get("kecamatan"),
        "kelurahan_code": lineage.get("kelurahan"),
        "place": {"kelurahan_code": kelurahan, "precision": "kelurahan"} if kelurahan else None,
        "category_code": "jalan",
        "agency_code": "bina_marga",
        "completeness": 80,
        "sender": {"id": f"caller-{ticket}", "name": "Budi Santoso", "phone": "081234567890"},
    }
    values.update(fields)
    report = Report(**values)
    body = raw_body if raw_body is not None else json.dumps({"text": text}).encode()
    with write_connection(engine) as connection:
        connection.execute(
            insert(RawDelivery),
            [{"id": delivery_id, "channel_id": channel_id, "received_at": received, "headers": {}, "body": body}],
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
                    "received_at": received,
                    "message": {"text": text},
                    "state": "normalized",
                    "delivery_count": 1,
                    "attempts": 1,
                }
            ],
        )
        connection.execute(insert(Report), [report.model_dump()])
    return report


def make_admin(engine: Engine, username: str, role: AdminRole = AdminRole.WILAYAH_ADMIN, **scope: Any) -> None:
    create_admin(engine, username=username, password=PASSWORD, role=role, **scope)


def signed_in(browser: Browser, username: str) -> Browser:
    answer = browser.login(username)
    assert answer.status_code == 303, answer.text
    return browser


def form_post(browser: Browser, page: httpx.Response, action: str, **data: Any) -> httpx.Response:
    """Submit a form of `page` (a page the browser got) to `action`, with the page's CSRF token and the
    report version the page showed, as the browser would."""
    version = re.search(r'name="version" value="(\d+)"', page.text)
    fields = {"csrf_token": csrf_token_in(page), **({"version": version.group(1)} if version else {}), **data}
    return browser.http.post(action, data=fields)
