"""Acceptance 5 and 6: a SIGKILL mid-ingest loses no acknowledged message; two processes never share a row."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm_sim.server import RunningCRMSim
from gateway.db import make_engine, read_session
from gateway.inbox import InboundMessageRow
from review_queue.tables import Report
from tests.conftest import base_settings
from tests.support.api_client import signed_headers
from tests.support.servers import GatewayProcess, WorkerProcess, wait_until, write_config

pytestmark = pytest.mark.slow


def _body(n: int) -> bytes:
    return json.dumps(
        {"external_id": f"load-{n:05d}", "text": f"Laporan uji nomor {n}: saluran air tersumbat di gang"}
    ).encode()


def _rows(database_url: str) -> tuple[list[InboundMessageRow], list[Report]]:
    engine = make_engine(database_url)
    try:
        with read_session(engine) as session:
            return list(session.execute(select(InboundMessageRow)).scalars()), list(
                session.execute(select(Report)).scalars()
            )
    finally:
        engine.dispose()


def test_sigkill_during_ingest_loses_no_acknowledged_message(
    database_url: str, crm: RunningCRMSim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", base_settings(database_url, crm.base_url))
    gateway = GatewayProcess(config).start()
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def deliver(n: int) -> None:
        if killed.is_set():
            return
        body = _body(n)
        try:
            answer = httpx.post(
                f"{gateway.url}/channels/api:trusted/inbound",
                content=body,
                headers=signed_headers(body),
                timeout=10,
            )
        except httpx.TransportError:
            return  # not acknowledged: the channel would deliver it again
        if answer.status_code == 200:
            with lock:
                acked.append(f"load-{n:05d}")
                if len(acked) == 300:
                    gateway.kill()
                    killed.set()

    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(deliver, range(1000)))
        assert killed.is_set() and len(acked) >= 300
        gateway.start()  # same config, same database: recovery is the normal start-up path

        def all_reported() -> bool:
            rows, reports = _rows(database_url)
            return len(reports) >= len({r.external_id for r in rows} & set(acked)) and all(
                r.state == "normalized" for r in rows
            )

        wait_until(all_reported, timeout=60, interval=0.5, what="every stored message to become a report")
    finally:
        gateway.stop()
    rows, reports = _rows(database_url)
    stored = {r.external_id for r in rows}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged message(s) lost, e.g. {sorted(missing)[:5]}"
    assert len(rows) == len(stored), "a message was stored twice"
    per_message = Counter(r.inbound_message_id for r in reports)
    assert len(reports) == len(rows) and max(per_message.values()) == 1, "each message becomes exactly one report"


def test_two_processes_on_one_postgresql_process_each_message_once(
    postgres_url: str, crm: RunningCRMSim, tmp_path: Path
) -> None:
    settings: dict[str, Any] = base_settings(postgres_url, crm.base_url)
    config = write_config(tmp_path / "config", settings)
    first, second = GatewayProcess(config), GatewayProcess(config)
    total = 2000
    try:
        first.start()
        second.start()
        urls = [first.url, second.url]

        def deliver(n: int) -> int:
            body = _body(n)
            url = f"{urls[n % 2]}/channels/api:trusted/inbound"
            return httpx.post(url, content=body, headers=signed_headers(body), timeout=30).status_code

        with ThreadPoolExecutor(32) as pool:
            statuses = Counter(pool.map(deliver, range(total)))
        assert statuses == {200: total}
        wait_until(
            lambda: httpx.get(f"{crm.base_url}_sim/stats").json()["requests"] >= total,
            timeout=180,
            interval=0.5,
            what=f"{total} requests in the CRM",
        )
    finally:
        first.stop()
        second.stop()
    rows, reports = _rows(postgres_url)
    assert len(rows) == total and all(r.attempts == 1 for r in rows), "a message was normalised twice"
    assert len({r.processed_by for r in rows}) == 2, "both processes should have taken part"
    assert len(reports) == total and {r.state for r in reports} == {"forwarded"}
    assert httpx.get(f"{crm.base_url}_sim/stats").json()["requests"] == total
    assert len({r.crm_service_request_id for r in reports}) == total


def test_web_only_and_worker_processes_share_postgresql(postgres_url: str, crm: RunningCRMSim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", base_settings(postgres_url, crm.base_url))
    web = GatewayProcess(config, no_workers=True).start()
    worker = WorkerProcess(config)
    try:
        for n in range(20):
            body = _body(n)
            answer = httpx.post(f"{web.url}/channels/api:trusted/inbound", content=body, headers=signed_headers(body))
            assert answer.status_code == 200
        rows, reports = _rows(postgres_url)
        assert len(rows) == 20 and reports == [], "a web-only process stores deliveries and does nothing else"
        worker.start()
        wait_until(
            lambda: httpx.get(f"{crm.base_url}_sim/stats").json()["requests"] == 20,
            timeout=60,
            interval=0.2,
            what="the worker to forward all 20",
        )
    finally:
        web.stop()
        assert worker.stop() == 0, "the worker stops cleanly on SIGTERM"
    rows, reports = _rows(postgres_url)
    assert {r.state for r in reports} == {"forwarded"} and len(reports) == 20
    assert {r.processed_by for r in rows} == {rows[0].processed_by} and str(worker.process.pid) in rows[0].processed_by  # type: ignore[union-attr]
