"""Acceptance 1-3 of the spine: a complaint travels channel -> inbox -> review -> CRM once, bad input loses nothing."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from crm_sim.server import RunningCRMSim
from tests.adapters.test_web_form import WebFormProfile
from tests.support.api_client import (
    complaint,
    inbox_count,
    post_api,
    quarantine_rows,
    reports,
    signed_headers,
)
from tests.support.review import approve, list_reports, wait_for_reports
from tests.support.servers import RunningGateway, wait_until

TICKET = re.compile(r"\b[0-9A-Z]{5}-[0-9A-Z]{5}\b")


def crm_requests(crm: RunningCRMSim, ids: list[str]) -> list[dict]:  # type: ignore[type-arg]
    response = httpx.get(f"{crm.base_url}requests.json", params={"service_request_id": ",".join(ids)})
    assert response.status_code == 200, response.text
    return list(response.json())


def crm_count(crm: RunningCRMSim) -> int:
    return int(httpx.get(f"{crm.base_url}_sim/stats").json()["requests"])


def test_api_and_web_form_complaints_reach_the_crm_once_after_approval(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    api_answer = post_api(http, complaint("cc-1001"))
    web = WebFormProfile()
    form_answer = web.send(http, web.prepare(http, "full.json"))
    assert api_answer.status_code == 200 and form_answer.status_code == 200, form_answer.text[:500]
    api_ticket = api_answer.json()["accepted"][0]["ticket"]
    form_ticket_match = TICKET.search(form_answer.text)
    assert form_ticket_match, "the thank-you page must show the citizen a ticket code"
    tickets = {api_ticket, form_ticket_match.group(0)}

    pending = wait_for_reports(http, admin_headers, 2, state="pending_review")
    assert {r["ticket_code"] for r in pending} == tickets
    assert crm_count(crm) == 0, "nothing reaches the CRM before an admin approves it"

    for ticket in tickets:
        assert approve(http, admin_headers, ticket).status_code == 200
    forwarded = wait_for_reports(http, admin_headers, 2, state="forwarded")
    crm_ids = [r["crm_service_request_id"] for r in forwarded]
    assert all(crm_ids) and len(set(crm_ids)) == 2
    in_crm = crm_requests(crm, crm_ids)
    assert crm_count(crm) == 2 and len(in_crm) == 2
    assert all(any(t in r["description"] for t in tickets) for r in in_crm), "the CRM request names the ticket"
    photo_report = next(r for r in forwarded if r["channel_id"] == "api:partner")
    assert next(r for r in in_crm if r["service_request_id"] == photo_report["crm_service_request_id"])["media_url"]

    history = http.get(f"/api/v1/reports/{api_ticket}/events", headers=admin_headers).json()
    assert [e["action"] for e in history] == ["created", "approved", "forwarded"]
    assert history[1]["actor"] == "admin:rina" and history[1]["before"]["state"] == "pending_review"


def test_five_concurrent_redeliveries_make_one_report_and_one_crm_request(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    body = json.dumps(complaint("cc-dup-1")).encode()
    headers = signed_headers(body)
    start = threading.Barrier(5)

    def deliver(_: int) -> httpx.Response:
        start.wait()
        return http.post("/channels/api:partner/inbound", content=body, headers=headers)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(deliver, range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["accepted"][0]["duplicate"] for a in answers) == [False, True, True, True, True]
    assert len({a.json()["accepted"][0]["ticket"] for a in answers}) == 1

    engine = gateway.runtime.engine
    assert inbox_count(engine) == 1
    (report,) = wait_for_reports(http, admin_headers, 1)
    assert approve(http, admin_headers, report["id"]).status_code == 200
    wait_for_reports(http, admin_headers, 1, state="forwarded")
    time.sleep(0.3)  # any second send would have happened by now
    assert crm_count(crm) == 1 and len(reports(engine)) == 1
    metrics = http.get("/metrics").text
    assert 'kanal_inbound_deliveries_total{channel="api:partner",outcome="duplicate"} 4' in metrics
    assert 'kanal_inbound_deliveries_total{channel="api:partner",outcome="accepted"} 1' in metrics


def test_bad_deliveries_get_a_clear_4xx_and_malformed_ones_are_kept(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    good = json.dumps(complaint("cc-bad-1")).encode()
    cases = {
        "bad signature": http.post(
            "/channels/api:partner/inbound",
            content=good,
            headers=signed_headers(good, secret="wrong-secret-0123456789"),
        ),
        "stale timestamp": post_api(http, good, timestamp=int(time.time()) - 3600),
        "empty body": post_api(http, b""),
        "invalid JSON": post_api(http, b'{"external_id": "x", "text": '),
        "10 MB body": post_api(http, json.dumps({"external_id": "big", "text": "a" * 10_000_000}).encode()),
    }
    expected = {
        "bad signature": 401,
        "stale timestamp": 401,
        "empty body": 400,
        "invalid JSON": 400,
        "10 MB body": 413,
    }
    for label, answer in cases.items():
        assert answer.status_code == expected[label], f"{label}: {answer.status_code} {answer.text[:200]}"
        detail = answer.json()["detail"]
        assert len(detail) > 20, f"{label}: the answer must say what is wrong and what to do: {detail!r}"
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    kept = {q.reason.split(" ")[0]: q for q in quarantine_rows(engine)}
    assert len(quarantine_rows(engine)) == 5
    bodies = [q.body for q in quarantine_rows(engine)]
    assert b"" in bodies and b'{"external_id": "x", "text": ' in bodies, "malformed payloads are kept byte for byte"
    assert kept, "quarantine rows carry a reason"
    unknown = http.post("/channels/nope:nope/inbound", content=good)
    assert unknown.status_code == 404


def test_review_actions_conflict_instead_of_applying_twice(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    post_api(http, complaint("cc-race-1"))
    (report,) = wait_for_reports(http, admin_headers, 1)
    edited = http.patch(
        f"/api/v1/reports/{report['id']}",
        json={"text_clean": "Jalan berlubang di depan pasar", "version": report["version"]},
        headers=admin_headers,
    )
    assert edited.status_code == 200 and edited.json()["version"] == report["version"] + 1
    stale = approve(http, admin_headers, report["id"], version=report["version"])
    assert stale.status_code == 409 and "changed since you opened it" in stale.json()["detail"]
    rejected = http.post(
        f"/api/v1/reports/{report['id']}/reject",
        json={"reason": "Duplikat laporan CRM-000001"},
        headers=admin_headers,
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    again = approve(http, admin_headers, report["id"])
    assert again.status_code == 409 and "already rejected by admin:rina" in again.json()["detail"]
    time.sleep(0.3)
    assert crm_count(crm) == 0
    assert http.get("/api/v1/reports", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert list_reports(http, admin_headers, state="rejected")[0]["reject_reason"] == "Duplikat laporan CRM-000001"


def test_trusted_channel_skips_review(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    assert post_api(http, complaint("jaki-1"), channel="api:trusted").status_code == 200
    (report,) = wait_for_reports(http, admin_headers, 1, state="forwarded")
    assert report["crm_service_request_id"]
    events = http.get(f"/api/v1/reports/{report['id']}/events", headers=admin_headers).json()
    assert events[1]["actor"] == "system:normalizer" and "trusted" in events[1]["note"]
    wait_until(lambda: crm_count(crm) == 1, timeout=5, what="the CRM request")


def test_refused_deliveries_can_be_inspected_by_a_superadmin_only(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    from review_queue.auth import create_admin
    from review_queue.tables import AdminRole

    post_api(http, b'{"external_id": "x", "text": ')
    assert http.get("/api/v1/quarantine", headers=admin_headers).status_code == 403
    create_admin(gateway.runtime.engine, username="ops", password="ops-password-123", role=AdminRole.SUPERADMIN)
    token = http.post("/api/v1/auth/token", data={"username": "ops", "password": "ops-password-123"}).json()
    listing = http.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert listing.status_code == 200
    (item,) = listing.json()
    assert item["channel_id"] == "api:partner" and item["status_code"] == 400
    assert "not valid UTF-8 JSON" in item["reason"] and item["body_preview"] == '{"external_id": "x", "text": '
    assert "x-kanal-signature" in item["headers"]


def test_a_photo_uploaded_on_the_form_reaches_the_crm_as_a_fetchable_url(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    web = WebFormProfile()
    assert web.send(http, web.prepare(http, "full.json")).status_code == 200
    (report,) = wait_for_reports(http, admin_headers, 1)
    photo_url = report["media"][0]["url"]
    assert photo_url.startswith(f"{gateway.url}/media/") and report["media"][0]["content_type"] == "image/png"
    assert approve(http, admin_headers, report["id"]).status_code == 200
    (forwarded,) = wait_for_reports(http, admin_headers, 1, state="forwarded")
    (in_crm,) = crm_requests(crm, [forwarded["crm_service_request_id"]])
    assert in_crm["media_url"] == photo_url

    photo = httpx.get(photo_url)
    expected = (web.fixtures / "pothole.png").read_bytes()
    assert photo.status_code == 200 and photo.content == expected
    assert photo.headers["content-type"] == "image/png" and photo.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(photo_url[:-1] + ("0" if photo_url[-1] != "0" else "1")).status_code == 404, "a forged link"
    assert httpx.get(photo_url.replace("/0?", "/1?")).status_code == 404


def test_an_adapter_bug_is_answered_4xx_and_the_payload_kept(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import plugins

    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "broken", "tests.support.broken_adapter")
    settings["channels"]["broken:1"] = {"type": "broken"}
    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url) as client:
        url = "/channels/broken:1/inbound"
        for where in ("verify", "parse"):
            answer = client.post(url, content=b"Jalan rusak", headers={"X-Break": where})
            assert answer.status_code == 400, (where, answer.text)
        assert client.get(url).status_code == 400
        assert client.post(url, content=b"Jalan rusak").status_code == 200, "the same adapter works otherwise"
        kept = quarantine_rows(gateway.runtime.engine)
        assert [q.status_code for q in kept] == [400, 400] and kept[1].body == b"Jalan rusak"


def test_a_ticket_code_finds_its_report_however_it_was_typed(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    ticket = post_api(http, complaint("cc-typed-1")).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 1)
    typed = ticket.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    found = http.get(f"/api/v1/reports/{typed}", headers=admin_headers)
    assert found.status_code == 200 and found.json()["ticket_code"] == ticket
    assert http.get("/api/v1/reports/ZZZZZ-ZZZZZ", headers=admin_headers).status_code == 404
