"""Cross-site request forgery protection for everything under /admin.

`CsrfMiddleware` checks every POST, PUT, PATCH and DELETE under /admin before any route runs, so a
new form cannot forget the check. The token it expects:

- signed in: HMAC of the session id (from the `kanal_admin` cookie) under a key derived from
  `secret_key`: one token per session, nothing stored;
- the login form (no session yet): HMAC of a random value kept in the `kanal_admin_csrf` cookie,
  which the login page sets. A site that plants that cookie still cannot compute the token.

The token travels in the form field `csrf_token` (templates: `{{ csrf_field() }}`) or, for fetch()
calls, in the `X-CSRF-Token` header (templates: `{{ csrf_token() }}`, also in
`<meta name="csrf-token">`). It is compared in constant time. Missing or wrong: a 403 page that says to
reload the page and try again, and the route never runs.

`CsrfDep` is for routes mounted outside /admin that take forms: it checks the same token, and costs
nothing where the middleware already did.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, MutableMapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.plugins import derive_secret
from gateway.settings import KanalSettings
from review_queue.web.session import LOGIN_PATH, cookie_secure, session_id_from_cookies

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "kanal_admin_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Largest form body the check reads (it must read a form to find the field). Walk-in intake forms
#: carry photos; anything larger is refused with a 413 page before a route sees it.
MAX_FORM_BYTES = 50 * 1024 * 1024

ErrorPage = Callable[[HTTPConnection, str, int], Response]


class CsrfRefused(Exception):
    """The request's CSRF token is missing or wrong (raised by `CsrfDep`; shown as a 403 page)."""


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def _key(settings: KanalSettings) -> bytes:
    return derive_secret(settings, "admin-csrf")


def _mac(settings: KanalSettings, message: str) -> str:
    return hmac.new(_key(settings), message.encode(), hashlib.sha256).hexdigest()


def session_token(settings: KanalSettings, session_id: str) -> str:
    """The CSRF token of the session `session_id`."""
    return _mac(settings, f"session:{session_id}")


def login_token(settings: KanalSettings, nonce: str) -> str:
    """The CSRF token of a login form whose browser holds `nonce` in the `kanal_admin_csrf` cookie."""
    return _mac(settings, f"login:{nonce}")


def expected_token(settings: KanalSettings, path: str, cookies: dict[str, str]) -> str | None:
    """The token a request to `path` carrying `cookies` must present; None: no token can be right."""
    if path == LOGIN_PATH:
        nonce = cookies.get(LOGIN_COOKIE)
        return login_token(settings, nonce) if nonce and len(nonce) <= 100 else None
    session_id = session_id_from_cookies(settings, cookies)
    return session_token(settings, session_id) if session_id else None


def token_for(request: Request, settings: KanalSettings) -> str:
    """The token the page being rendered for `request` puts in its forms.

    On the login page without a `kanal_admin_csrf` cookie, mints one and leaves it in
    `request.state.new_login_nonce` for `set_login_cookie_if_new`. Elsewhere without a session: "",
    which no check accepts (such a page has nothing to protect).
    """
    if request.url.path == LOGIN_PATH:
        nonce = getattr(request.state, "new_login_nonce", None) or request.cookies.get(LOGIN_COOKIE)
        if not nonce or len(nonce) > 100:
            nonce = request.state.new_login_nonce = secrets.token_urlsafe(24)
        return login_token(settings, nonce)
    return expected_token(settings, request.url.path, request.cookies) or ""


def set_login_cookie_if_new(request: Request, response: Response, settings: KanalSettings) -> None:
    nonce = getattr(request.state, "new_login_nonce", None)
    if nonce:
        response.set_cookie(
            LOGIN_COOKIE, nonce, path=LOGIN_PATH, httponly=True, samesite="lax", secure=cookie_secure(settings)
        )


def _accepts(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class CsrfMiddleware:
    """ASGI middleware: refuses unsafe requests under /admin without the right token (see the module doc)."""

    def __init__(self, app: ASGIApp, *, settings: KanalSettings, error_page: ErrorPage) -> None:
        self.app = app
        self.settings = settings
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS or not is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        expected = expected_token(self.settings, scope["path"], connection.cookies)
        given = connection.headers.get(HEADER)
        if given is None and expected is not None and _is_form(connection.headers):
            body = await _read_body(receive, connection.headers)
            if body is None:
                await self.error_page(connection, "too_large", 413)(scope, receive, send)
                return
            given = await _form_field(scope, body)
            receive = _replay(body, receive)
        if not _accepts(expected, given):
            await self.error_page(connection, "csrf", 403)(scope, receive, send)
            return
        scope.setdefault("state", {})["csrf_checked"] = True
        await self.app(scope, receive, send)


def _is_form(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("application/x-www-form-urlencoded", "multipart/form-data")


async def _read_body(receive: Receive, headers: Headers) -> bytes | None:
    """The whole body, or None if it is larger than MAX_FORM_BYTES (or the client went away)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def _form_field(scope: Scope, body: bytes) -> str | None:
    headers = Headers(scope=scope)
    if headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if name == FIELD:
                return value
        return None
    # multipart: Starlette's parser, fed from the buffered body, then closed (it may spool files to disk).
    request = StarletteRequest(dict(scope), receive=_replay(body, _disconnected))
    try:
        async with request.form(max_files=1000, max_fields=1000) as form:
            field = form.get(FIELD)
            return field if isinstance(field, str) else None
    except Exception:  # a malformed body has no readable token; the route would refuse it anyway
        return None


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then defers to the original (for disconnects)."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def require_csrf(request: Request) -> None:
    """Dependency: the request carries the right CSRF token (already checked by the middleware under /admin)."""
    if request.scope.get("state", {}).get("csrf_checked"):
        return
    settings: KanalSettings = request.app.state.kanal.settings
    expected = expected_token(settings, request.url.path, request.cookies)
    given = request.headers.get(HEADER)
    if given is None and _is_form(request.headers):
        field = (await request.form()).get(FIELD)
        given = field if isinstance(field, str) else None
    if not _accepts(expected, given):
        raise CsrfRefused()


CsrfDep = Annotated[None, Depends(require_csrf)]

__all__ = [
    "FIELD",
    "HEADER",
    "CsrfDep",
    "CsrfMiddleware",
    "CsrfRefused",
    "expected_token",
    "session_token",
    "token_for",
]
