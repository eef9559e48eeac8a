"""Open311 GeoReport v2 client: the fields of a service request, `POST requests.json`, `GET tokens/{token}.json`,
and service discovery (`services.json`, `services/{code}.json`).

Every failure becomes a `CRMError` carrying its retry policy; the spec's error array
`[{"code": ..., "description": ...}]` becomes its message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from crm_client.errors import CRMError, error_for_status
from gateway.settings import CRMConfig
from normalizer.steps.masking import mask_personal_data
from review_queue.tables import Report

DESCRIPTION_LIMIT = 4000  # the spec's limit on `description`
#: Report fields an attribute default may name as `report.<field>`: routing facts, never personal data.
REPORT_FIELDS_FOR_ATTRIBUTES = frozenset(
    {"ticket_code", "category_code", "agency_code", "agency_unit", "kota_code", "kecamatan_code", "kelurahan_code"}
)


@dataclass(frozen=True)
class Created:
    """The CRM's answer: a service request id, or a token to resolve later (deferred creation)."""

    service_request_id: str | None
    token: str | None
    status_code: int = 200
    #: The answer body as received, for the attempt log.
    answer: str = ""


# -- service discovery, parsed at the edge --------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttributeValue(_Lenient):
    key: str
    name: str | None = None


class ServiceAttribute(_Lenient):
    code: str
    datatype: str = "string"
    required: bool = False
    variable: bool = True
    description: str | None = None
    values: list[AttributeValue] = Field(default_factory=list)


class ServiceDefinition(_Lenient):
    service_code: str
    attributes: list[ServiceAttribute] = Field(default_factory=list)


class ServiceInfo(_Lenient):
    service_code: str
    service_name: str | None = None
    #: Per the spec, true when the service has a definition with attributes to fill in.
    metadata: bool = False
    type: str | None = None


_SERVICE_LIST = TypeAdapter(list[ServiceInfo])


# -- building a request --------------------------------------------------------------------------


def service_code_for(report: Report, crm: CRMConfig) -> str:
    """The CRM service for `report`: a code set explicitly on the report (an admin's edit, or the channel's
    fixed service) wins; else the category's entry in `crm.service_map`; else `crm.default_service_code`."""
    if report.service_code:
        return report.service_code
    if report.category_code and report.category_code in crm.service_map:
        return crm.service_map[report.category_code]
    return crm.default_service_code


def attribute_fields(report: Report, service_code: str, crm: CRMConfig) -> dict[str, str]:
    """`attribute[code]` form fields from `crm.attribute_defaults` for this service."""
    fields: dict[str, str] = {}
    for code, value in crm.attribute_defaults.get(service_code, {}).items():
        name = value.removeprefix("report.")
        if value.startswith("report.") and name in REPORT_FIELDS_FOR_ATTRIBUTES:
            filled = getattr(report, name, None)
            if filled:
                fields[f"attribute[{code}]"] = str(filled)
        elif value:
            fields[f"attribute[{code}]"] = value
    return fields


def description(report: Report) -> str:
    """The request's text: the ticket and the masked complaint, then every source merged into it (issue 6).

    A long text is cut to make room for the sources line, so the 4000-character limit never drops it.
    """
    text = f"[{report.ticket_code}] {report.text_masked}"
    sources = getattr(report, "merged_sources", None) or []
    if not sources:
        return text[:DESCRIPTION_LIMIT]
    listed = ", ".join(
        f"{s.get('ticket_code')} ({s.get('channel_id')})" for s in [
            {"ticket_code": report.ticket_code, "channel_id": report.channel_id}, *sources
        ]
    )
    footer = f"\n\nSumber laporan ({len(sources) + 1}): {listed}"
    return text[: DESCRIPTION_LIMIT - len(footer)] + footer


