"""`kanal demo`: the reference CRM, the gateway, a demo admin and a few complaints, on one machine.

Everything lives under ./var/ (demo.sqlite3 for Kanal, demo-crm.sqlite3 for the CRM). Running the
demo again reuses both: the sample complaints carry fixed ids, so they are recognised, not doubled.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from adapters import signing
from crm_sim.server import RunningCRMSim
from gateway.app import create_app
from gateway.logging_setup import configure
from gateway.settings import KanalSettings, load_settings
from review_queue.auth import AccountError, create_admin
from review_queue.tables import AdminRole

DEMO_ADMIN = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed on start; the demo database is for trying Kanal out only
DEMO_CRM_KEY = "demo-key"
API_CHANNEL = "api:partner"
FORM_CHANNEL = "web_form:balaiwarga"
READY_LINE = "Kanal demo is ready"

SAMPLES = [
    {
        "external_id": "demo-call-centre-0001",
        "text": (
            "Jalan berlubang besar di Jl. Kramat Raya depan halte, sudah dua minggu belum diperbaiki. "
            "Motor sering jatuh."
        ),
        "sender": {"id": "cc-agent-7", "name": "Budi Santoso", "phone": "081234567890"},
        "location": {"lat": -6.1865, "lng": 106.8437, "address": "Jl. Kramat Raya, Senen, Jakarta Pusat"},
        "sent_at": "2026-11-27T08:15:00+07:00",
    },
    {
        "external_id": "demo-call-centre-0002",
        "text": "Lampu PJU di gang RT 05/RW 02 mati semua sejak minggu lalu, jalan gelap dan rawan.",
        "sender": {"id": "cc-agent-3", "name": "Siti Aminah"},
        "location": {"address": "Jl. Kemuning RT 05/RW 02, Kel. Utan Kayu Utara, Matraman"},
        "sent_at": "2026-11-27T19:40:00+07:00",
    },
]


def run_demo(*, port: int, crm_port: int) -> int:
    var = Path("var")
    var.mkdir(exist_ok=True)
    settings = load_settings(
        overrides={
            "database_url": f"sqlite:///{var / 'demo.sqlite3'}",
            "public_base_url": f"http://127.0.0.1:{port}",
            "crm": {"base_url": f"http://127.0.0.1:{crm_port}/", "api_key": DEMO_CRM_KEY},
        }
    )
    configure(settings.log_level)
    app = create_app(settings)
    crm = RunningCRMSim(db_path=var / "demo-crm.sqlite3", api_keys=[DEMO_CRM_KEY], port=crm_port)
    print(f"kanal demo: starting the reference CRM on {crm.base_url}", flush=True)
    crm.start()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    seeder = threading.Thread(target=_seed, args=(server, app, settings, port, crm.base_url), daemon=True)
    seeder.start()
    try:
        server.run()
    finally:
        crm.stop()
    return 0


def _seed(server: uvicorn.Server, app: FastAPI, settings: KanalSettings, port: int, crm_url: str) -> None:
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    with contextlib.suppress(AccountError):  # made by an earlier run
        create_admin(
            app.state.kanal.engine,
            username=DEMO_ADMIN,
            password=DEMO_PASSWORD,
            role=AdminRole.SUPERADMIN,
        )
    secret = settings.channels[API_CHANNEL].settings["secret"].encode()
    with httpx.Client(base_url=base, timeout=10) as http:
        print("kanal demo: sending sample complaints", flush=True)
        tickets = [_post_signed(http, secret, sample) for sample in SAMPLES]
        form_ticket = _submit_form(http, settings.channels[FORM_CHANNEL].settings.get("min_fill_seconds", 3))
        token = http.post("/api/v1/auth/token", data={"username": DEMO_ADMIN, "password": DEMO_PASSWORD}).json()[
            "access_token"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        first = _wait_for_report(http, auth, tickets[0])
        if first["state"] == "pending_review":
            http.post(f"/api/v1/reports/{tickets[0]}/approve", json={}, headers=auth)
        forwarded = _wait_for_state(http, auth, tickets[0], "forwarded")
    print(
        f"""
  Gateway:        {base}
  Admin app:      {base}/admin   (sign in as {DEMO_ADMIN} / {DEMO_PASSWORD}; dashboard: {base}/admin/dashboard)
  Walk-in desk:   {base}/admin/intake   Citizen status: {base}/status/{tickets[0]}
  Public form:    {base}/channels/{FORM_CHANNEL}/inbound
  API docs:       {base}/docs
  Health:         {base}/healthz   Metrics: {base}/metrics
  Reference CRM:  {crm_url}requests.json   (stats: {crm_url}_sim/stats)
  JSON API as the demo admin:
    TOKEN=$(curl -s -d username={DEMO_ADMIN} -d password={DEMO_PASSWORD} {base}/api/v1/auth/token \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -s -H "Authorization: Bearer $TOKEN" '{base}/api/v1/reports?state=pending_review'
  Sample tickets: {tickets[0]} (forwarded to the CRM as {forwarded.get("crm_service_request_id")}),
                  {tickets[1]} (pending review), {form_ticket} (from the web form, pending review)
{READY_LINE}. Press Ctrl-C to stop.""",
        flush=True,
    )


def _post_signed(http: httpx.Client, secret: bytes, sample: Mapping[str, object]) -> str:
    body = json.dumps(sample).encode()
    header = signing.sign(secret, body, int(time.time()))
    response = http.post(
        f"/channels/{API_CHANNEL}/inbound",
        content=body,
        headers={"X-Kanal-Signature": header, "Content-Type": "application/json"},
    )
    response.raise_for_status()
    return str(response.json()["accepted"][0]["ticket"])


def _submit_form(http: httpx.Client, min_fill_seconds: float) -> str:
    page = http.get(f"/channels/{FORM_CHANNEL}/inbound")
    token = re.search(r'name="form_token"\s+value="([^"]+)"', page.text)
    if token is None:
        return "(form not available)"
    time.sleep(float(min_fill_seconds) + 0.2)  # a person takes longer than this to fill the form in
    fields = {
        "form_token": token.group(1),
        "description": "Sampah menumpuk di pinggir kali dekat jembatan, bau dan mulai menyumbat saluran air.",
        "address": "Jl. Kali Pasir, Cikini, Menteng",
        "name": "Warga Cikini",
    }
    response = http.post(
        f"/channels/{FORM_CHANNEL}/inbound", data=fields, headers={"Origin": str(http.base_url).rstrip("/")}
    )
    found = re.search(r"\b([0-9A-Z]{5}-[0-9A-Z]{5})\b", response.text)
    return found.group(1) if response.status_code == 200 and found else f"(form answered {response.status_code})"


def _wait_for_report(http: httpx.Client, auth: dict[str, str], ticket: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http.get(f"/api/v1/reports/{ticket}", headers=auth)
        if response.status_code == 200:
            return dict(response.json())
        time.sleep(0.2)
    raise TimeoutError(f"report {ticket} did not appear within {timeout} s; see the log above")


def _wait_for_state(
    http: httpx.Client, auth: dict[str, str], ticket: str, state: str, timeout: float = 30
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    report = _wait_for_report(http, auth, ticket)
    while report["state"] != state and time.monotonic() < deadline:
        time.sleep(0.2)
        report = _wait_for_report(http, auth, ticket)
    return report
