"""What the page helpers give other pages: the 403 for read-only roles, the scope notice, times in WIB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import SecretStr

from gateway.settings import KanalSettings
from review_queue import web
from review_queue.tables import AdminRole, AdminUser
from review_queue.web import WebActorDep, WebAdminDep, render, wib
from review_queue.web.render import SECURITY_HEADERS
from review_queue.web.session import current_web_admin, safe_next


def _app(admin: AdminUser) -> FastAPI:
    """The admin pages with `admin` signed in (no database: the session dependency is replaced)."""
    settings = KanalSettings(secret_key=SecretStr("test-secret-key-0123456789-abcdefghij"))
    app = FastAPI()
    app.state.kanal = SimpleNamespace(settings=settings)
    web.install(app, settings)
    app.dependency_overrides[current_web_admin] = lambda: admin

    @app.get("/admin/act")
    def act(request: Request, actor: WebActorDep) -> HTMLResponse:
        return render(request, "account.html", admin=actor, languages={}, can_act=True)

    @app.get("/admin/look")
    def look(request: Request, reader: WebAdminDep) -> HTMLResponse:
        return render(request, "account.html", admin=reader, languages={}, can_act=False)

    return app


def _get(app: FastAPI, path: str) -> httpx.Response:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanal") as client:
            return await client.get(path)

    return asyncio.run(run())


def _admin(role: AdminRole, language: str = "id") -> AdminUser:
    return AdminUser(username="vera", password_hash="-", role=role, scope_channels=["*"], language=language)


def test_a_viewer_gets_a_403_page_where_one_must_act() -> None:
    app = _app(_admin(AdminRole.VIEWER))
    refused = _get(app, "/admin/act")
    assert refused.status_code == 403
    assert "Pemantau (hanya baca)" in refused.text and "Minta superadmin" in refused.text
    assert all(refused.headers[name] == value for name, value in SECURITY_HEADERS.items())
    assert _get(app, "/admin/look").status_code == 200
    english = _app(_admin(AdminRole.VIEWER, language="en"))
    assert "Your role (Viewer (read only)) may read reports but not act on them" in _get(english, "/admin/act").text
    assert _get(_app(_admin(AdminRole.WILAYAH_ADMIN)), "/admin/act").status_code == 200


def test_an_empty_scope_is_said_on_every_page() -> None:
    nothing = AdminUser(username="kosong", password_hash="-", role=AdminRole.REVIEWER)
    page = _get(_app(nothing), "/admin/look")
    assert page.status_code == 200
    assert 'class="scope alert" role="alert"' in page.text
    assert "akun ini belum diberi kanal maupun wilayah" in page.text
    # The menu links the other helpers' pages, in the admin's language.
    assert all(f'href="/admin/{p}"' in page.text for p in ("queue", "intake", "dashboard", "audit"))
    assert ">Antrean<" in page.text and ">Input loket<" in page.text


def test_wib_formats_jakarta_time() -> None:
    assert wib(datetime(2026, 11, 28, 7, 5, tzinfo=UTC)) == "28/11/2026 14:05 WIB"
    assert wib(None) == "-"


def test_safe_next_keeps_admin_paths_only() -> None:
    assert safe_next("/admin/queue?state=pending_review") == "/admin/queue?state=pending_review"
    assert safe_next("/admin") == "/admin"
    for foreign in ("//evil.example", "https://evil.example/admin", "/\\evil", "/admin\x00", "/adminx", "", None):
        assert safe_next(foreign) is None, foreign
