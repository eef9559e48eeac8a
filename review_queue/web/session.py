"""Signed-in browsers of the admin pages: the session cookie, its database row, and page dependencies.

The cookie `kanal_admin` holds `<token>.<signature>`: a random token and its HMAC under a key derived
from `secret_key`, so a forged or altered cookie is refused before any database read. The database
keeps only the token's SHA-256 (`admin_session`), so a leaked table does not leak sessions. A session
ends after `auth.session_idle_minutes` without a request, `auth.session_lifetime_hours` after sign-in,
or at sign-out, which deletes its row.

For page routes:

- `WebAdminDep`: the signed-in admin; without a live session the browser is sent (303) to
  `/admin/login?next=<this page>`.
- `WebActorDep`: the same, and the admin may act on reports; otherwise a 403 page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from sqlalchemy import Engine, delete, or_, select, update
from sqlmodel import Session, col
from starlette.requests import HTTPConnection
from starlette.responses import Response

from gateway.db import read_session, utcnow, write_session
from gateway.deps import RuntimeDep
from gateway.plugins import derive_secret
from gateway.settings import AuthConfig, KanalSettings
from review_queue import admin_inbox
from review_queue.accounts import can_act
from review_queue.auth import LockoutPolicy
from review_queue.tables import AdminSession, AdminUser

COOKIE_NAME = "kanal_admin"
COOKIE_PATH = "/admin"
LOGIN_PATH = "/admin/login"
LOGOUT_PATH = "/admin/logout"
#: Where a signed-in admin lands when no (acceptable) `next` was given.
HOME_PATH = "/admin/queue"
#: `last_seen_at` is written at most this often per session (or a quarter of the idle timeout, if
#: shorter), not on every page view.
TOUCH_INTERVAL = timedelta(seconds=60)


class LoginRequired(Exception):
    """No live session: the page answers 303 to the login form, which comes back to `next_path`."""

    def __init__(self, next_path: str | None, *, had_cookie: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.had_cookie = had_cookie


class NotAllowed(Exception):
    """The signed-in admin's role may not do this; the page answers 403."""

    def __init__(self, admin: AdminUser) -> None:
        super().__init__(admin.role)
        self.admin = admin


# -- the cookie -------------------------------------------------------------------------------------


def _cookie_key(settings: KanalSettings) -> bytes:
    return derive_secret(settings, "admin-session-cookie")


def _sign(settings: KanalSettings, token: str) -> str:
    digest = hmac.new(_cookie_key(settings), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def cookie_value(settings: KanalSettings, token: str) -> str:
    """The `kanal_admin` cookie's value for the session token `token`: the token and its signature."""
    return f"{token}.{_sign(settings, token)}"


def token_hash(token: str) -> str:
    """The stored form of a session token (its SHA-256, hex): also the session's id."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_id_from_cookies(settings: KanalSettings, cookies: dict[str, str]) -> str | None:
    """The session id (token hash) named by a correctly signed `kanal_admin` cookie; None otherwise.

    Reads no database: says only that this deployment issued the cookie, not that the session lives.
    """
    value = cookies.get(COOKIE_NAME)
    if not value or len(value) > 200:
        return None
    token, dot, signature = value.rpartition(".")
    if not dot or not token or not hmac.compare_digest(signature, _sign(settings, token)):
        return None
    return token_hash(token)


def cookie_secure(settings: KanalSettings) -> bool:
    """The cookie's Secure flag: the `auth.cookie_secure` setting, or with "auto" whether the site is https."""
    configured = settings.auth.cookie_secure
    if configured == "auto":
        return settings.public_base_url.lower().startswith("https://")
    return bool(configured)


def set_session_cookie(response: Response, settings: KanalSettings, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=int(settings.auth.session_lifetime_hours * 3600),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(settings),
    )


def clear_session_cookie(response: Response, settings: KanalSettings) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="lax", secure=cookie_secure(settings))


# -- the database row -------------------------------------------------------------------------------


def start_session(
    session: Session, admin: AdminUser, *, settings: KanalSettings, ip: str | None, user_agent: str | None
) -> str:
    """Store a new session for `admin` in the caller's write transaction; return the cookie's value.

    Also removes sessions that have ended, so the table holds only live ones (and those idle since).
    """
    now = utcnow()
    auth = settings.auth
    session.execute(
        delete(AdminSession).where(
            or_(
                col(AdminSession.expires_at) < now,
                col(AdminSession.last_seen_at) < now - timedelta(minutes=auth.session_idle_minutes),
            )
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            token_hash=token_hash(token),
            admin_id=admin.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=auth.session_lifetime_hours),
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:300] if user_agent else None,
        )
    )
    return cookie_value(settings, token)


def end_session(session: Session, session_id: str) -> AdminUser | None:
    """Delete the session `session_id` in the caller's write transaction; return whose it was, if it existed."""
    row = session.get(AdminSession, session_id)
    if row is None:
        return None
    admin = session.get(AdminUser, row.admin_id)
    session.delete(row)
    return admin


@dataclass(frozen=True)
class LiveSession:
    admin: AdminUser
    session_id: str
    #: Time to write `last_seen_at` again.
    stale: bool
    #: The admin's unread notifications (review_queue/admin_inbox.py), for the menu.
    unread_notifications: int = 0


