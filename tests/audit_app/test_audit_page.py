"""GET /admin/audit and its export through a real gateway and signed-in browsers (both engines)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from review_queue.audit import AuditAction
from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from review_queue.web.render import SECURITY_HEADERS
from tests.admin.support import GAMBIR, MENTENG, PASSWORD, Browser, add_report, admin_gateway, audit_rows
from tests.audit_app.support import T0, add_event
from tests.support.servers import RunningGateway

SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'


@pytest.fixture
def gateway(database_url: str) -> Iterator[RunningGateway]:
    with admin_gateway(database_url) as running:
        engine = running.runtime.engine
        create_admin(engine, username="kepala", password=PASSWORD, role=AdminRole.SUPERADMIN)
        create_admin(engine, username="gambir", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[GAMBIR])
        create_admin(
            engine, username="vera", password=PASSWORD, role=AdminRole.VIEWER, scope_wilayah=[MENTENG], language="en"
        )
        yield running


def rows(page: str) -> list[str]:
    """Each table row's cells as plain text joined by |."""
    found = []
    for row in re.findall(r"<tr data-source.*?</tr>", page, re.S):
        cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td.*?</td>", row, re.S)]
        found.append(" | ".join(cells))
    return found


def test_scoped_pages_filters_and_escaping(gateway: RunningGateway) -> None:
    engine = gateway.runtime.engine
    here = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    there = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=MENTENG)
    add_event(
        engine,
        here.id,
        actor="admin:kepala",
        action="rejected",
        before={"state": "pending_review", "reject_reason": None},
        after={"state": "rejected", "reject_reason": SCRIPT},
        note=IMG,
        at=T0,
    )
    add_event(engine, there.id, actor="admin:kepala", action="personal_data_opened", at=T0 + timedelta(minutes=1))

    with Browser(gateway) as boss, Browser(gateway) as gambir, Browser(gateway) as vera:
        assert boss.login("kepala").status_code == 303
        assert gambir.login("gambir").status_code == 303
        assert vera.login("vera").status_code == 303

        page = boss.http.get("/admin/audit")
        assert page.status_code == 200
        assert all(page.headers[name] == value for name, value in SECURITY_HEADERS.items())
        listed = rows(page.text)
        assert "Masuk" in listed[0] and "vera" in listed[0], "newest first: vera signed in last"
        assert any("gambir" in r and "Masuk" in r for r in listed), "a superadmin sees every sign-in"
        assert listed[-2].startswith("20/11/2026 10:01 WIB | kepala | Data pribadi dibuka | " + there.ticket_code)
        assert listed[-1].startswith("20/11/2026 10:00 WIB | kepala | Ditolak | " + here.ticket_code)
        assert "127.0.0.1" in listed[0], "a superadmin sees addresses"
        # Citizen and admin text is shown as text, never as markup.
        assert SCRIPT not in page.text and IMG not in page.text
        assert "&lt;script&gt;" in page.text and "&lt;img src=x onerror=" in page.text

        mine = gambir.http.get("/admin/audit")
        assert mine.status_code == 200
        listed = rows(mine.text)
        assert [r.split(" | ")[1:3] for r in listed] == [["gambir", "Masuk"], ["kepala", "Ditolak"]]
        assert there.ticket_code not in mine.text, "another area's report is not shown"
        outside = gambir.http.get("/admin/audit", params={"ticket": there.ticket_code})
        unknown = gambir.http.get("/admin/audit", params={"ticket": "AB1CD-2EF3G"})
        assert outside.status_code == unknown.status_code == 404
        assert rows(outside.text) == [] and "Tidak ada laporan dengan nomor tiket itu" in outside.text

        read_only = vera.http.get("/admin/audit")
        assert read_only.status_code == 200 and "Audit trail" in read_only.text
        assert [r.split(" | ")[1:3] for r in rows(read_only.text)] == [
            ["vera", "Signed in"],
            ["kepala", "Personal data opened"],
        ]

        one = boss.http.get("/admin/audit", params={"ticket": here.ticket_code.lower(), "action": "rejected"})
        assert len(rows(one.text)) == 1 and "reject_reason" in one.text
        by_actor = boss.http.get("/admin/audit", params={"actor": "gambir"})
        assert [r.split(" | ")[2] for r in rows(by_actor.text)] == ["Masuk"]
        dated = boss.http.get("/admin/audit", params={"since": "2026-11-20", "until": "2026-11-20"})
        assert len(rows(dated.text)) == 2, "the day is Jakarta's day"
        reversed_range = boss.http.get("/admin/audit", params={"since": "2026-11-21", "until": "2026-11-20"})
        assert reversed_range.status_code == 400 and "Tukar kedua tanggal" in reversed_range.text
        assert boss.http.get("/admin/audit", params={"since": "kemarin"}).status_code == 400
        assert boss.http.get("/admin/audit", params={"cursor": "not-a-cursor"}).status_code == 400
        hostile = boss.http.get("/admin/audit", params={"actor": SCRIPT})
        assert SCRIPT not in hostile.text and "&lt;script&gt;" in hostile.text


