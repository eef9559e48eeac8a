"""Normalized reports in the review API: personal data masked and audited, routing correctable, CRM fed masked."""

from __future__ import annotations

import re

import httpx

from crm_sim.server import RunningCRMSim
from tests.conftest import ADMIN_PASSWORD
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway

NIK = "3171012345670001"
PHONE = "0812-9876-5432"
EMAIL = "siti.aminah@example.id"
TEXT = (
    f"Saya Siti, NIK {NIK}, melapor jalan berlubang besar di Jl. Kramat Raya, Kel. Kenari, Senen. "
    f"Bisa hubungi saya di {PHONE} atau {EMAIL}."
)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _send(http: httpx.Client) -> str:
    body = complaint("pii-1", TEXT)
    body["sender"] = {"id": "caller-pii", "name": "Siti Aminah", "phone": "081298765432", "email": EMAIL}
    answer = post_api(http, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["accepted"][0]["ticket"])


def test_admins_see_masked_text_and_contact(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    ticket = _send(http)
    [listed] = wait_for_reports(http, admin_headers, 1)
    report = http.get(f"/api/v1/reports/{ticket}", headers=admin_headers).json()
    for shown in (listed, report):
        assert NIK not in _digits(shown["text"])
        assert _digits(PHONE) not in _digits(shown["text"])
        assert EMAIL not in shown["text"]
        assert "Kramat Raya" in shown["text"], "masking keeps the complaint itself"
        assert shown["masked_kinds"] == ["nik", "phone", "email"]
        assert shown["sender"]["name"] == "S. A."
        assert shown["sender"]["phone"] != "081298765432" and shown["sender"]["email"] != EMAIL
        assert "text_original" not in shown and "text_clean" not in shown
    assert report["kelurahan_code"] == "31.71.04.1002"
    assert report["agency_unit"] and "Jakarta Pusat" in report["agency_unit"]
    history = http.get(f"/api/v1/reports/{ticket}/events", headers=admin_headers).json()
    assert NIK not in str(history) and EMAIL not in str(history)


def test_reviewers_open_personal_data_and_each_opening_is_recorded(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    ticket = _send(http)
    wait_for_reports(http, admin_headers, 1)
    opened = http.get(f"/api/v1/reports/{ticket}/personal-data", headers=admin_headers)
    assert opened.status_code == 200, opened.text
    assert opened.json()["text_original"] == TEXT
    assert opened.json()["sender"]["phone"] == "081298765432"
    http.get(f"/api/v1/reports/{ticket}/personal-data", headers=admin_headers)
    history = http.get(f"/api/v1/reports/{ticket}/events", headers=admin_headers).json()
    openings = [e for e in history if e["action"] == "personal_data_opened"]
    assert [e["actor"] for e in openings] == ["admin:rina", "admin:rina"]


def test_viewers_cannot_open_personal_data(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    from review_queue.auth import create_admin
    from review_queue.tables import AdminRole

    ticket = _send(http)
    wait_for_reports(http, admin_headers, 1)
    create_admin(gateway.runtime.engine, username="vera", password=ADMIN_PASSWORD, role=AdminRole.VIEWER)
    token = http.post("/api/v1/auth/token", data={"username": "vera", "password": ADMIN_PASSWORD}).json()
    viewer = {"Authorization": f"Bearer {token['access_token']}"}
    assert http.get(f"/api/v1/reports/{ticket}", headers=viewer).status_code == 200
    refused = http.get(f"/api/v1/reports/{ticket}/personal-data", headers=viewer)
    assert refused.status_code == 403
    history = http.get(f"/api/v1/reports/{ticket}/events", headers=admin_headers).json()
    assert not [e for e in history if e["action"] == "personal_data_opened"]


def test_the_crm_gets_the_masked_text_and_no_contact(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    ticket = _send(http)
    wait_for_reports(http, admin_headers, 1)
    assert approve(http, admin_headers, ticket).status_code == 200
    [forwarded] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    answer = httpx.get(
        f"{crm.base_url}requests.json", params={"service_request_id": forwarded["crm_service_request_id"]}
    )
    [request] = answer.json()
    assert ticket in request["description"]
    assert NIK not in _digits(request["description"]) and EMAIL not in request["description"]
    assert _digits(PHONE) not in _digits(request["description"])
    assert not request.get("phone") and not request.get("email")


def test_an_admin_chooses_the_category_when_the_normalizer_is_unsure(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    body = complaint("unsure-1", "halo min, tolong dibantu ya")
    body.pop("location")
    ticket = post_api(http, body).json()["accepted"][0]["ticket"]
    [report] = wait_for_reports(http, admin_headers, 1)
    assert report["needs_category_choice"] is True
    assert len(report["routing"]["alternatives"]) >= 1, "the admin is offered the likely categories"
    unknown = http.patch(f"/api/v1/reports/{ticket}", json={"category_code": "jalan-tol"}, headers=admin_headers)
    assert unknown.status_code == 422 and "choose one of" in unknown.json()["detail"]
    chosen = http.patch(
        f"/api/v1/reports/{ticket}",
        json={"category_code": "saluran", "agency_code": "kelurahan", "version": report["version"]},
        headers=admin_headers,
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["category_code"] == "saluran" and chosen.json()["agency_code"] == "kelurahan"
    assert chosen.json()["needs_category_choice"] is False
    history = http.get(f"/api/v1/reports/{ticket}/events", headers=admin_headers).json()
    assert history[-1]["action"] == "edited" and history[-1]["after"]["category_code"] == "saluran"
