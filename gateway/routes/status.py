"""The public status page: `GET /status` (look-up form) and `GET /status/{ticket}` (one report).

A citizen types the ticket code they were given, as they remember it ("k7f3q 9q2mx" finds K7F3Q-9Q2MX);
a follow-up's ticket shows the report it joined, and a report an admin merged into another (the same
problem, reported twice) shows that report's progress under the citizen's own ticket. The page shows
masked text only and no contact, is escaped throughout (Jinja2 autoescape), runs no script, and is the
same 404 for any unknown code.

Guessing codes is slowed per client address (`status_page` settings, `LookupBudget`): each address
has a small bucket of look-ups that refills over time; an unknown or malformed code costs more than a
found one. An empty bucket answers 429 with Retry-After and a page saying how long to wait.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections import OrderedDict
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session, col, select

from adapters.web_form import client_key
from gateway.db import read_session
from gateway.deps import RuntimeDep
from gateway.ids import canonical_ticket_code
from gateway.runtime import Runtime
from gateway.settings import StatusPageConfig
from gateway.status_page import Lang, PublicStatus, public_status
from review_queue import service
from review_queue.tables import Report, ReportEvent, ReportState

router = APIRouter(tags=["status page"])

_templates = Environment(
    loader=PackageLoader("gateway", "templates/status"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


def _page(
    template: str, status_code: int = 200, *, extra_headers: dict[str, str] | None = None, **context: object
) -> HTMLResponse:
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
            **(extra_headers or {}),
        },
    )


class LookupBudget:
    """Look-ups each client key may make: a bucket of `burst` that refills at `per_minute`, in memory.

    `take` spends one look-up before the database is read (so a burst of parallel requests cannot all
    pass); `charge` spends more afterwards for a miss. The balance may go below zero, down to `-burst`,
    so a run of misses means a longer wait, never an unbounded one. Thread-safe; at most `max_clients`
    keys are kept, the longest-unseen forgotten first (which can only let that client in early).
    """

    def __init__(self, *, burst: int, per_minute: float, max_clients: int = 10_000) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0  # look-ups per second
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (balance, as of)
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> int:
        """Spend one look-up and return 0, or spend nothing and return the seconds to wait."""
        with self._lock:
            balance = self._balance(key, now)
            if balance < 1:
                self._store(key, balance, now)
                return max(1, math.ceil((1 - balance) / self.rate))
            self._store(key, balance - 1, now)
            return 0

    def wait(self, key: str, now: float) -> int:
        """The seconds until `key` may look up again; 0: now. Spends nothing."""
        with self._lock:
            balance = self._balance(key, now)
        return 0 if balance >= 1 else max(1, math.ceil((1 - balance) / self.rate))

    def charge(self, key: str, cost: float, now: float) -> None:
        """Spend `cost` more look-ups (a miss costs more than the one `take` spent)."""
        if cost <= 0:
            return
        with self._lock:
            self._store(key, max(-self.burst, self._balance(key, now) - cost), now)

    def _balance(self, key: str, now: float) -> float:
        stored = self._buckets.get(key)
        if stored is None:
            return self.burst
        balance, since = stored
        return min(self.burst, balance + max(0.0, now - since) * self.rate)

    def _store(self, key: str, balance: float, now: float) -> None:
        self._buckets[key] = (balance, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


_budget_lock = threading.Lock()


def _budget(request: Request, config: StatusPageConfig) -> LookupBudget | None:
    """This app's budget (made on first use, with the app's settings); None when the limit is off."""
    if not config.enabled:
        return None
    budget: LookupBudget | None = getattr(request.app.state, "status_page_budget", None)
    if budget is None:
        with _budget_lock:
            budget = getattr(request.app.state, "status_page_budget", None)
            if budget is None:
                budget = LookupBudget(burst=config.burst, per_minute=config.per_minute, max_clients=config.max_clients)
                request.app.state.status_page_budget = budget
    return budget


def _client(request: Request) -> str:
    # uvicorn has already replaced the address with X-Forwarded-For's when the peer is one of
    # `forwarded_allow_ips`; IPv6 clients count per /64, as for the web form.
    return client_key(request.client.host if request.client else "")


def _throttled(language: Lang, wait: int) -> HTMLResponse:
    return _page(
        "throttled.html",
        429,
        extra_headers={"Retry-After": str(wait)},
        lang=language,
        title="Status",
        minutes=max(1, math.ceil(wait / 60)),
        seconds=wait,
    )


def _lang(value: str | None) -> Lang:
    return "en" if value == "en" else "id"


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
def lookup(
    request: Request, runtime: RuntimeDep, ticket: str | None = None, lang: str | None = Query(default=None)
) -> Response:
    language = _lang(lang)
    if ticket is None:
        return _page("lookup.html", lang=language, title="Status", typed="", problem=None)
    config = runtime.settings.status_page
    budget, client, now = _budget(request, config), _client(request), time.monotonic()
    code = canonical_ticket_code(ticket)
    if budget is not None:
        # A well-formed code is only sent on to /status/{code}, which counts that look-up: here it is
        # only checked, so an empty bucket is told now rather than after the redirect.
        wait = budget.wait(client, now) if code else budget.take(client, now)
        if wait:
            return _throttled(language, wait)
    if not code:
        if budget is not None:
            budget.charge(client, config.miss_cost - 1, now)
        problem = (
            "Nomor tiket terdiri dari 10 huruf/angka, misalnya K7F3Q-9Q2MX. Periksa kembali pesan konfirmasi Anda."
            if language == "id"
            else "A ticket code has 10 letters and digits, like K7F3Q-9Q2MX. Check your confirmation message."
        )
        return _page("lookup.html", 400, lang=language, title="Status", typed=ticket[:40], problem=problem)
    return RedirectResponse(f"/status/{quote(code)}?lang={language}", status_code=303)


@router.get("/status/{ticket}", response_class=HTMLResponse, include_in_schema=False)
async def report_status(
    request: Request, ticket: str, runtime: RuntimeDep, lang: str | None = Query(default=None)
) -> Response:
    language = _lang(lang)
    config = runtime.settings.status_page
    budget, client = _budget(request, config), _client(request)
    if budget is not None and (wait := budget.take(client, time.monotonic())):
        return _throttled(language, wait)
    found = await asyncio.to_thread(_load, runtime, ticket, language)
    if found is None:
        if budget is not None:
            budget.charge(client, config.miss_cost - 1, time.monotonic())
        problem = (
            "Laporan dengan nomor tiket itu tidak ditemukan. Periksa kembali nomornya; laporan yang baru masuk "
            "mungkin perlu beberapa detik sebelum muncul."
            if language == "id"
            else "No report has that ticket code. Check the code; a report that just came in may take a few "
            "seconds to appear."
        )
        return _page("lookup.html", 404, lang=language, title="Status", typed=ticket[:40], problem=problem)
    return _page("report.html", lang=language, title=found.ticket_code, s=found)


_MAX_MERGE_HOPS = 10


def _load(runtime: Runtime, ticket: str, lang: Lang) -> PublicStatus | None:
    if not canonical_ticket_code(ticket):
        return None  # only ticket codes: a report's internal id is not a public handle
    with read_session(runtime.engine) as session:
        try:
            report = service.get_report(session, ticket)
        except service.ReportNotFound:
            return None
        primary = None
        head = report
        # Its citizen follows the report it joined. A report that had others merged into it may itself be
        # merged later, so the chain is followed to its open end (bounded, against a corrupted loop).
        for _ in range(_MAX_MERGE_HOPS):
            if head.state != ReportState.MERGED or not head.duplicate_of:
                break
            joined = session.get(Report, head.duplicate_of)
            if joined is None:
                break
            head = joined
        if head is not report:
            primary = (head, _history(session, head.id))
        return public_status(report, _history(session, report.id), lang, primary=primary)


def _history(session: Session, report_id: str) -> list[ReportEvent]:
    return list(
        session.execute(
            select(ReportEvent)
            .where(col(ReportEvent.report_id) == report_id)
            .order_by(col(ReportEvent.at), col(ReportEvent.id))
        ).scalars()
    )
