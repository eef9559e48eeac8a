"""GET /admin/dashboard through a real gateway and a signed-in browser, on both engines."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlmodel import col

from gateway.db import utcnow, write_connection
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, Report
from review_queue.web.pages_dashboard import duration_text, number_for, router
from review_queue.web.render import SECURITY_HEADERS
from tests.admin.support import GAMBIR, Browser, add_report, admin_gateway
from tests.support.servers import RunningGateway

TEBET_TIMUR = "31.74.01.1001"  # Jakarta Selatan


@pytest.fixture
def gateway(database_url: str) -> Iterator[RunningGateway]:
    with admin_gateway(database_url) as running:
        # Until the admin package mounts the page itself (review_queue/web/__init__.py: install).
        if not any(getattr(route, "path", None) == "/admin/dashboard" for route in running.app.routes):
            running.app.include_router(router)
        engine = running.runtime.engine
        create_admin(engine, username="kepala", password="correct-horse-battery", role=AdminRole.SUPERADMIN)
        create_admin(
            engine,
            username="selatan",
            password="correct-horse-battery",
            role=AdminRole.WILAYAH_ADMIN,
            scope_wilayah=["31.74"],
            language="en",
        )
        add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
        add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR)
        late = add_report(engine, channel_id="<script>alert(1)</script>", kelurahan=TEBET_TIMUR)
        add_report(engine, channel_id="walk_in:balaikota")  # no place yet
        with write_connection(engine) as connection:
            connection.execute(
                update(Report)
                .where(col(Report.id) == late.id)
                .values(sla_due_at=utcnow().replace(year=2020), agency_code="bina_marga")
            )
        yield running


def figure(page: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">(.*?)</td>', page, re.S)
    assert match, f"no {name} figure"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def svgs(page: str) -> list[ET.Element]:
    found = re.findall(r"<svg .*?</svg>", page, re.S)
    return [ET.fromstring(svg) for svg in found]  # noqa: S314 - our own page, parsed to check it


def test_the_head_of_office_sees_every_figure(gateway: RunningGateway) -> None:
    with Browser(gateway) as browser:
        assert browser.login("kepala").status_code == 303
        page = browser.http.get("/admin/dashboard")
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    html = page.text
    assert "<h1>Dasbor</h1>" in html, "Bahasa Indonesia by default"
    assert (figure(html, "open"), figure(html, "overdue"), figure(html, "received")) == ("4", "1", "4")
    assert figure(html, "review") == "belum ada data"
    drawings = svgs(html)
    assert len(drawings) == 4, "arrivals, agencies, kota, map"
    assert all(d.get("role") == "img" and d.get("aria-label") for d in drawings)
    assert "<script>alert(1)</script>" not in html, "a channel id is data: escaped in the SVG and the table"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Dinas Bina Marga" in html, "agency names from the taxonomy"
    kelurahan = {
        p.get("data-code"): "".join(p.itertext()) for p in drawings[3].iter("{http://www.w3.org/2000/svg}path")
    }
    assert kelurahan[GAMBIR] == "Gambir: 2" and kelurahan[TEBET_TIMUR] == "Tebet Timur: 1"
    assert "1 laporan terbuka tanpa kelurahan tidak tampil di peta." in html
    assert 'style="' not in html, "the CSP allows no inline styles"


def test_an_area_admin_sees_their_area_only_in_their_language(gateway: RunningGateway) -> None:
    with Browser(gateway) as browser:
        assert browser.login("selatan").status_code == 303
        page = browser.http.get("/admin/dashboard", params={"days": 7})
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Dashboard</h1>" in html
    assert (figure(html, "open"), figure(html, "overdue"), figure(html, "received")) == ("1", "1", "1")
    assert "Received (7 days)" in html
    assert "twitter:dkijakarta" not in html and "Gambir: 0" in html


def test_figures_are_read_at_most_once_a_minute_per_scope(gateway: RunningGateway) -> None:
    with Browser(gateway) as browser:
        assert browser.login("kepala").status_code == 303
        first = browser.http.get("/admin/dashboard").text
        add_report(gateway.runtime.engine, channel_id="api:partner", kelurahan=GAMBIR)
        again = browser.http.get("/admin/dashboard").text
        assert figure(again, "open") == figure(first, "open") == "4", "the same figures, and the same 'as of' time"
        assert browser.http.get("/admin/dashboard", params={"days": 7}).status_code == 200
        gateway.app.state.dashboard_figures.clear()  # as a minute later
        assert figure(browser.http.get("/admin/dashboard").text, "open") == "5"


def test_signed_out_browsers_are_sent_to_the_login(gateway: RunningGateway) -> None:
    with Browser(gateway) as browser:
        page = browser.http.get("/admin/dashboard")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login?next=/admin/dashboard")


@pytest.mark.parametrize(
    ("seconds", "lang", "shown"),
    [
        (None, "id", "belum ada data"),
        (40 * 60, "id", "40 menit"),
        (3.5 * 3600, "id", "3,5 jam"),
        (3.5 * 3600, "en", "3.5 h"),
        (6.5 * 86400, "id", "6,5 hari"),
        (12_345 * 86400, "en", "12,345 days"),
    ],
)
def test_durations_read_naturally(seconds: float | None, lang: str, shown: str) -> None:
    from datetime import timedelta

    value = None if seconds is None else timedelta(seconds=seconds)
    assert duration_text(value, lang) == shown  # type: ignore[arg-type]
    assert number_for("en")(1234) == "1,234" and number_for("id")(1234) == "1.234"
