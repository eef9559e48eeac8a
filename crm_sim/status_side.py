"""The CRM's status side, for the whole loop to run locally: an operator page and status webhooks.

- `GET /_sim/operator`: a small page listing the newest requests, each with a form to move it through
  Menunggu, Koordinasi, Disposisi, Proses, Selesai with a note (`POST /_sim/operator/{id}`).
- Every status change (from that page or `POST /_sim/requests/{id}/status`) is posted to the status
  webhook when one is set (`--status-webhook-url` / `--status-webhook-secret`, or at run time with
  `POST /_sim/status-webhook {"url", "secret"}`): the request as `requests.json` renders it, signed
  `X-Kanal-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, as a CRM would call Kanal.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from starlette.concurrency import run_in_threadpool

from crm_sim.store import CRM_STATUSES, StoredRequest, utc_now

if TYPE_CHECKING:
    from crm_sim.app import SimConfig

log = logging.getLogger(__name__)

PAGE_SIZE = 50


@dataclass
class StatusWebhook:
    url: str
    secret: str


@dataclass
class WebhookSlot:
    """The webhook in force; a holder, so the app's frozen config can still be re-pointed at run time."""

    current: StatusWebhook | None = None


class WebhookSetting(BaseModel):
    """Body of `POST /_sim/status-webhook`; an empty url turns the webhook off."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    secret: str = Field(default="", max_length=200)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post_status_webhook(webhook: StatusWebhook | None, rendered: dict[str, Any]) -> str:
    """Tell the webhook about one changed request; returns what happened, for the operator to read."""
    if webhook is None:
        return "no status webhook set"
    body = json.dumps(rendered).encode()
    headers = {"Content-Type": "application/json", "X-Kanal-Signature": sign(webhook.secret, body, int(time.time()))}
    try:
        response = httpx.post(webhook.url, content=body, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        log.warning("crm-sim: status webhook to %s failed: %s", webhook.url, type(exc).__name__)
        return f"webhook failed: {type(exc).__name__}"
    return f"webhook answered {response.status_code}"


def _page(config: SimConfig, message: str | None) -> str:
    newest = config.store.search(start=utc_now() - timedelta(days=3650), end=utc_now(), limit=PAGE_SIZE)
    options = "".join(f"<option>{html.escape(s)}</option>" for s in CRM_STATUSES)
    rows = []
    for req in newest:
        rid = html.escape(req.service_request_id or "")
        rows.append(
            "<tr>"
            f"<td>{rid}</td><td>{html.escape(req.crm_status)}</td>"
            f"<td>{html.escape((req.description or '')[:160])}</td>"
            f'<td><form method="post" action="/_sim/operator/{rid}">'
            f'<select name="crm_status" aria-label="status">{options}</select> '
            f'<input name="note" placeholder="note" aria-label="note" maxlength="500"> '
            '<button type="submit">Move</button></form></td></tr>'
        )
    notice = f'<p role="status">{html.escape(message)}</p>' if message else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CRM simulator: operator</title>'
        "</head><body><h1>CRM simulator: move requests</h1>"
        f"{notice}<table><thead><tr><th>id</th><th>status</th><th>description</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows) or '<tr><td colspan=4>no requests yet</td></tr>'}</tbody></table></body></html>"
    )


def after_status_change(config: SimConfig, updated: StoredRequest, rendered: dict[str, Any]) -> str:
    """Run after every status change: the webhook, if any."""
    return post_status_webhook(config.status_webhook.current, rendered)


def add_status_side_routes(app: FastAPI, config: SimConfig) -> None:
    from crm_sim.app import render_request

    @app.get("/_sim/operator", response_class=HTMLResponse)
    def operator_page(message: str | None = None) -> HTMLResponse:
        return HTMLResponse(
            _page(config, message),
            headers={"Content-Security-Policy": "default-src 'none'; form-action 'self'"},
        )

    @app.post("/_sim/operator/{service_request_id}")
    async def operator_move(service_request_id: str, request: Request) -> Any:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        crm_status = (form.get("crm_status") or [""])[0]
        note = (form.get("note") or [""])[0][:500] or None
        if crm_status not in CRM_STATUSES:
            return JSONResponse([{"code": 400, "description": f"unknown status; use one of {CRM_STATUSES}"}], 400)
        updated = await run_in_threadpool(config.store.set_status, service_request_id, crm_status=crm_status, note=note)
        if updated is None:
            return JSONResponse([{"code": 404, "description": "no such service_request_id"}], 404)
        outcome = await run_in_threadpool(after_status_change, config, updated, render_request(updated))
        return RedirectResponse(f"/_sim/operator?message={service_request_id}+is+now+{crm_status}%3B+{outcome}", 303)

    @app.post("/_sim/status-webhook")
    async def set_status_webhook(setting: WebhookSetting) -> dict[str, Any]:
        config.status_webhook.current = StatusWebhook(str(setting.url), setting.secret) if setting.url else None
        return {"status_webhook": str(setting.url) if setting.url else None}
