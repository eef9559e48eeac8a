"""Rendering the admin pages: one Jinja2 environment (autoescape always on), `render`, and the headers.

Templates live in review_queue/web/templates and extend `base.html`. Every template gets:

- `t(key, **params)`: the text of `key` in the admin's language (review_queue/web/i18n.py);
- `wib(moment)`: a UTC time as people in Jakarta read it, "28/11/2026 14:05 WIB";
- `csrf_field()`: the hidden CSRF input every form must carry; `csrf_token()`: the bare token, for
  fetch() calls (header `X-CSRF-Token`);
- `admin` (the signed-in AdminUser, or None), `scope` (their Scope) and `scope_text` (it, described);
- `nav`: the main menu (`NavItem`s), `lang` ("id" or "en"), `request`, and `here` (this page's path
  and query: the `next` of forms that come back to it).

The Content-Security-Policy allows scripts and styles from /admin/static only: no inline `<script>`,
no `style="..."` attributes, no `on...=` handlers in templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import KanalSettings
from review_queue.accounts import scope_of
from review_queue.tables import AdminUser
from review_queue.web import csrf
from review_queue.web.i18n import Lang, as_lang, language_of, translate

WIB = ZoneInfo("Asia/Jakarta")
STATIC_PATH = "/admin/static"

#: On every response under /admin (set by `SecurityHeadersMiddleware`, and by `render` itself).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # Pages show personal data: no copy may stay in a shared browser's or proxy's cache.
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str
    active: bool
    #: A number shown beside the label (the unread notifications); None: nothing.
    badge: int | None = None


#: The main menu: (i18n key, path). The pages come from their own modules.
NAV: tuple[tuple[str, str], ...] = (
    ("nav.queue", "/admin/queue"),
    ("nav.intake", "/admin/intake"),
    ("nav.dashboard", "/admin/dashboard"),
    ("nav.audit", "/admin/audit"),
    ("nav.notifications", "/admin/notifications"),
)


@cache
def environment() -> Environment:
    """The admin pages' Jinja2 environment. Undefined names fail loudly instead of rendering as ""."""
    return Environment(
        loader=PackageLoader("review_queue.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def wib(moment: datetime | None) -> str:
    """`moment` (timezone-aware) in Asia/Jakarta, as "28/11/2026 14:05 WIB"; "-" for None."""
    if moment is None:
        return "-"
    return moment.astimezone(WIB).strftime("%d/%m/%Y %H:%M WIB")


def page_language(request: HTTPConnection, admin: AdminUser | None) -> Lang:
    """The admin's language; before sign-in, `?lang=en` or Bahasa Indonesia."""
    if admin is not None:
        return language_of(admin)
    return as_lang(request.query_params.get("lang")) or "id"


def nav_items(path: str, lang: Lang, *, unread: int = 0) -> list[NavItem]:
    return [
        NavItem(
            key=key,
            label=translate(key, lang),
            href=href,
            active=path == href or path.startswith(href + "/"),
            badge=unread if key == "nav.notifications" and unread else None,
        )
        for key, href in NAV
    ]


def _settings(request: HTTPConnection) -> KanalSettings:
    settings: KanalSettings = request.app.state.kanal.settings
    return settings


def render(
    request: Request, template: str, *, admin: AdminUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render `template` with the helpers above plus `context`, as an HTMLResponse with the security headers.

    :param admin: the signed-in admin (from `WebAdminDep`), or None on pages before sign-in.
    """
    settings = _settings(request)
    lang = page_language(request, admin)
    scope = scope_of(admin) if admin is not None else None

    def csrf_token() -> str:
        return csrf.token_for(request, settings)

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(csrf.FIELD, escape(csrf_token()))

    def t(key: str, **params: object) -> str:
        return translate(key, lang, **params)

    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            admin=admin,
            scope=scope,
            scope_text=scope.describe(lang) if scope is not None else "",
            lang=lang,
            t=t,
            wib=wib,
            csrf_field=csrf_field,
            csrf_token=csrf_token,
            # The unread count was read with the session (review_queue/web/session.py, load_session).
            nav=nav_items(request.url.path, lang, unread=getattr(request.state, "unread_notifications", 0))
            if admin is not None
            else [],
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    csrf.set_login_cookie_if_new(request, response, settings)
    return response


def error_page(
    request: HTTPConnection, kind: str, status_code: int, *, admin: AdminUser | None = None, **params: object
) -> HTMLResponse:
    """A page saying what went wrong and what to do: `kind` is "csrf", "forbidden" or "too_large".

    In `admin`'s language (default: the admin a page dependency left on the request, if any).
    """
    lang = page_language(request, admin or getattr(request.state, "admin", None))
    if kind == "too_large":
        params.setdefault("megabytes", csrf.MAX_FORM_BYTES // (1024 * 1024))
    html = (
        environment()
        .get_template("error.html")
        .render(
            request=request,
            here=request.url.path,
            admin=None,  # no menu: the page stands alone, whatever the session
            scope=None,
            scope_text="",
            lang=lang,
            t=lambda key, **p: translate(key, lang, **p),
            wib=wib,
            csrf_field=lambda: Markup(""),
            csrf_token=lambda: "",
            nav=[],
            title=translate(f"error.{kind}.title", lang),
            message=translate(f"error.{kind}.message", lang, **params),
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """ASGI middleware: `SECURITY_HEADERS` on every response under /admin, whoever made it.

    Static files may be cached but must be revalidated, so a new admin.js reaches every browser.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not csrf.is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PATH + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if static:
                    headers["Cache-Control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)
