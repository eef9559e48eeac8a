"""What the account-management tests share: signed-in browsers and posting a page's forms."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from gateway.db import read_session
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, AdminSession, AdminUser
from tests.admin.support import PASSWORD, Browser, csrf_token_in
from tests.support.servers import RunningGateway

__all__ = ["PASSWORD", "account", "make", "post_form", "sessions_of", "signed_in", "usernames"]


def make(engine: Engine, username: str, role: AdminRole = AdminRole.REVIEWER, **scope: Any) -> AdminUser:
    """An account made the way `kanal admin create` makes it."""
    return create_admin(engine, username=username, password=PASSWORD, role=role, **scope)


def signed_in(gateway: RunningGateway, username: str, password: str = PASSWORD) -> Browser:
    """A browser signed in through the real form (close it, or use it in a `with`)."""
    browser = Browser(gateway)
    response = browser.login(username, password)
    assert response.status_code == 303, response.text
    return browser


def post_form(browser: Browser, path: str, data: dict[str, str], *, page: str | None = None) -> httpx.Response:
    """Submit a form on `path` as the browser would: with the CSRF token read from `page` (default: `path`)."""
    shown = browser.http.get(page or path)
    assert shown.status_code == 200, shown.text
    return browser.http.post(path, data={**data, "csrf_token": csrf_token_in(shown)})


def account(engine: Engine, username: str) -> AdminUser:
    with read_session(engine) as session:
        return session.execute(select(AdminUser).where(col(AdminUser.username) == username)).scalar_one()


def sessions_of(engine: Engine, username: str) -> int:
    with read_session(engine) as session:
        query = select(AdminSession).join(AdminUser, col(AdminUser.id) == col(AdminSession.admin_id))
        return len(session.execute(query.where(col(AdminUser.username) == username)).all())


def usernames(engine: Engine) -> set[str]:
    with read_session(engine) as session:
        return set(session.execute(select(col(AdminUser.username))).scalars())
