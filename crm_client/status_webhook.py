"""`POST /api/v1/crm/status`: the CRM tells Kanal a report's status changed, instead of waiting for a poll.

Signed like the `api` channel (`X-Kanal-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`,
checked on the raw body in constant time) with `status_sync.webhook_secret`. The body is one Open311
service request object or a list of them (`service_request_id`, `status`, `status_notes`,
`updated_datetime`, and optionally `crm_status`). Applying the same change twice records it once.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from adapters import signing
from adapters.errors import SignatureInvalid
from crm_client.status_sync import apply_many, parse_status
from gateway.db import utcnow
from gateway.deps import RuntimeDep

router = APIRouter(prefix="/api/v1/crm", tags=["crm"])

MAX_BODY_BYTES = 1024 * 1024


@router.post("/status")
async def status_webhook(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Apply status changes pushed by the CRM; answers how many reports changed."""
    secret = runtime.settings.status_sync.webhook_secret.get_secret_value()
    if not secret:
        return JSONResponse(
            {"detail": "the status webhook is off; set status_sync.webhook_secret and sign requests with it"}, 404
        )
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"detail": f"body over {MAX_BODY_BYTES} bytes; send fewer requests per call"}, 413)
    try:
        signing.verify(request.headers.get("x-kanal-signature"), body, [secret.encode()], now=utcnow())
    except SignatureInvalid as exc:
        return JSONResponse({"detail": exc.message}, 401)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return JSONResponse({"detail": "body is not JSON; send one service request object or a list of them"}, 400)
    items = document if isinstance(document, list) else [document]
    statuses = [s for s in (parse_status(i) for i in items if isinstance(i, dict)) if s is not None]
    if not statuses:
        return JSONResponse({"detail": "no service_request_id in the body; nothing to apply"}, 422)
    changed = await asyncio.to_thread(apply_many, runtime.engine, statuses, source="webhook", settings=runtime.settings)
    return JSONResponse({"received": len(statuses), "changed": changed})
