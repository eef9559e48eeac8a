"""Acceptance 4: the CRM is down while reports are approved; none is lost, each arrives once when it is back."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from crm_client.tables import OutboxItem
from crm_sim.server import RunningCRMSim
from gateway.db import read_session
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway, wait_until

REPORTS = 50


def _min_attempts(gateway: RunningGateway) -> int:
    with read_session(gateway.runtime.engine) as session:
        return int(session.execute(select(func.min(OutboxItem.attempts))).scalar_one() or 0)


def test_fifty_approvals_during_a_crm_outage_arrive_once_after_it_and_a_gateway_restart(
    settings: dict[str, Any],
    crm: RunningCRMSim,
    http: httpx.Client,
    gateway: RunningGateway,
    admin_headers: dict[str, str],
) -> None:
    crm.stop()
    for n in range(REPORTS):
        assert post_api(http, complaint(f"outage-{n}")).status_code == 200
    pending = wait_for_reports(http, admin_headers, REPORTS, state="pending_review")
    for report in pending:
        assert approve(http, admin_headers, report["id"]).status_code == 200

    wait_until(
        lambda: _min_attempts(gateway) >= 2,
        timeout=30,
        what="every item tried at least twice against the dead CRM",
    )
    health = http.get("/healthz").json()
    assert health["backlog"]["outbox_pending"] == REPORTS and health["backlog"]["outbox_dead"] == 0
    assert len(wait_for_reports(http, admin_headers, REPORTS, state="approved")) == REPORTS

    # The gateway goes down too, mid-outage; a new process on the same database must pick the work up.
    gateway.__exit__(None, None, None)
    crm.start()
    with RunningGateway(settings) as restarted, httpx.Client(base_url=restarted.url) as client:
        forwarded = wait_for_reports(client, admin_headers, REPORTS, state="forwarded", timeout=60)
        ids = {r["crm_service_request_id"] for r in forwarded}
        assert len(ids) == REPORTS and None not in ids
        stats = httpx.get(f"{crm.base_url}_sim/stats").json()
        assert stats["requests"] == REPORTS, "each report reached the CRM exactly once"
        with read_session(restarted.runtime.engine) as session:
            states = dict(session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all())
        assert states == {"sent": REPORTS}


def test_a_refusing_crm_dead_letters_the_report_and_retry_replays_it(
    settings: dict[str, Any],
    crm: RunningCRMSim,
    http: httpx.Client,
    gateway: RunningGateway,
    admin_headers: dict[str, str],
) -> None:
    from crm_client.outbox import retry_dead

    bad = complaint("refused-1")
    bad["text"] = "x" * 10
    post_api(http, bad)
    (report,) = wait_for_reports(http, admin_headers, 1)
    # An unknown service code is the CRM's to refuse (404 in Open311): not worth retrying.
    assert approve(http, admin_headers, report["id"], edits={"service_code": "no-such-service"}).status_code == 200
    (failed,) = wait_for_reports(http, admin_headers, 1, state="crm_failed")
    events = http.get(f"/api/v1/reports/{failed['id']}/events", headers=admin_headers).json()
    assert events[-1]["action"] == "crm_failed" and "refused after 1 attempt" in events[-1]["note"]
    assert http.get("/healthz").json()["backlog"]["outbox_dead"] == 1

    assert retry_dead(gateway.runtime.engine, item_ids=None, actor="test") == 1
    # Still refused: the retry ran and failed the same way, not silently dropped.
    wait_until(
        lambda: (
            http.get("/healthz").json()["backlog"]["outbox_dead"] == 1
            and http.get(f"/api/v1/reports/{failed['id']}/events", headers=admin_headers).json()[-1]["action"]
            == "crm_failed"
        ),
        timeout=10,
        what="the replayed item to be refused again",
    )
