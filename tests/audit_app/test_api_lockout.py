"""POST /api/v1/auth/token counts failures like the sign-in form: lock-out, audit, one answer (both engines)."""

from __future__ import annotations

import time

import httpx

from review_queue.audit import AuditAction
from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from tests.admin.support import PASSWORD, Browser, admin_gateway, audit_rows


def _token(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_guessing_through_the_api_locks_the_account(database_url: str) -> None:
    with admin_gateway(database_url, login_max_failures=3, lockout_minutes=0.05, login_ip_max_failures=100) as gateway:
        engine = gateway.runtime.engine
        create_admin(engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            unknown = _token(http, "nobody", "whatever-password")
            wrong = [_token(http, "rina", f"guess-number-{i}") for i in range(3)]
            # Locked now: the right password is refused too, with the very same answer.
            locked = _token(http, "rina", PASSWORD)
            assert [r.status_code for r in (unknown, *wrong, locked)] == [401] * 5
            assert len({r.text for r in (unknown, *wrong, locked)}) == 1, "a guesser must not tell them apart"
            assert "try again" in locked.json()["detail"]

            time.sleep(3.2)  # lockout_minutes=0.05: three seconds
            issued = _token(http, "rina", PASSWORD)
            assert issued.status_code == 200, issued.text
            me = http.get("/api/v1/reports", headers={"Authorization": f"Bearer {issued.json()['access_token']}"})
            assert me.status_code == 200

        failed = audit_rows(engine, AuditAction.LOGIN_FAILED)
        assert [(r.detail or {}).get("reason") for r in failed] == [
            "unknown_user",
            "wrong_password",
            "wrong_password",
            "wrong_password",
            "locked",
        ]
        assert all((r.detail or {}).get("via") == "api" for r in failed)
        assert all(r.ip == "127.0.0.1" for r in failed)
        assert all("guess-number" not in str(r.detail) for r in failed), "a password tried is never recorded"
        [lockout] = audit_rows(engine, AuditAction.LOCKOUT)
        assert lockout.target_type == "admin_user" and lockout.detail and lockout.detail["username"] == "rina"
        [login] = audit_rows(engine, AuditAction.LOGIN)
        assert login.actor_name == "rina" and login.detail == {"via": "api"}


def test_the_api_and_the_form_share_one_count(database_url: str) -> None:
    """Two failures on the form and one through the API reach a limit of three."""
    with (
        admin_gateway(database_url, login_max_failures=3, lockout_minutes=5, login_ip_max_failures=100) as gateway,
        Browser(gateway) as browser,
    ):
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        assert browser.login("rina", "not-the-password").status_code == 401
        assert browser.login("rina", "not-the-password-2").status_code == 401
        assert _token(browser.http, "rina", "not-the-password-3").status_code == 401
        assert _token(browser.http, "rina", PASSWORD).status_code == 401, "locked after three failures in all"
        assert browser.login("rina", PASSWORD).status_code == 401
        assert len(audit_rows(gateway.runtime.engine, AuditAction.LOCKOUT)) == 1


def test_one_address_failing_too_often_waits(database_url: str) -> None:
    with admin_gateway(database_url, login_max_failures=50, login_ip_max_failures=3) as gateway:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            for name in ("ana", "budi", "citra"):  # many names from one address: no account is locked
                assert _token(http, name, "whatever-password").status_code == 401
            waiting = _token(http, "rina", PASSWORD)
            assert waiting.status_code == 429
            assert int(waiting.headers["retry-after"]) > 0
            assert "wait" in waiting.json()["detail"]
            # Another client (a proxy in forwarded_allow_ips names it) is not held back.
            other = http.post(
                "/api/v1/auth/token",
                data={"username": "rina", "password": PASSWORD},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            assert other.status_code == 200, other.text


def test_overlong_input_is_refused_without_hashing_it(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        create_admin(gateway.runtime.engine, username="rina", password=PASSWORD, role=AdminRole.REVIEWER)
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            refused = _token(http, "rina", PASSWORD + "x" * 5000)
            assert refused.status_code == 401
        [failed] = audit_rows(gateway.runtime.engine, AuditAction.LOGIN_FAILED)
        assert failed.detail and failed.detail["reason"] == "wrong_password"
