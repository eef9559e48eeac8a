"""CRM delivery as an operator sees it: service discovery and mapping, deferred tokens, refusals in the
dead-letter view, the credentials pause, signed JSON push, the attempt log, retry and drop (both engines)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm_client.attempts import redact
from crm_client.json_push import JsonPushClient
from crm_client.tables import CRMAttempt
from crm_sim.server import RunningCRMSim
from gateway.cli import main as kanal
from gateway.db import read_session
from gateway.settings import CRMConfig
from tests.conftest import ADMIN_PASSWORD, TEST_CRM_KEY
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway, wait_until, write_config

PUSH_SECRET = "push-secret-0123456789abcdef"


@contextmanager
def running(settings: dict[str, Any]) -> Iterator[tuple[RunningGateway, httpx.Client, dict[str, str]]]:
    """A gateway on these settings, a client, and a reviewer's headers."""
    from review_queue.auth import AccountError, create_admin
    from review_queue.tables import AdminRole

    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as http:
        with suppress(AccountError):  # a restarted gateway on the same database already has her
            create_admin(gateway.runtime.engine, username="rina", password=ADMIN_PASSWORD, role=AdminRole.REVIEWER)
        token = http.post("/api/v1/auth/token", data={"username": "rina", "password": ADMIN_PASSWORD}).json()
        yield gateway, http, {"Authorization": f"Bearer {token['access_token']}"}


def submit_and_approve(
    http: httpx.Client, headers: dict[str, str], n: int, *, prefix: str, text: str | None = None, **edits: Any
) -> list[dict[str, Any]]:
    for i in range(n):
        body = complaint(f"{prefix}-{i}") if text is None else complaint(f"{prefix}-{i}", text)
        assert post_api(http, body).status_code == 200
    pending = wait_for_reports(http, headers, n, state="pending_review")
    for report in pending:
        response = approve(http, headers, report["id"], **({"edits": edits} if edits else {}))
        assert response.status_code == 200, response.text
    return pending


def sim_get(crm: RunningCRMSim, path: str) -> Any:
    return httpx.get(f"{crm.base_url}{path}", timeout=5).json()


def sim_post(crm: RunningCRMSim, path: str, body: dict[str, Any]) -> None:
    assert httpx.post(f"{crm.base_url}{path}", json=body, timeout=5).status_code == 200


def dead_items(http: httpx.Client, headers: dict[str, str], n: int) -> list[dict[str, Any]]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: len(items := http.get("/api/v1/outbox", headers=headers).json()) >= n and items,
        timeout=30,
        what=f"{n} dead letter(s)",
    )


def test_a_category_maps_to_the_crm_service_with_its_required_attribute(
    settings: dict[str, Any], crm: RunningCRMSim
) -> None:
    settings["crm"]["service_map"] = {"pohon": "pohon"}
    settings["crm"]["attribute_defaults"] = {"pohon": {"jenis": "tumbang", "keterangan": "report.ticket_code"}}
    with running(settings) as (_gateway, http, headers):
        (report,) = submit_and_approve(
            http, headers, 1, prefix="tree", text="Pohon tumbang menutup jalan", category_code="pohon"
        )
        (forwarded,) = wait_for_reports(http, headers, 1, state="forwarded")
        stored = sim_get(crm, f"_sim/requests/{forwarded['crm_service_request_id']}")
        assert stored["service_code"] == "pohon"
        assert stored["attributes"] == {"jenis": "tumbang", "keterangan": report["ticket_code"]}


def test_a_required_attribute_kanal_cannot_fill_is_a_dead_letter_not_a_400_loop(
    settings: dict[str, Any], crm: RunningCRMSim
) -> None:
    settings["crm"]["service_map"] = {"pohon": "pohon"}
    with running(settings) as (_gateway, http, headers):
        submit_and_approve(http, headers, 1, prefix="tree", text="Pohon tumbang", category_code="pohon")
        (item,) = dead_items(http, headers, 1)
        assert "attribute[jenis]" in item["last_error"] and "crm.attribute_defaults.pohon.jenis" in item["last_error"]
        assert item["last_attempt"]["error_kind"] == "config"
        assert not any(k.startswith("POST /requests.json") for k in sim_get(crm, "_sim/traffic")), "nothing was sent"


