"""Signed JSON push: the sink for a CRM without Open311.

`POST crm.push_url` with the report as JSON (`push_document`), signed like the `api` adapter's deliveries
(`X-Kanal-Signature: t=<unix>,v1=<hmac-sha256 of "<t>.<body>">`, see adapters/signing.py) and carrying the
outbox item's `Idempotency-Key`, so a retry after a lost answer is recognised by the receiver. Statuses map to
the same retry policy as Open311 (`crm_client.errors.error_for_status`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from adapters.signing import sign
from crm_client.errors import CRMError, error_for_status
from crm_client.open311 import Created, describe_error, request_fields, service_code_for
from gateway.settings import CRMConfig
from review_queue.tables import Report

SIGNATURE_HEADER = "X-Kanal-Signature"
SCHEMA_VERSION = 1


def push_document(report: Report, crm: CRMConfig) -> dict[str, Any]:
    """The JSON a push CRM receives: routing, place and the masked text; never the citizen's original words."""
    fields = request_fields(report, crm)
    location = report.location or {}
    return {
        "schema": SCHEMA_VERSION,
        "report_id": report.id,
        "ticket_code": report.ticket_code,
        "channel_id": report.channel_id,
        "received_at": report.received_at.isoformat(),
        "service_code": service_code_for(report, crm),
        "category_code": report.category_code,
        "agency_code": report.agency_code,
        "agency_unit": report.agency_unit,
        # The masked text: NIK, phone numbers and emails in a complaint are not the agency's business.
        "text": report.text_masked,
        "description": fields["description"],
        "address": fields.get("address_string"),
        "lat": location.get("lat"),
        "lng": location.get("lng"),
        "kota_code": report.kota_code,
        "kecamatan_code": report.kecamatan_code,
        "kelurahan_code": report.kelurahan_code,
        "media_urls": [m["url"] for m in report.media if str(m.get("url", "")).startswith(("http://", "https://"))],
        "attributes": {k[len("attribute[") : -1]: v for k, v in fields.items() if k.startswith("attribute[")},
    }


class JsonPushClient:
    """Posts push documents; every failure becomes a `CRMError` with its retry policy."""

    def __init__(self, crm: CRMConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not crm.push_url or crm.push_secret is None:
            raise ValueError("json_push needs crm.push_url and crm.push_secret")
        self._crm = crm
        self._url = crm.push_url
        self._secret = crm.push_secret.get_secret_value().encode()
        self._http = httpx.AsyncClient(
            timeout=crm.timeout_seconds, transport=transport, headers={"User-Agent": "kanal/0.1 (+json-push)"}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def push(self, document: dict[str, Any], *, idempotency_key: str) -> Created:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            # Signed per attempt: the receiver's replay window is minutes, a retry may come hours later.
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
        }
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise CRMError(f"CRM did not answer within {self._crm.timeout_seconds} s", retryable=True) from None
        except httpx.TransportError as exc:
            raise CRMError(f"CRM unreachable at {self._url} ({type(exc).__name__})", retryable=True) from None
        parsed: Any
        try:
            parsed = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        if response.status_code >= 300:
            raise error_for_status(response.status_code, describe_error(parsed, response), answer=response.text)
        # The receiver's own id when it gives one; otherwise our key is the only handle on it.
        ticket = parsed.get("id") if isinstance(parsed, dict) else None
        return Created(str(ticket) if ticket else None, None, response.status_code, response.text)