def request_fields(report: Report, crm: CRMConfig) -> dict[str, str]:
    """The form fields for `report`, without the API key (added at send time, never stored)."""
    service_code = service_code_for(report, crm)
    fields: dict[str, str] = {
        "service_code": service_code,
        # The masked text: NIK, phone numbers and emails in a complaint are not the agency's business.
        "description": description(report),
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
    fields.update(attribute_fields(report, service_code, crm))
    return fields


def check_against_definition(fields: dict[str, str], definition: ServiceDefinition) -> None:
    """Raise a `config` CRMError when the request lacks a required attribute or uses a value not offered.

    Sending it anyway would only earn a 400 on every retry; the operator's fix is in the configuration.
    """
    code = definition.service_code
    for attribute in definition.attributes:
        if not attribute.variable:
            continue  # informational text in the form, nothing to send
        value = fields.get(f"attribute[{attribute.code}]")
        allowed = [v.key for v in attribute.values]
        hint = f" (one of: {', '.join(allowed)})" if allowed else ""
        if not value:
            if attribute.required:
                raise CRMError(
                    f"CRM service {code!r} requires attribute[{attribute.code}]"
                    f" ({attribute.description or attribute.datatype}){hint}, which Kanal cannot fill: "
                    f"set crm.attribute_defaults.{code}.{attribute.code}, then `kanal outbox retry`",
                    retryable=False,
                    kind="config",
                )
            continue
        if attribute.datatype in ("singlevaluelist", "multivaluelist") and allowed and value not in allowed:
            raise CRMError(
                f"attribute[{attribute.code}]={value!r} is not offered by CRM service {code!r}{hint}: "
                f"fix crm.attribute_defaults.{code}.{attribute.code}, then `kanal outbox retry`",
                retryable=False,
                kind="config",
            )


# -- the client ----------------------------------------------------------------------------------


class Open311Client:
    """Sends service requests and reads the CRM's catalogue and tokens."""

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

    def _params(self) -> dict[str, str]:
        return {"jurisdiction_id": self._crm.jurisdiction_id} if self._crm.jurisdiction_id else {}

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise CRMError(f"CRM did not answer within {self._crm.timeout_seconds} s", retryable=True) from None
        except httpx.TransportError as exc:
            raise CRMError(f"CRM unreachable at {self._crm.base_url} ({type(exc).__name__})", retryable=True) from None
        if response.status_code >= 300:
            body = _json_or_none(response)
            raise error_for_status(
                response.status_code, describe_error(body, response), _retry_after(response), answer=response.text
            )
        return response

    async def create(self, fields: dict[str, str], *, idempotency_key: str) -> Created:
        form = {**fields, "api_key": self._crm.api_key.get_secret_value()}
        response = await self._call("POST", "requests.json", data=form, headers={"Idempotency-Key": idempotency_key})
        first = _first_object(response)
        request_id, token = first.get("service_request_id"), first.get("token")
        if not request_id and not token:
            raise CRMError(
                "CRM answered without service_request_id or token",
                retryable=True,
                kind="protocol",
                answer=response.text,
            )
        return Created(
            service_request_id=str(request_id) if request_id else None,
            token=str(token) if token else None,
            status_code=response.status_code,
            answer=response.text,
        )

    async def resolve_token(self, token: str) -> Created:
        """`GET tokens/{token}.json`: the service_request_id once the CRM has assigned it; a `deferred`
        CRMError (retryable) while it has not."""
        response = await self._call("GET", f"tokens/{token}.json", params=self._params())
        request_id = _first_object(response).get("service_request_id")
        if not request_id:
            raise CRMError(
                f"CRM has not assigned a service_request_id to token {token} yet",
                retryable=True,
                kind="deferred",
                status_code=response.status_code,
                answer=response.text,
            )
        return Created(str(request_id), token, response.status_code, response.text)

    async def services(self) -> list[ServiceInfo]:
        response = await self._call("GET", "services.json", params=self._params())
        try:
            return _SERVICE_LIST.validate_json(response.content)
        except ValidationError:
            raise CRMError(
                f"CRM's services.json is not a GeoReport v2 service list: {response.text[:200]!r}",
                retryable=True,
                kind="protocol",
            ) from None

    async def definition(self, service_code: str) -> ServiceDefinition:
        response = await self._call("GET", f"services/{service_code}.json", params=self._params())
        try:
            return ServiceDefinition.model_validate_json(response.content)
        except ValidationError:
            raise CRMError(
                f"CRM's definition of service {service_code!r} is not a GeoReport v2 service definition",
                retryable=True,
                kind="protocol",
            ) from None


class ServiceCatalog:
    """The CRM's services and their definitions, read on first use and again every
    `crm.services_refresh_seconds`; a cache, so every process may hold its own."""

    def __init__(self, client: Open311Client, crm: CRMConfig) -> None:
        self._client = client
        self._crm = crm
        self._services: dict[str, ServiceInfo] = {}
        self._definitions: dict[str, ServiceDefinition] = {}
        self._read_at: float | None = None
        #: Configuration that names services the CRM does not offer; shown in /healthz and logged.
        self.warnings: list[str] = []

    @property
    def ready(self) -> bool:
        """Whether services.json has been read at least once."""
        return self._read_at is not None

    async def refresh_if_stale(self) -> None:
        if self._read_at is not None and time.monotonic() - self._read_at < self._crm.services_refresh_seconds:
            return
        services = {s.service_code: s for s in await self._client.services()}
        definitions = {}
        for code, info in services.items():
            if info.metadata:
                definitions[code] = await self._client.definition(code)
        self._services, self._definitions, self._read_at = services, definitions, time.monotonic()
        self.warnings = self._check_config()

    def _check_config(self) -> list[str]:
        offered = ", ".join(sorted(self._services))
        problems = [
            f"crm.service_map: category {category!r} maps to service {code!r}, which the CRM does not offer "
            f"({offered}); its reports will be dead-lettered"
            for category, code in sorted(self._crm.service_map.items())
            if code not in self._services
        ]
        if self._crm.default_service_code not in self._services:
            problems.append(
                f"crm.default_service_code {self._crm.default_service_code!r} is not offered by the CRM ({offered})"
            )
        return problems

    def check(self, fields: dict[str, str]) -> None:
        """Raise a `config` CRMError when the CRM would refuse these fields for a reason retrying cannot fix."""
        code = fields.get("service_code", "")
        if code not in self._services:
            raise CRMError(
                f"the CRM offers no service {code!r} (offered: {', '.join(sorted(self._services))}); "
                "map the report's category in crm.service_map or fix crm.default_service_code, then "
                "`kanal outbox retry`",
                retryable=False,
                kind="config",
            )
        definition = self._definitions.get(code)
        if definition is not None:
            check_against_definition(fields, definition)


def _first_object(response: httpx.Response) -> dict[str, Any]:
    body = _json_or_none(response)
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise CRMError(
            f"CRM answered {response.status_code} with an unexpected body: {response.text[:200]!r}",
            retryable=True,
            kind="protocol",
            status_code=response.status_code,
            answer=response.text,
        )
    return body[0]


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def describe_error(body: Any, response: httpx.Response) -> str:
    """The spec's error array `[{"code", "description"}]` as one line; the raw text when it is not that."""
    if isinstance(body, list) and body and all(isinstance(e, dict) for e in body):
        return "; ".join(str(e.get("description") or e.get("code")) for e in body)
    if isinstance(body, dict) and ("description" in body or "detail" in body):
        return str(body.get("description") or body.get("detail"))
    return response.text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None
