"""The public status page: `GET /status` (look-up form) and `GET /status/{ticket}` (one report).

A citizen types the ticket code they were given, as they remember it ("k7f3q 9q2mx" finds K7F3Q-9Q2MX);
a follow-up's ticket shows the report it joined. The page shows masked text only and no contact,
is escaped throughout (Jinja2 autoescape), runs no script, and is the same 404 for any unknown code.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import col, select

from gateway.db import read_session
from gateway.deps import RuntimeDep
from gateway.ids import canonical_ticket_code
from gateway.runtime import Runtime
from gateway.status_page import Lang, PublicStatus, public_status
from review_queue import service
from review_queue.tables import ReportEvent

router = APIRouter(tags=["status page"])

_templates = Environment(
    loader=PackageLoader("gateway", "templates/status"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


def _page(template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(nonce=nonce, **context)
    return HTMLResponse(
        html,
        status_code,
        headers={
            "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",  # the ticket is in the URL: do not hand it to other sites
            "Cache-Control": "no-store",
        },
    )


def _lang(value: str | None) -> Lang:
    return "en" if value == "en" else "id"


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
def lookup(ticket: str | None = None, lang: str | None = Query(default=None)) -> Response:
    language = _lang(lang)
    if ticket is None:
        return _page("lookup.html", lang=language, title="Status", typed="", problem=None)
    code = canonical_ticket_code(ticket)
    if not code:
        problem = (
            "Nomor tiket terdiri dari 10 huruf/angka, misalnya K7F3Q-9Q2MX. Periksa kembali pesan konfirmasi Anda."
            if language == "id"
            else "A ticket code has 10 letters and digits, like K7F3Q-9Q2MX. Check your confirmation message."
        )
        return _page("lookup.html", 400, lang=language, title="Status", typed=ticket[:40], problem=problem)
    return RedirectResponse(f"/status/{quote(code)}?lang={language}", status_code=303)


@router.get("/status/{ticket}", response_class=HTMLResponse, include_in_schema=False)
async def report_status(ticket: str, runtime: RuntimeDep, lang: str | None = Query(default=None)) -> Response:
    language = _lang(lang)
    found = await asyncio.to_thread(_load, runtime, ticket, language)
    if found is None:
        problem = (
            "Laporan dengan nomor tiket itu tidak ditemukan. Periksa kembali nomornya; laporan yang baru masuk "
            "mungkin perlu beberapa detik sebelum muncul."
            if language == "id"
            else "No report has that ticket code. Check the code; a report that just came in may take a few "
            "seconds to appear."
        )
        return _page("lookup.html", 404, lang=language, title="Status", typed=ticket[:40], problem=problem)
    return _page("report.html", lang=language, title=found.ticket_code, s=found)


def _load(runtime: Runtime, ticket: str, lang: Lang) -> PublicStatus | None:
    if not canonical_ticket_code(ticket):
        return None  # only ticket codes: a report's internal id is not a public handle
    with read_session(runtime.engine) as session:
        try:
            report = service.get_report(session, ticket)
        except service.ReportNotFound:
            return None
        events = list(
            session.execute(
                select(ReportEvent)
                .where(col(ReportEvent.report_id) == report.id)
                .order_by(col(ReportEvent.at), col(ReportEvent.id))
            ).scalars()
        )
        return public_status(report, events, lang)
