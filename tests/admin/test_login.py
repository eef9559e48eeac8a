"""Signing in and out of the admin pages: sessions, cookies, lock-out, `next`, audit (both engines)."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

import httpx
from sqlalchemy import Engine, func, select

from gateway.db import read_session
from review_queue.audit import AuditAction
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, AdminSession, AdminUser
from review_queue.web.render import SECURITY_HEADERS
from tests.admin.support import PASSWORD, Browser, admin_gateway, audit_rows, csrf_token_in

FAILED = "wrong username or password, or the account is locked for a while"


def _cookie(response: httpx.Response, name: str) -> str:
    """The raw Set-Cookie line for `name`, to read its attributes."""
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return line
    raise AssertionError(f"no {name} cookie set; got {response.headers.get_list('set-cookie')}")


def _sessions(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.execute(select(func.count()).select_from(AdminSession)).scalar_one()


def test_sign_in_then_out(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)

        # Without a session, a page sends the browser to the form, which will bring it back.
        page = browser.http.get("/admin/account", params={"tab": "1"})
        assert page.status_code == 303
        assert page.headers["location"] == "/admin/login?next=/admin/account%3Ftab%3D1"
        assert browser.http.get("/admin").headers["location"] == "/admin/queue"

        signed_in = browser.login("rina", next="/admin/account")
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == "/admin/account"
        cookie = _cookie(signed_in, "kanal_admin")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path", "samesite"} <= attributes
        assert "Path=/admin" in cookie and "samesite=lax" in cookie.lower()
        assert "secure" not in attributes, "the gateway under test runs on http://, so cookie_secure=auto is off"
        token = SimpleCookie(cookie)["kanal_admin"].value
        with read_session(engine) as session:
            stored = session.execute(select(AdminSession)).scalar_one()
        assert token.split(".")[0] not in stored.token_hash, "only the token's hash is stored"
        assert stored.ip == "127.0.0.1"

        account = browser.http.get("/admin/account")
        assert account.status_code == 200
        assert "rina" in account.text and "Semua laporan" in account.text  # a reviewer sees the whole city

        # Already signed in, the form steps aside.
        assert browser.http.get("/admin/login", params={"next": "/admin/audit"}).headers["location"] == "/admin/audit"

        out = browser.http.post("/admin/logout", data={"csrf_token": csrf_token_in(account)})
        assert out.status_code == 303 and out.headers["location"] == "/admin/login"
        assert _sessions(engine) == 0, "signing out deletes the session's row"
        assert browser.http.get("/admin/account").status_code == 303

        # The old cookie, replayed, no longer opens anything.
        browser.http.cookies.set("kanal_admin", token, domain="127.0.0.1", path="/admin")
        assert browser.http.get("/admin/account").status_code == 303

        actions = [(row.action, row.actor_name) for row in audit_rows(engine)]
        assert actions == [(AuditAction.LOGIN, "rina"), (AuditAction.LOGOUT, "rina")]


def test_a_tampered_or_forged_cookie_is_refused(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        assert browser.login("rina").status_code == 303
        genuine = browser.http.cookies["kanal_admin"]
        token, signature = genuine.rsplit(".", 1)
        forgeries = [
            f"{token[:-1]}{'A' if token[-1] != 'A' else 'B'}.{signature}",  # another token, the old signature
            f"{token}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
            token,  # no signature at all
            "x" * 500,
        ]
        for forged in forgeries:
            browser.http.cookies.clear()
            browser.http.cookies.set("kanal_admin", forged, domain="127.0.0.1", path="/admin")
            page = browser.http.get("/admin/account")
            assert page.status_code == 303, forged
            assert "kanal_admin=" in page.headers.get("set-cookie", ""), "the bad cookie is cleared"
        browser.http.cookies.clear()
        browser.http.cookies.set("kanal_admin", genuine, domain="127.0.0.1", path="/admin")
        assert browser.http.get("/admin/account").status_code == 200


def test_wrong_passwords_lock_the_account_for_a_while(database_url: str) -> None:
    with (
        admin_gateway(database_url, login_max_failures=3, lockout_minutes=0.05, login_ip_max_failures=100) as gateway,
        Browser(gateway) as browser,
    ):
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)

        unknown = browser.login("nobody", "whatever-password")
        assert unknown.status_code == 401
        for _ in range(3):
            wrong = browser.login("rina", "not-the-password")
            assert wrong.status_code == 401
            assert "kanal_admin=" not in wrong.headers.get("set-cookie", "")
        # Locked: the right password is refused too, with the very same words as a wrong one.
        locked = browser.login("rina", PASSWORD)
        assert locked.status_code == 401
        assert _alert(locked) == _alert(wrong) == _alert(unknown)
        with read_session(engine) as session:
            admin = session.execute(select(AdminUser)).scalar_one()
        assert admin.locked_until is not None
        # Nor does the API hand a locked account a token.
        api = browser.http.post("/api/v1/auth/token", data={"username": "rina", "password": PASSWORD})
        assert api.status_code == 401

        time.sleep(3.2)  # lockout_minutes=0.05: three seconds
        assert browser.login("rina", PASSWORD).status_code == 303, "the lock-out ends by itself"

        failed = audit_rows(engine, AuditAction.LOGIN_FAILED)
        assert [row.detail["reason"] for row in failed if row.detail] == [
            "unknown_user",
            "wrong_password",
            "wrong_password",
            "wrong_password",
            "locked",
            "locked",  # the API token request while locked: the same lock-out, recorded the same way
        ]
        assert failed[-1].detail is not None and failed[-1].detail.get("via") == "api"
        assert [row.detail["username"] for row in failed if row.detail][:2] == ["nobody", "rina"]
        assert all("password" not in str(row.detail).replace("wrong_password", "") for row in failed)
        assert all(row.ip == "127.0.0.1" for row in failed)
        lockouts = audit_rows(engine, AuditAction.LOCKOUT)
        assert len(lockouts) == 1 and lockouts[0].target_id == admin.id
        assert len(audit_rows(engine, AuditAction.LOGIN)) == 1


def test_the_failure_message_is_generic_in_both_languages(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        form = browser.http.get("/admin/login", params={"lang": "en"})
        data = {"username": "nobody", "password": "x" * 12, "csrf_token": csrf_token_in(form)}
        english = browser.http.post("/admin/login", params={"lang": "en"}, data=data)
        assert FAILED in english.text.lower()
        indonesian = browser.http.post("/admin/login", data=data)
        assert "Nama pengguna atau kata sandi salah" in indonesian.text


def test_many_failures_from_one_address_must_wait(database_url: str) -> None:
    with admin_gateway(database_url, login_ip_max_failures=3) as gateway, Browser(gateway) as browser:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        for name in ("a", "b", "c"):
            assert browser.login(name, "guess-guess-guess").status_code == 401
        throttled = browser.login("rina", PASSWORD)
        assert throttled.status_code == 429
        assert "Tunggu beberapa menit" in throttled.text


#: What an attacker might put in `next` to send a freshly signed-in admin to their own site.
FOREIGN_NEXT = [
    "https://evil.example/admin",
    "//evil.example/admin",
    "/\\evil.example",
    "\\\\evil.example",
    "/admin\r\nLocation: https://evil.example",
    "javascript:alert(1)",
    "/api/v1/reports",
    "/admin/login",
]


def test_next_never_leaves_the_admin_pages(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        for next_value in FOREIGN_NEXT:
            browser.http.cookies.clear()
            form = browser.http.get("/admin/login", params={"next": next_value})
            assert 'name="next" value=""' in form.text, next_value
            response = browser.login("rina", next=next_value)
            assert response.status_code == 303, next_value
            assert response.headers["location"] == "/admin/queue", next_value


def test_an_idle_session_ends(database_url: str) -> None:
    with admin_gateway(database_url, session_idle_minutes=0.05) as gateway, Browser(gateway) as browser:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        assert browser.login("rina").status_code == 303
        for _ in range(4):  # active: each request within the idle time keeps it alive
            time.sleep(1.0)
            assert browser.http.get("/admin/account").status_code == 200
        time.sleep(3.5)
        assert browser.http.get("/admin/account").status_code == 303


def test_the_language_switch_is_remembered_and_audited(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.VIEWER)
        assert browser.login("rina").status_code == 303
        token = browser.session_token()
        assert 'lang="id"' in browser.http.get("/admin/account").text
        switched = browser.http.post(
            "/admin/language", data={"language": "en", "next": "/admin/account", "csrf_token": token}
        )
        assert switched.status_code == 303 and switched.headers["location"] == "/admin/account"
        page = browser.http.get("/admin/account")
        assert 'lang="en"' in page.text and "Sign out" in page.text and "May read reports only" in page.text
        [row] = audit_rows(engine, AuditAction.LANGUAGE_CHANGED)
        assert row.actor_name == "rina" and row.detail == {"from": "id", "to": "en"}


def test_every_admin_response_carries_the_security_headers(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as browser:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        anonymous = [
            browser.http.get("/admin"),
            browser.http.get("/admin/login"),
            browser.http.get("/admin/account"),  # a redirect to the login form
            browser.http.post("/admin/language", data={"language": "en"}),  # refused: no CSRF token
            browser.http.get("/admin/no-such-page"),
            browser.http.get("/admin/static/admin.css"),
        ]
        browser.login("rina")
        signed_in = [browser.http.get("/admin/account")]
        for response in anonymous + signed_in:
            for name, value in SECURITY_HEADERS.items():
                if name == "Cache-Control" and "/static/" in str(response.url):
                    continue
                assert response.headers.get(name) == value, (response.url, name)
        assert "default-src 'self'" in signed_in[0].headers["content-security-policy"]
        assert "frame-ancestors 'none'" in signed_in[0].headers["content-security-policy"]
        # Nothing outside /admin changes.
        assert "x-frame-options" not in browser.http.get("/healthz").headers


def _alert(page: httpx.Response) -> str:
    start = page.text.index('role="alert">') + len('role="alert">')
    return page.text[start : page.text.index("</p>", start)]
