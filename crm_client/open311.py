"""Open311 GeoReport v2 client: the fields of a service request, and `POST requests.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from crm_client.errors import CRMError, error_for_status
from gateway.settings import CRMConfig
from normalizer.steps.masking import mask_personal_data
from review_queue.tables import Report

DESCRIPTION_LIMIT = 4000  # the spec's limit on `description`


@dataclass(frozen=True)
class Created:
    """The CRM's answer: a service request id, or a token to resolve later (deferred creation)."""

    service_request_id: str | None
    token: str | None


def request_fields(report: Report, crm: CRMConfig) -> dict[str, str]:
    """The form fields for `report`, without the API key (added at send time, never stored)."""
    fields: dict[str, str] = {
        "service_code": report.service_code or crm.default_service_code,
        # The masked text: NIK, phone numbers and emails in a complaint are not the agency's business.
        "description": f"[{report.ticket_code}] {report.text_masked}"[:DESCRIPTION_LIMIT],
    }
    location = report.location or {}
    if location.get("lat") is not None and location.get("lng") is not None:
        fields["lat"] = repr(float(location["lat"]))
        fields["long"] = repr(float(location["lng"]))
    address = (report.place or {}).get("address_text") or location.get("address")
    if address:
        fields["address_string"] = mask_personal_data(str(address))[0]
    if "lat" not in fields and "address_string" not in fields:
        # Open311 needs a location; the channel gave none and the admin approved anyway.
        fields["address_string"] = "Lokasi tidak disebutkan (DKI Jakarta)"
    public_media = [m["url"] for m in report.media if str(m.get("url", "")).startswith(("http://", "https://"))]
    if public_media:
        fields["media_url"] = public_media[0]
    sender = report.sender if crm.send_reporter_contact and report.sender else {}
    if sender.get("email"):
        fields["email"] = str(sender["email"])
    if sender.get("phone"):
        fields["phone"] = str(sender["phone"])
    if sender.get("name"):
        first, _, last = str(sender["name"]).partition(" ")
        fields["first_name"] = first
        if last:
            fields["last_name"] = last
    if crm.jurisdiction_id:
        fields["jurisdiction_id"] = crm.jurisdiction_id
    return fields


class Open311Client:
    """Sends service requests; every failure becomes a `CRMError` with its retry policy."""

    def __init__(self, crm: CRMConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._crm = crm
        self._http = httpx.AsyncClient(
            base_url=crm.base_url,
            timeout=crm.timeout_seconds,
            transport=transport,
            headers={"User-Agent": "kanal/0.1 (+open311)"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(self, fields: dict[str, str], *, idempotency_key: str) -> Created:
        form = {**fields, "api_key": self._crm.api_key.get_secret_value()}
        try:
            response = await self._http.post("requests.json", data=form, headers={"Idempotency-Key": idempotency_key})
        except httpx.TimeoutException:
            raise CRMError(f"CRM did not answer within {self._crm.timeout_seconds} s", retryable=True) from None
        except httpx.TransportError as exc:
            raise CRMError(f"CRM unreachable at {self._crm.base_url} ({type(exc).__name__})", retryable=True) from None
        body = _json_or_none(response)
        if response.status_code >= 300:
            raise error_for_status(response.status_code, _describe(body, response), _retry_after(response))
        if not isinstance(body, list) or not body or not isinstance(body[0], dict):
            raise CRMError(
                f"CRM answered {response.status_code} with an unexpected body: {response.text[:200]!r}",
                retryable=True,
            )
        first = body[0]
        request_id, token = first.get("service_request_id"), first.get("token")
        if not request_id and not token:
            raise CRMError("CRM answered without service_request_id or token", retryable=True)
        return Created(service_request_id=str(request_id) if request_id else None, token=str(token) if token else None)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _describe(body: Any, response: httpx.Response) -> str:
    """The spec's error array `[{"code", "description"}]` as one line; the raw text when it is not that."""
    if isinstance(body, list) and body and all(isinstance(e, dict) for e in body):
        return "; ".join(str(e.get("description") or e.get("code")) for e in body)
    return response.text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None
