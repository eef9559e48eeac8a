"""Signing in and out of the admin pages, and the language switch.

- GET /admin: to the queue.
- GET /admin/login, POST /admin/login: the form; `next` brings the admin back to the page they asked for
  (admin pages of this site only).
- POST /admin/logout: ends the session (its row is deleted).
- GET /admin/account: the signed-in admin's role, scope and language, with the language form.
- POST /admin/language: the signed-in admin's language, "id" or "en".

Every refusal of a sign-in shows the same message, whether the name is unknown, the password wrong or
the account locked, so the form tells a guesser nothing. Each outcome is in the audit log.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.db import write_session
from gateway.deps import RuntimeDep
from review_queue import audit
from review_queue.accounts import can_act
from review_queue.audit import AuditAction
from review_queue.auth import check_password, settle_sign_in
from review_queue.tables import AdminUser
from review_queue.web.csrf import CsrfDep
from review_queue.web.i18n import LANGUAGE_NAMES, as_lang, register, translate
from review_queue.web.render import page_language, render
from review_queue.web.session import (
    HOME_PATH,
    LOGIN_PATH,
    LoginThrottle,
    WebAdminDep,
    clear_session_cookie,
    end_session,
    load_session,
    lockout_policy,
    safe_next,
    session_id_from_cookies,
    set_session_cookie,
    start_session,
)

router = APIRouter(include_in_schema=False)

register(
    {
        "account.title": {"id": "Akun saya", "en": "My account"},
        "account.role": {"id": "Peran", "en": "Role"},
        "account.can_act": {
            "id": "Boleh memproses laporan dalam cakupan ini.",
            "en": "May act on the reports in this scope.",
        },
        "account.read_only": {"id": "Hanya boleh melihat laporan.", "en": "May read reports only."},
        "account.save_language": {"id": "Simpan bahasa", "en": "Save language"},
    }
)

#: Longer input is refused unread: argon2 would hash a megabyte of "password" just the same.
_MAX_USERNAME, _MAX_PASSWORD = 200, 1000


def client_ip(request: Request) -> str | None:
    """The client's address (uvicorn has already applied X-Forwarded-For from `forwarded_allow_ips`)."""
    return request.client.host if request.client else None


@router.get("/admin")
def landing() -> RedirectResponse:
    return RedirectResponse(HOME_PATH, status_code=303)


@router.get("/admin/login")
async def login_form(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    session_id = session_id_from_cookies(runtime.settings, request.cookies)
    if session_id is not None:
        live = await asyncio.to_thread(load_session, runtime.engine, session_id, runtime.settings.auth)
        if live is not None:  # already signed in: straight on
            return RedirectResponse(safe_next(next) or HOME_PATH, status_code=303)
    return _login_page(request, 200, next=next, username="", error=None)


def _login_page(request: Request, status_code: int, *, next: str | None, username: str, error: str | None) -> Response:
    return render(
        request,
        "login.html",
        admin=None,
        status_code=status_code,
        next=safe_next(next) or "",
        username=username,
        error=error,
    )


@router.post("/admin/login")
async def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    settings = runtime.settings
    lang = page_language(request, None)
    ip = client_ip(request)
    throttle: LoginThrottle = request.app.state.admin_login_throttle
    shown_name = username.strip()[:100]
    if throttle.blocked(ip):
        return _login_page(request, 429, next=next, username=shown_name, error=translate("login.throttled", lang))
    if len(username) > _MAX_USERNAME or len(password) > _MAX_PASSWORD:
        username, password = username[:_MAX_USERNAME], ""  # counted as a failure like any other
    attempt = await asyncio.to_thread(check_password, runtime.engine, username=username, password=password)
    user_agent = request.headers.get("user-agent")
    previous = session_id_from_cookies(settings, request.cookies)

    def settle() -> str | None:
        with write_session(runtime.engine) as session:
            admin = settle_sign_in(session, attempt, policy=lockout_policy(settings.auth), ip=ip, via="web")
            if admin is None:
                return None
            if previous is not None:  # this browser's earlier session is replaced, not left behind
                end_session(session, previous)
            return start_session(session, admin, settings=settings, ip=ip, user_agent=user_agent)

    cookie = await runtime.writes.run(settle, urgent=True)  # someone is waiting at the form
    if cookie is None:
        throttle.failed(ip)
        error = translate("login.failed", lang, minutes=f"{settings.auth.lockout_minutes:g}")
        return _login_page(request, 401, next=next, username=shown_name, error=error)
    response = RedirectResponse(safe_next(next) or HOME_PATH, status_code=303)
    set_session_cookie(response, settings, cookie)
    return response


@router.post("/admin/logout")
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    """Ends this browser's session, if it has one, and goes to the login form."""
    session_id = session_id_from_cookies(runtime.settings, request.cookies)
    if session_id is not None:
        ip = client_ip(request)

        def end() -> None:
            with write_session(runtime.engine) as session:
                admin = end_session(session, session_id)
                if admin is not None:
                    audit.record(
                        session,
                        actor=admin,
                        action=AuditAction.LOGOUT,
                        target_type="admin_user",
                        target_id=admin.id,
                        ip=ip,
                    )

        await runtime.writes.run(end, urgent=True)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response


@router.get("/admin/account")
def account(request: Request, admin: WebAdminDep) -> Response:
    """The signed-in admin's account: role, scope (what they see) and language."""
    return render(request, "account.html", admin=admin, languages=LANGUAGE_NAMES, can_act=can_act(admin))


@router.post("/admin/language")
async def change_language(
    request: Request,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    _csrf: CsrfDep,
    language: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Sets the admin's language and goes back to the page the switch was on."""
    chosen = as_lang(language)
    if chosen is not None and chosen != admin.language:
        ip = client_ip(request)

        def save() -> None:
            with write_session(runtime.engine) as session:
                stored = session.get(AdminUser, admin.id)
                if stored is None:
                    return
                before = stored.language
                stored.language = chosen
                session.add(stored)
                audit.record(
                    session,
                    actor=stored,
                    action=AuditAction.LANGUAGE_CHANGED,
                    target_type="admin_user",
                    target_id=stored.id,
                    detail={"from": before, "to": chosen},
                    ip=ip,
                )

        await runtime.writes.run(save, urgent=True)
    return RedirectResponse(safe_next(next) or HOME_PATH, status_code=303)
