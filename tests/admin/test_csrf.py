"""Every unsafe request under /admin needs the page's CSRF token; without it nothing happens (both engines)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlmodel import col

from gateway.db import read_session
from gateway.settings import KanalSettings
from review_queue import web
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, AdminSession, AdminUser
from review_queue.web import CsrfDep
from review_queue.web.csrf import session_token
from review_queue.web.session import cookie_value, token_hash
from tests.admin.support import PASSWORD, Browser, admin_gateway, audit_rows, csrf_token_in

RELOAD = "Muat ulang halaman lalu coba lagi"


def _language(engine: Engine, username: str = "rina") -> str:
    with read_session(engine) as session:
        query = select(col(AdminUser.language)).where(col(AdminUser.username) == username)
        return session.execute(query).scalar_one()


def _session_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.execute(select(func.count()).select_from(AdminSession)).scalar_one()


def test_a_post_without_the_right_token_is_refused_and_changes_nothing(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser, Browser(gateway) as other:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        create_admin(engine, username="sari", password=PASSWORD, role=AdminRole.REVIEWER)
        assert browser.login("rina").status_code == 303
        assert other.login("sari").status_code == 303
        mine, theirs = browser.session_token(), other.session_token()
        assert mine != theirs, "one token per session"

        refusals = [
            browser.http.post("/admin/language", data={"language": "en"}),
            browser.http.post("/admin/language", data={"language": "en", "csrf_token": ""}),
            browser.http.post("/admin/language", data={"language": "en", "csrf_token": theirs}),
            browser.http.post("/admin/language", data={"language": "en", "csrf_token": mine[:-1]}),
            browser.http.post("/admin/language", headers={"X-CSRF-Token": theirs}, data={"language": "en"}),
            browser.http.post("/admin/language", json={"language": "en", "csrf_token": mine}),  # not a form
            browser.http.put("/admin/language", data={"language": "en"}),
            browser.http.delete("/admin/account"),
        ]
        for refused in refusals:
            assert refused.status_code == 403, (refused.request.method, refused.text)
            assert RELOAD in refused.text
        assert _language(engine) == "id"
        assert audit_rows(engine, "language_changed") == []

        # Signing out is a POST too: without the token the session survives.
        assert browser.http.post("/admin/logout").status_code == 403
        assert browser.http.get("/admin/account").status_code == 200

        accepted = browser.http.post("/admin/language", data={"language": "en", "csrf_token": mine})
        assert accepted.status_code == 303
        assert _language(engine) == "en"


def test_the_token_may_come_in_a_header_or_a_multipart_form(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        assert browser.login("rina").status_code == 303
        token = browser.session_token()
        # As fetch() sends it (admin.js: kanalAdmin.csrfHeaders()).
        by_header = browser.http.post("/admin/language", headers={"X-CSRF-Token": token}, data={"language": "en"})
        assert by_header.status_code == 303
        assert _language(engine) == "en"
        # A form with a file (the walk-in desk's photos): the token is read from the multipart body, and
        # the route still gets the whole body.
        multipart = browser.http.post(
            "/admin/language",
            data={"language": "id", "csrf_token": token},
            files={"photo": ("foto.jpg", b"\xff\xd8\xff" + b"\x00" * 5000, "image/jpeg")},
        )
        assert multipart.status_code == 303, multipart.text
        assert _language(engine) == "id"
        no_token = browser.http.post(
            "/admin/language", data={"language": "en"}, files={"photo": ("foto.jpg", b"\xff\xd8", "image/jpeg")}
        )
        assert no_token.status_code == 403
        assert _language(engine) == "id"


def test_the_login_form_needs_its_own_token(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        form = browser.http.get("/admin/login")
        token = csrf_token_in(form)
        credentials = {"username": "rina", "password": PASSWORD}

        # A page on another site posting the victim's browser into the attacker's account: no token.
        assert browser.http.post("/admin/login", data=credentials).status_code == 403
        # A token without the cookie it was made for (another browser's) is worth nothing.
        with httpx.Client(base_url=gateway.url) as stranger:
            refused = stranger.post("/admin/login", data={**credentials, "csrf_token": token})
        assert refused.status_code == 403
        assert _session_count(engine) == 0 and audit_rows(engine) == []

        assert browser.http.post("/admin/login", data={**credentials, "csrf_token": token}).status_code == 303


def test_csrf_dep_guards_a_form_route_outside_admin() -> None:
    settings = KanalSettings(secret_key=SecretStr("test-secret-key-0123456789-abcdefghij"))
    app = FastAPI()
    app.state.kanal = SimpleNamespace(settings=settings)
    web.install(app, settings)

    @app.post("/elsewhere")
    def elsewhere(_csrf: CsrfDep) -> dict[str, bool]:
        return {"done": True}

    async def post(cookie: str | None = None, **kwargs: Any) -> httpx.Response:
        cookies = {"kanal_admin": cookie} if cookie else None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kanal", cookies=cookies) as client:
            return await client.post("/elsewhere", **kwargs)

    refused = asyncio.run(post(data={"x": "1"}))
    assert refused.status_code == 403 and RELOAD in refused.text
    token = session_token(settings, token_hash("t"))
    assert asyncio.run(post("t.forged", data={"csrf_token": token})).status_code == 403
    signed = cookie_value(settings, "t")  # as the login would have set it
    assert asyncio.run(post(signed, data={"csrf_token": token})).json() == {"done": True}
    assert asyncio.run(post(signed, headers={"X-CSRF-Token": token})).json() == {"done": True}