def test_older_pages(gateway: RunningGateway) -> None:
    engine = gateway.runtime.engine
    report = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    for i in range(60):
        add_event(engine, report.id, actor="system:sla", action="overdue", at=T0 + timedelta(seconds=i))
    with Browser(gateway) as boss:
        boss.login("kepala")
        first = boss.http.get("/admin/audit", params={"actor": "system:sla"})
        assert len(rows(first.text)) == 50
        older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
        assert older, "a link to the older entries"
        second = boss.http.get(older.group(1).replace("&amp;", "&"))
        assert second.status_code == 200 and len(rows(second.text)) == 10
        assert 'rel="next"' not in second.text and "Terbaru" in second.text


def test_export_streams_every_row_safely_and_is_recorded(gateway: RunningGateway) -> None:
    engine = gateway.runtime.engine
    here = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
    there = add_report(engine, channel_id="twitter:dkijakarta", kelurahan=MENTENG)
    formulas = ['=HYPERLINK("http://evil.example","klik")', "+62 812", "-1+1", "@SUM(A1)", "\t=1"]
    for i, note in enumerate(formulas):
        add_event(engine, here.id, actor="admin:kepala", action="rejected", note=note, at=T0 + timedelta(seconds=i))
    add_event(engine, there.id, actor="admin:kepala", action="edited", note=SCRIPT, at=T0)

    with Browser(gateway) as boss, Browser(gateway) as gambir:
        boss.login("kepala")
        gambir.login("gambir")
        exported = boss.http.get("/admin/audit/export", params={"format": "csv", "action": "rejected"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert re.match(r'attachment; filename="kanal-audit-\d{8}-\d{4}\.csv"', exported.headers["content-disposition"])
        assert "content-length" not in exported.headers, "streamed, not built first"
        assert exported.headers["cache-control"] == "no-store"
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert sorted(r["note"] for r in table) == sorted("'" + f for f in formulas)
        assert all(r["ticket"] == here.ticket_code and r["at_wib"].endswith("WIB") for r in table)
        for row in table:
            assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in row.values()), row

        lines = gambir.http.get("/admin/audit/export", params={"format": "jsonl"})
        assert lines.status_code == 200 and lines.headers["content-type"].startswith("application/x-ndjson")
        records = [json.loads(line) for line in lines.text.splitlines()]
        assert {r["ticket"] for r in records if r["ticket"]} == {here.ticket_code}, "the export keeps the scope"
        assert records[0]["action"] == "audit_exported" and records[0]["actor"] == "gambir"
        assert formulas[0] in {r["note"] for r in records}, "JSON Lines holds values as they are"

        assert boss.http.get("/admin/audit/export", params={"format": "xlsx"}).status_code == 422
        refused = gambir.http.get("/admin/audit/export", params={"ticket": there.ticket_code})
        assert refused.status_code == 404

    exports = audit_rows(engine, "audit_exported")
    assert [(r.actor_name, (r.detail or {}).get("format")) for r in exports] == [("kepala", "csv"), ("gambir", "jsonl")]
    assert exports[0].detail == {"format": "csv", "action": "rejected"}
    assert len(audit_rows(engine, AuditAction.LOGIN)) == 2


def test_signed_out_browsers_go_to_the_login_form(gateway: RunningGateway) -> None:
    with Browser(gateway) as nobody:
        for path in ("/admin/audit", "/admin/audit/export?format=csv"):
            answer = nobody.http.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")