def load_session(engine: Engine, session_id: str, auth: AuthConfig) -> LiveSession | None:
    """The session and its admin, if it has neither expired nor idled out and the account is enabled."""
    now = utcnow()
    with read_session(engine) as session:
        row = session.execute(
            select(AdminSession, AdminUser)
            .join(AdminUser, col(AdminUser.id) == col(AdminSession.admin_id))
            .where(col(AdminSession.token_hash) == session_id)
        ).one_or_none()
        # For the menu's badge, read here (in the page's worker thread) rather than while rendering.
        unread = admin_inbox.unread_count(session, row[1].id) if row is not None else 0
    if row is None:
        return None
    stored, admin = row
    idle_limit = timedelta(minutes=auth.session_idle_minutes)
    if admin.disabled or stored.expires_at <= now or now - stored.last_seen_at > idle_limit:
        return None
    # A short idle timeout (tests, kiosks) must still be refreshed before it runs out.
    touch_after = min(TOUCH_INTERVAL, idle_limit / 4)
    return LiveSession(
        admin=admin, session_id=session_id, stale=now - stored.last_seen_at > touch_after, unread_notifications=unread
    )


def touch_session(engine: Engine, session_id: str) -> None:
    with write_session(engine) as session:
        session.execute(
            update(AdminSession).where(col(AdminSession.token_hash) == session_id).values(last_seen_at=utcnow())
        )


# -- dependencies for pages -------------------------------------------------------------------------


def safe_next(value: str | None) -> str | None:
    """`value` if it is a path of the admin pages on this site (never another site); None otherwise.

    Refuses absolute URLs, scheme-relative ones ("//evil.example"), backslashes and control characters
    (which some browsers read as "//"), and the login and logout paths themselves.
    """
    if not value or len(value) > 2000:
        return None
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path == "/admin" or parts.path.startswith("/admin/")):
        return None
    if parts.path.startswith("//") or parts.path in (LOGIN_PATH, LOGOUT_PATH):
        return None
    return value


def login_url(next_path: str | None) -> str:
    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}" if next_path else LOGIN_PATH


def _next_for(request: HTTPConnection) -> str | None:
    # Only a page can be come back to; after a refused POST the admin starts again from their home page.
    if request.scope.get("method", "GET") not in ("GET", "HEAD"):
        return None
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return safe_next(path)


async def current_web_admin(request: Request, runtime: RuntimeDep) -> AdminUser:
    """The admin signed in on this browser; raises `LoginRequired` (a 303 to the login form) otherwise.

    Also leaves `request.state.admin`, `request.state.admin_session_id` and
    `request.state.unread_notifications` (the menu's badge) for templates and handlers.
    """
    session_id = session_id_from_cookies(runtime.settings, request.cookies)
    if session_id is None:
        raise LoginRequired(_next_for(request), had_cookie=COOKIE_NAME in request.cookies)
    live = await asyncio.to_thread(load_session, runtime.engine, session_id, runtime.settings.auth)
    if live is None:
        raise LoginRequired(_next_for(request), had_cookie=True)
    if live.stale:
        await runtime.writes.run(lambda: touch_session(runtime.engine, session_id))
    request.state.admin = live.admin
    request.state.admin_session_id = session_id
    request.state.unread_notifications = live.unread_notifications
    return live.admin


WebAdminDep = Annotated[AdminUser, Depends(current_web_admin)]


def current_web_actor(admin: WebAdminDep) -> AdminUser:
    """The signed-in admin, if their role may act on reports; raises `NotAllowed` (a 403 page) otherwise."""
    if not can_act(admin):
        raise NotAllowed(admin)
    return admin


WebActorDep = Annotated[AdminUser, Depends(current_web_actor)]


# -- sign-in limits ---------------------------------------------------------------------------------


def lockout_policy(auth: AuthConfig) -> LockoutPolicy:
    return LockoutPolicy(
        max_failures=auth.login_max_failures,
        window=timedelta(minutes=auth.login_failure_window_minutes),
        lockout=timedelta(minutes=auth.lockout_minutes),
    )


class LoginThrottle:
    """Failed sign-ins per client address within a window, in this process's memory.

    A second line behind the per-account lock-out (which is in the database): it slows one address
    trying many usernames. Bounded: past `max_addresses` the oldest addresses are forgotten.
    """

    def __init__(self, *, max_failures: int, window_seconds: float, max_addresses: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, address: str | None, now: float | None = None) -> bool:
        if address is None:
            return False
        times = self._recent(address, time.monotonic() if now is None else now)
        return times is not None and len(times) >= self.max_failures

    def failed(self, address: str | None, now: float | None = None) -> None:
        if address is None:
            return
        moment = time.monotonic() if now is None else now
        times = self._recent(address, moment)
        if times is None:
            if len(self._failures) >= self.max_addresses:
                self._forget_oldest()
            times = self._failures[address] = deque()
        times.append(moment)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def _forget_oldest(self) -> None:
        by_last = sorted(self._failures, key=lambda a: self._failures[a][-1] if self._failures[a] else 0.0)
        for address in by_last[: max(1, len(by_last) // 2)]:
            del self._failures[address]
