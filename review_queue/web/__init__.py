"""The admin review pages: server-rendered HTML under /admin, no JavaScript build (docs/admin.md).

What a page module needs:

    from review_queue.web import CsrfDep, WebActorDep, WebAdminDep, render

    @router.get("/admin/queue")
    def queue(request: Request, admin: WebAdminDep) -> HTMLResponse:
        return render(request, "queue.html", admin=admin, items=...)

Forms carry `{{ csrf_field() }}`; the middleware installed here refuses any unsafe request under
/admin without it. Report queries go through `review_queue.accounts` (`scope_of(admin)`,
`Scope.report_clause()`, `get_report_in_scope`), so an admin never sees outside their scope.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.settings import KanalSettings
from review_queue.web import (
    pages_accounts,
    pages_audit,
    pages_auth,
    pages_dashboard,
    pages_intake,
    pages_notifications,
    pages_queue,
    pages_report,
)
from review_queue.web.csrf import CsrfDep, CsrfMiddleware, CsrfRefused
from review_queue.web.i18n import language_of, translate
from review_queue.web.render import STATIC_PATH, SecurityHeadersMiddleware, error_page, render, wib
from review_queue.web.session import (
    COOKIE_NAME,
    LoginRequired,
    LoginThrottle,
    NotAllowed,
    WebActorDep,
    WebAdminDep,
    clear_session_cookie,
    login_url,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"

__all__ = ["CsrfDep", "WebActorDep", "WebAdminDep", "install", "render", "wib"]


def install(app: FastAPI, settings: KanalSettings) -> None:
    """Add the admin pages' routes, static files, middleware and error pages to `app`."""
    app.state.admin_login_throttle = LoginThrottle(
        max_failures=settings.auth.login_ip_max_failures,
        window_seconds=settings.auth.login_failure_window_minutes * 60,
    )
    app.include_router(pages_auth.router)
    app.include_router(pages_queue.router)  # issue 6
    app.include_router(pages_report.router)  # issue 6
    app.include_router(pages_audit.router)
    app.include_router(pages_dashboard.router)
    app.include_router(pages_notifications.router)
    app.include_router(pages_intake.router)
    app.include_router(pages_accounts.router)  # superadmins: admin accounts
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="admin-static")
    # Added last = runs first: the headers middleware also covers the CSRF middleware's 403 pages.
    app.add_middleware(CsrfMiddleware, settings=settings, error_page=error_page)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        response = RedirectResponse(login_url(exc.next_path), status_code=303)
        if exc.had_cookie or COOKIE_NAME in request.cookies:
            clear_session_cookie(response, settings)  # a dead cookie would only be sent again and again
        return response

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, exc: NotAllowed) -> Response:
        role = translate(f"role.{exc.admin.role}", language_of(exc.admin))
        return error_page(request, "forbidden", 403, admin=exc.admin, role=role)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused) -> Response:
        return error_page(request, "csrf", 403)
