"""The JSON review API shows each admin only their scope; outside it a report does not exist (both engines)."""

from __future__ import annotations

import httpx

from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from tests.admin.support import GAMBIR, MENTENG, PASSWORD, add_report, admin_gateway
from tests.support.review import list_reports

NOT_FOUND = {"detail": "no report with that id or ticket code"}


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_each_admin_sees_and_acts_on_their_scope_only(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as http:
        engine = gateway.runtime.engine
        create_admin(engine, username="ops", password=PASSWORD, role=AdminRole.SUPERADMIN)
        create_admin(engine, username="lurah", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[GAMBIR])
        create_admin(
            engine, username="medsos", password=PASSWORD, role=AdminRole.CHANNEL_ADMIN, scope_channels=["twitter:*"]
        )
        create_admin(engine, username="vera", password=PASSWORD, role=AdminRole.VIEWER)
        create_admin(engine, username="kosong", password=PASSWORD, role=AdminRole.REVIEWER, scope_channels=[])
        reports = {
            "tw gambir": add_report(engine, channel_id="twitter:dkijakarta", kelurahan=GAMBIR),
            "api gambir": add_report(engine, channel_id="api:partner", kelurahan=GAMBIR),
            "tw menteng": add_report(engine, channel_id="twitter:dkijakarta", kelurahan=MENTENG),
            "api menteng": add_report(engine, channel_id="api:partner", kelurahan=MENTENG),
            "tw nowhere": add_report(engine, channel_id="twitter:humas"),
            "api nowhere": add_report(engine, channel_id="api:partner"),
        }
        tickets = {r.ticket_code: name for name, r in reports.items()}
        headers = {name: _token(http, name) for name in ("ops", "lurah", "medsos", "vera", "kosong")}

        def seen(name: str) -> set[str]:
            return {tickets[r["ticket_code"]] for r in list_reports(http, headers[name])}

        assert seen("ops") == set(reports)
        assert seen("vera") == set(reports), "a viewer created without a scope reads the whole city"
        assert seen("lurah") == {"tw gambir", "api gambir"}
        assert seen("medsos") == {"tw gambir", "tw menteng", "tw nowhere"}
        assert seen("kosong") == set()
        # Filters narrow the scope, never widen it.
        lurah_api = list_reports(http, headers["lurah"], channel_id="api:partner")
        assert [tickets[r["ticket_code"]] for r in lurah_api] == ["api gambir"]

        # Another kelurahan's report answers exactly like one that does not exist, whatever the route.
        lurah = headers["lurah"]
        elsewhere = reports["tw menteng"].ticket_code
        for method, path, body in [
            ("GET", f"/api/v1/reports/{elsewhere}", None),
            ("GET", f"/api/v1/reports/{reports['tw menteng'].id}", None),
            ("GET", f"/api/v1/reports/{elsewhere}/events", None),
            ("GET", f"/api/v1/reports/{elsewhere}/follow-ups", None),
            ("GET", f"/api/v1/reports/{elsewhere}/personal-data", None),
            ("POST", f"/api/v1/reports/{elsewhere}/approve", {}),
            ("POST", f"/api/v1/reports/{elsewhere}/reject", {"reason": "bukan wilayah saya"}),
            ("PATCH", f"/api/v1/reports/{elsewhere}", {"text_clean": "diubah"}),
            ("GET", "/api/v1/reports/K7F3Q-9Q2MX", None),  # does not exist at all
        ]:
            response = http.request(method, path, json=body, headers=lurah)
            assert (response.status_code, response.json()) == (404, NOT_FOUND), (method, path)
        untouched = http.get(f"/api/v1/reports/{elsewhere}", headers=headers["ops"]).json()
        assert untouched["state"] == "pending_review" and untouched["version"] == 1

        # In scope, the same admin acts.
        mine = reports["api gambir"].ticket_code
        opened = http.get(f"/api/v1/reports/{mine}/personal-data", headers=lurah)
        assert opened.status_code == 200 and "0812-3456-7890" in opened.json()["text_original"]
        approved = http.post(f"/api/v1/reports/{mine}/approve", json={}, headers=lurah)
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved"

        # A viewer reads but acts on nothing, in scope or not.
        viewer = headers["vera"]
        target = reports["tw gambir"].ticket_code
        assert http.get(f"/api/v1/reports/{target}", headers=viewer).status_code == 200
        assert http.post(f"/api/v1/reports/{target}/approve", json={}, headers=viewer).status_code == 403
        assert http.get(f"/api/v1/reports/{target}/personal-data", headers=viewer).status_code == 403

        # The CRM outbox is not one report's business: only admins who see everything may touch it.
        assert http.get("/api/v1/outbox", headers=lurah).status_code == 403
        assert http.get("/api/v1/outbox", headers=headers["ops"]).status_code == 200