def test_a_deferred_creation_is_resolved_through_its_token(settings: dict[str, Any], tmp_path: Path) -> None:
    with RunningCRMSim(
        db_path=tmp_path / "deferred.sqlite3", api_keys=[TEST_CRM_KEY], deferred=True, deferred_delay=0.3
    ) as sim:
        settings["crm"]["base_url"] = sim.base_url
        with running(settings) as (gateway, http, headers):
            submit_and_approve(http, headers, 2, prefix="deferred")

            def resolved() -> list[dict[str, Any]]:
                found = wait_for_reports(http, headers, 2, state="forwarded")
                return found if all(r["crm_service_request_id"] for r in found) else []

            reports = wait_until(resolved, timeout=30, what="both tokens resolved to ids")
            assert {r["crm_service_request_id"] for r in reports} <= {f"CRM-{n:06d}" for n in (1, 2)}
            assert all(r["crm_token"] for r in reports)
            assert any(k.startswith("GET /tokens/{token}.json 200") for k in sim_get(sim, "_sim/traffic"))
            with read_session(gateway.runtime.engine) as session:
                operations = set(session.execute(select(CRMAttempt.operation)).scalars())
            assert operations == {"create", "resolve_token"}


def test_a_400_is_dead_lettered_with_the_crms_description_in_the_view_and_the_cli(
    settings: dict[str, Any],
    crm: RunningCRMSim,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim_post(crm, "_sim/faults", {"status": 400, "count": 1, "path": "/requests.json"})
    with running(settings) as (gateway, http, headers):
        submit_and_approve(http, headers, 1, prefix="bad")
        (item,) = dead_items(http, headers, 1)
        assert "injected failure (400)" in item["last_error"]
        assert item["last_attempt"]["http_status"] == 400
        assert json.loads(item["last_attempt"]["answer"]) == [{"code": 400, "description": "injected failure (400)"}]
        history = http.get(f"/api/v1/outbox/{item['id']}", headers=headers).json()["history"]
        assert len(history) == 1, "a refusal is not retried"

        monkeypatch.setenv(
            "KANAL_CONFIG_DIR", str(write_config(tmp_path / "cli", {**settings, "crm": settings["crm"]}))
        )
        assert kanal(["outbox", "list"]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["crm_answer"] == item["last_attempt"]["answer"]

        # Every attempt is logged; none holds our API key.
        with read_session(gateway.runtime.engine) as session:
            answers = [a.answer or "" for a in session.execute(select(CRMAttempt)).scalars()]
        assert answers and not any(TEST_CRM_KEY in a for a in answers)


def test_a_refused_api_key_pauses_sending_and_alerts_until_the_operator_resumes(
    settings: dict[str, Any], crm: RunningCRMSim
) -> None:
    settings["crm"]["api_key"] = "rotated-away-key"
    with running(settings) as (_gateway, http, headers):
        submit_and_approve(http, headers, 3, prefix="key")
        health = wait_until(
            lambda: (h := http.get("/healthz").json())["crm"]["paused"] and h, timeout=30, what="the pause"
        )
        assert "refused our credentials" in health["alerts"][0]
        refused = sum(n for k, n in sim_get(crm, "_sim/traffic").items() if k.endswith(" 403"))
        assert 1 <= refused <= 3
        # No retry storm: while paused nothing more reaches the CRM.
        with pytest.raises(AssertionError):
            wait_until(
                lambda: sum(n for k, n in sim_get(crm, "_sim/traffic").items() if k.startswith("POST")) > refused,
                timeout=1.5,
                what="more requests",
            )
        assert not http.get("/api/v1/outbox", headers=headers).json(), "the reports wait; they are not dead"

        sim_post(crm, "_sim/api-keys", {"keys": [TEST_CRM_KEY, "rotated-away-key"]})  # the CRM's admin fixes it
        assert http.post("/api/v1/outbox/resume", headers=headers).json()["count"] == 1
        wait_for_reports(http, headers, 3, state="forwarded")
        assert sim_get(crm, "_sim/stats")["requests"] == 3
        assert http.get("/healthz").json()["alerts"] == []


def test_a_restart_with_new_credentials_lifts_the_pause(settings: dict[str, Any], crm: RunningCRMSim) -> None:
    good_key = settings["crm"]["api_key"]
    settings["crm"]["api_key"] = "wrong-key-1234"
    with running(settings) as (_gateway, http, headers):
        submit_and_approve(http, headers, 1, prefix="restart")
        wait_until(lambda: http.get("/healthz").json()["crm"]["paused"], timeout=30, what="the pause")
    settings["crm"]["api_key"] = good_key
    with running(settings) as (_gateway, http, headers):
        wait_for_reports(http, headers, 1, state="forwarded")
        assert not http.get("/healthz").json()["crm"]["paused"]


def test_a_failing_crm_recovers_and_every_report_arrives_once(settings: dict[str, Any], crm: RunningCRMSim) -> None:
    sim_post(crm, "_sim/faults", {"status": 503, "count": 12, "path": "/requests.json"})
    with running(settings) as (gateway, http, headers):
        submit_and_approve(http, headers, 5, prefix="flaky")
        forwarded = wait_for_reports(http, headers, 5, state="forwarded")
        assert len({r["crm_service_request_id"] for r in forwarded}) == 5
        assert sim_get(crm, "_sim/stats")["requests"] == 5
        with read_session(gateway.runtime.engine) as session:
            statuses = [a.http_status for a in session.execute(select(CRMAttempt)).scalars()]
        assert statuses.count(503) == 12 and statuses.count(200) == 5


def test_json_push_is_signed_masked_and_deduplicated(settings: dict[str, Any], tmp_path: Path) -> None:
    with RunningCRMSim(db_path=tmp_path / "push.sqlite3", push_secrets=[PUSH_SECRET]) as sim:
        settings["crm"].update(kind="json_push", push_url=sim.push_url, push_secret=PUSH_SECRET)
        with running(settings) as (_gateway, http, headers):
            text = "Lampu jalan mati, hubungi saya di 081298765432 atau budi@example.com"
            submit_and_approve(http, headers, 1, prefix="push", text=text)
            (report,) = wait_for_reports(http, headers, 1, state="forwarded")
            stored = sim_get(sim, f"_sim/requests/{report['crm_service_request_id']}")
            pushed = stored["attributes"]["push"]
            assert pushed["ticket_code"] == report["ticket_code"]
            assert "081298765432" not in json.dumps(pushed) and "budi@example.com" not in json.dumps(pushed)

        # A retry after a lost answer carries the same key: the receiver keeps one report.
        async def push_twice() -> tuple[str | None, str | None]:
            client = JsonPushClient(CRMConfig(kind="json_push", push_url=sim.push_url, push_secret=PUSH_SECRET))
            try:
                doc = {**pushed, "text": "again"}
                first = await client.push(doc, idempotency_key="kanal-x-v1")
                second = await client.push(doc, idempotency_key="kanal-x-v1")
                return first.service_request_id, second.service_request_id
            finally:
                await client.aclose()

        first, second = asyncio.run(push_twice())
        assert first == second and sim_get(sim, "_sim/stats")["requests"] == 2

        forged = httpx.post(
            sim.push_url, json=pushed, headers={"Idempotency-Key": "k", "X-Kanal-Signature": "t=1,v1=00"}
        )
        assert forged.status_code == 401


def test_retry_and_drop_from_the_api_and_the_cli(
    settings: dict[str, Any],
    crm: RunningCRMSim,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim_post(crm, "_sim/faults", {"status": 422, "count": 2, "path": "/requests.json"})
    with running(settings) as (_gateway, http, headers):
        submit_and_approve(http, headers, 2, prefix="replay")
        first, second = dead_items(http, headers, 2)

        assert http.post(f"/api/v1/outbox/{first['id']}/retry", headers=headers).status_code == 200
        wait_for_reports(http, headers, 1, state="forwarded")

        monkeypatch.setenv("KANAL_CONFIG_DIR", str(write_config(tmp_path / "cli", settings)))
        assert kanal(["outbox", "drop", second["id"], "--reason", "duplicate of a CRM ticket made by phone"]) == 0
        assert "1 item(s) dropped" in capsys.readouterr().out
        events = http.get(f"/api/v1/reports/{second['report_id']}/events", headers=headers).json()
        assert events[-1]["action"] == "crm_dropped" and events[-1]["note"] == "duplicate of a CRM ticket made by phone"
        assert http.get("/api/v1/outbox", headers=headers).json() == []
        assert (
            http.post(f"/api/v1/outbox/{second['id']}/drop", json={"reason": "x"}, headers=headers).status_code == 409
        )
        assert http.post(f"/api/v1/outbox/{second['id']}/retry", headers=headers).status_code == 409
    assert sim_get(crm, "_sim/stats")["requests"] == 1


def test_attempt_answers_never_keep_a_key_or_secret() -> None:
    crm = CRMConfig(api_key="s3cr3t-key", kind="json_push", push_url="http://x/", push_secret=PUSH_SECRET)
    echoed = f'{{"echo": "api_key=s3cr3t-key&service_code=jalan", "sig": "{PUSH_SECRET}", "api_key": "other"}}'
    cleaned = redact(echoed, crm) or ""
    assert "s3cr3t-key" not in cleaned and PUSH_SECRET not in cleaned and "other" not in cleaned
