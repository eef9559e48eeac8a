"""The simulated CRM's HTTP API: Open311 GeoReport v2 (JSON only) plus two operator endpoints.

What callers may rely on:

* Every non-2xx answer is the spec's error array ``[{"code": <http status>, "description": "..."}]``,
  including unknown routes, wrong methods and unparseable input (bad input never yields a 500).
* ``POST /requests.json`` with an ``Idempotency-Key`` header answers a repeat with exactly the first
  answer and stores nothing new (a replay carries the header ``Idempotent-Replayed: true``).
* Deferred mode answers ``[{"token": ...}]``. The request gets its ``service_request_id`` once it
  is ``deferred_delay`` seconds old (default 0: immediately); assignment happens lazily on the next
  read, so ``GET /tokens/{token}.json`` shows ``service_request_id: null`` only until then.
* Timestamps are ISO 8601 with the Asia/Jakarta offset, e.g. ``2026-11-28T07:15:00+07:00``.
* ``POST /push/reports`` (when started with push secrets) takes Kanal's signed JSON push: 401 on a bad
  ``X-Kanal-Signature``, the ``Idempotency-Key`` de-duplicates, the document is kept whole.
* Operator routes (``/_sim/...``, no api_key): change a status, read a request whole, inject failures
  (``/_sim/faults``), rotate the accepted api keys, count the traffic received (``/_sim/traffic``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_sim.services import Service, find_service, service_definition, service_list
from crm_sim.status_side import StatusWebhook, WebhookSlot, add_status_side_routes, after_status_change
from crm_sim.store import CRMStore, NewRequest, StoredRequest, utc_now

DISPLAY_TZ = ZoneInfo("Asia/Jakarta")
DEFAULT_WINDOW = timedelta(days=90)  # spec: without dates, GET requests.json covers the last 90 days
MAX_RESULTS = 1000  # spec: at most 1000 requests per GET requests.json
MAX_DESCRIPTION = 4000  # spec: description may be up to 4,000 characters
MAX_FIELD = 1000  # generous cap for the other free-text fields, so nobody can store megabytes
MAX_IDEMPOTENCY_KEY = 255
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ApiError(Exception):
    """An Open311 error answer: one HTTP status and one or more descriptions."""

    def __init__(self, code: int, *descriptions: str) -> None:
        super().__init__(descriptions[0] if descriptions else "")
        self.code = code
        self.descriptions = descriptions or ("error",)


def error_response(code: int, *descriptions: str) -> JSONResponse:
    """The spec's error array, one element per description, all carrying the HTTP status code."""
    return JSONResponse([{"code": code, "description": d} for d in descriptions], status_code=code)


class StatusChange(BaseModel):
    """Body of the operator endpoint ``POST /_sim/requests/{id}/status``."""

    model_config = ConfigDict(extra="forbid")

    crm_status: Literal["Menunggu", "Koordinasi", "Disposisi", "Proses", "Selesai"]
    note: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


@dataclass
class FaultPlan:
    """Operator-injected failures: the next ``count`` matching requests answer ``status`` (an error array)."""

    status: int = 0
    count: int = 0
    #: Only requests whose path starts with this fail (e.g. ``/requests.json``); empty: every public route.
    path: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str) -> int | None:
        """The status to fail this request with, or ``None``; counts the failure down."""
        with self.lock:
            if self.count <= 0 or (self.path and not path.startswith(self.path)):
                return None
            self.count -= 1
            return self.status


class FaultRequest(BaseModel):
    """Body of ``POST /_sim/faults``."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(ge=400, le=599)
    count: int = Field(ge=0, le=1_000_000)
    path: str = ""


class ApiKeys(BaseModel):
    """Body of ``POST /_sim/api-keys``: the keys accepted from now on."""

    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(min_length=1)


class PushedReport(BaseModel):
    """What the JSON push receiver needs from a pushed report (other fields are kept as they came)."""

    model_config = ConfigDict(extra="allow")

    service_code: str = Field(min_length=1, max_length=100)
    text: str = Field(max_length=MAX_DESCRIPTION)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    address: str | None = Field(default=None, max_length=MAX_FIELD)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


@dataclass(frozen=True)
class SimConfig:
    """Everything the route handlers need; built once per app by ``create_app``."""

    store: CRMStore
    #: Mutable on purpose: ``POST /_sim/api-keys`` rotates them, as a CRM admin would.
    api_keys: set[str]
    jurisdiction_id: str | None
    deferred: bool
    deferred_delay: float
    #: Secrets accepted on ``POST /push/reports`` (signed JSON push); empty: the receiver answers 404.
    push_secrets: tuple[str, ...] = ()
    faults: FaultPlan = field(default_factory=lambda: FaultPlan())
    traffic: Counter[str] = field(default_factory=Counter)
    #: Where status changes are posted (crm_sim/status_side.py); None: nowhere.
    status_webhook: WebhookSlot = field(default_factory=WebhookSlot)


# -- small helpers -------------------------------------------------------------------------------


BodyT = TypeVar("BodyT", bound=BaseModel)


def parse_operator_body(model: type[BodyT], body: bytes) -> BodyT:
    """An operator endpoint's JSON body as `model`, or the spec's 400 error array naming each bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(
            400, *[f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        ) from None


def render_time(moment: datetime) -> str:
    """ISO 8601 in Jakarta time with offset, second precision."""
    return moment.astimezone(DISPLAY_TZ).isoformat(timespec="seconds")


def parse_time(text: str, name: str) -> datetime:
    """Parse a w3/ISO 8601 timestamp; one without offset is taken as Jakarta time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=DISPLAY_TZ)


def split_list(text: str | None) -> list[str]:
    """Split a spec-style comma-separated parameter into its non-empty items."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def check_jurisdiction(config: SimConfig, given: str | None) -> None:
    """A sim configured for one jurisdiction answers 404 to any other (spec wording)."""
    if config.jurisdiction_id and given and given != config.jurisdiction_id:
        raise ApiError(404, f"jurisdiction_id provided was not found: {given!r}")


def resolve_pending(config: SimConfig) -> None:
    """Assign ids to deferred requests that are old enough (lazily, so no background thread)."""
    if config.deferred and config.deferred_delay > 0:
        cutoff = utc_now() - timedelta(seconds=config.deferred_delay)
        config.store.assign_pending_ids(requested_before=cutoff)


def render_request(req: StoredRequest) -> dict[str, Any]:
    """One element of ``GET /requests.json`` (spec fields, plus the extension ``crm_status``)."""
    service = find_service(req.service_code)
    return {
        "service_request_id": req.service_request_id,
        "status": req.status,
        "status_notes": req.status_notes,
        "service_name": service.service_name if service else req.service_code,
        "service_code": req.service_code,
        "description": req.description,
        "agency_responsible": req.agency_responsible,
        "service_notice": req.service_notice,
        "requested_datetime": render_time(req.requested_datetime),
        "updated_datetime": render_time(req.updated_datetime),
        "expected_datetime": None,
        "address": req.address_string,
        "address_id": req.address_id,
        "zipcode": None,
        "lat": req.lat,
        "long": req.long,
        "media_url": req.media_url,
        "crm_status": req.crm_status,
    }


def creation_answer(config: SimConfig, req: StoredRequest) -> list[dict[str, Any]]:
    """The POST answer for ``req``; rebuilt from storage so an idempotent replay is identical."""
    if config.deferred:
        return [{"token": req.token}]
    return [
        {
            "service_request_id": req.service_request_id,
            "service_notice": req.service_notice,
            "account_id": req.account_id,
        }
    ]


# -- POST /requests.json: parsing and validation -------------------------------------------------


async def read_form(request: Request) -> dict[str, list[str]]:
    """The form fields of a POST as ``name -> values``; uploaded files are ignored.

    Raises ``ApiError(400)`` for bodies that are not form data or cannot be parsed.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type not in FORM_TYPES:
        raise ApiError(400, "request body must be application/x-www-form-urlencoded or multipart/form-data")
    fields: dict[str, list[str]] = {}
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    fields.setdefault(name, []).append(value)
    except Exception:  # any parser failure is the client's malformed body, not a server error
        raise ApiError(400, "request body could not be parsed as form data") from None
    return fields


class FormReader:
    """Typed access to form fields plus a list of collected validation problems."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields
        self.problems: list[str] = []

    def text(self, name: str, max_length: int = MAX_FIELD) -> str | None:
        """Last value of ``name``, stripped; ``None`` if absent or blank."""
        values = self.fields.get(name)
        value = values[-1].strip() if values else ""
        if len(value) > max_length:
            self.problems.append(f"{name} must be at most {max_length} characters")
            return None
        return value or None

    def coordinate(self, name: str, limit: float) -> float | None:
        """A float within ``[-limit, limit]``, or ``None`` (recording a problem if malformed)."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a decimal number, got {raw!r}")
            return None
        if not math.isfinite(value) or abs(value) > limit:
            self.problems.append(f"{name} must be between -{limit:g} and {limit:g}")
            return None
        return value

    def attribute_values(self, code: str) -> list[str]:
        """Values sent as ``attribute[code]`` or ``attribute[code][]`` (multivaluelist style)."""
        values = self.fields.get(f"attribute[{code}]", []) + self.fields.get(f"attribute[{code}][]", [])
        return [v.strip() for v in values if v.strip()]


def check_api_key(config: SimConfig, reader: FormReader, request: Request) -> None:
    """403 unless a configured api_key came in the body (or, leniently, the query string)."""
    key = reader.text("api_key") or (request.query_params.get("api_key") or "").strip()
    if not key:
        raise ApiError(403, "api_key was not provided")
    if key not in config.api_keys:
        raise ApiError(403, "api_key is invalid")


def require_service(reader: FormReader) -> Service:
    """The service named by ``service_code``: 400 if missing, 404 if the CRM does not offer it."""
    code = reader.text("service_code")
    if code is None:
        raise ApiError(400, "service_code was not provided")
    service = find_service(code)
    if service is None:
        raise ApiError(404, f"service_code provided was not found: {code!r}")
    return service


def read_location(reader: FormReader) -> dict[str, Any]:
    """lat+long, address_string or address_id; records a problem when none is usable."""
    lat = reader.coordinate("lat", 90)
    long = reader.coordinate("long", 180)
    has_lat, has_long = reader.text("lat") is not None, reader.text("long") is not None
    if has_lat != has_long:
        reader.problems.append("lat and long must be given together")
    address_string = reader.text("address_string")
    address_id = reader.text("address_id")
    usable_point = lat is not None and long is not None
    if not (usable_point or address_string or address_id or has_lat or has_long):
        reader.problems.append("location required: provide lat and long, address_string, or address_id")
    return {"lat": lat, "long": long, "address_string": address_string, "address_id": address_id}


def read_attributes(reader: FormReader, service: Service) -> dict[str, Any]:
    """Validated attribute values of ``service`` (unknown attribute codes are ignored)."""
    result: dict[str, Any] = {}
    for attr in service.attributes:
        values = reader.attribute_values(attr.code)
        if not values:
            if attr.required:
                reader.problems.append(f"attribute[{attr.code}] is required ({attr.description})")
            continue
        allowed = {v.key for v in attr.values}
        if attr.datatype in ("singlevaluelist", "multivaluelist"):
            bad = [v for v in values if v not in allowed]
            if bad:
                reader.problems.append(f"attribute[{attr.code}] must be one of {sorted(allowed)}, got {bad[0]!r}")
                continue
        if attr.datatype == "number":
            try:
                float(values[-1])
            except ValueError:
                reader.problems.append(f"attribute[{attr.code}] must be a number")
                continue
        if any(len(v) > MAX_DESCRIPTION for v in values):
            reader.problems.append(f"attribute[{attr.code}] is too long")
            continue
        result[attr.code] = values if attr.datatype == "multivaluelist" else values[-1]
    return result


def read_contact(reader: FormReader) -> dict[str, Any]:
    """Optional submitter and media fields, with light sanity checks."""
    email = reader.text("email", 254)
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        reader.problems.append("email is not a valid e-mail address")
    media_url = reader.text("media_url", 2048)
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        reader.problems.append("media_url must be an http(s) URL")
    return {
        "email": email,
        "first_name": reader.text("first_name", 255),
        "last_name": reader.text("last_name", 255),
        "phone": reader.text("phone", 64),
        "device_id": reader.text("device_id", 255),
        "account_id": reader.text("account_id", 255),
        "media_url": media_url,
    }


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, stripped; ``None`` if absent or blank."""
    key = (request.headers.get("idempotency-key") or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters")
    return key or None


def build_new_request(config: SimConfig, reader: FormReader, request: Request) -> NewRequest:
    """Validate a POST in spec order (403, then 404/400 for service, then all 400 problems at once)."""
    check_api_key(config, reader, request)
    jurisdiction = reader.text("jurisdiction_id")
    check_jurisdiction(config, jurisdiction)
    service = require_service(reader)
    key = idempotency_key(request)
    location = read_location(reader)
    description = reader.text("description", MAX_DESCRIPTION)
    attributes = read_attributes(reader, service)
    contact = read_contact(reader)
    if reader.problems:
        raise ApiError(400, *dict.fromkeys(reader.problems))  # dedupe, keep order
    return NewRequest(
        service_code=service.service_code,
        token=uuid.uuid4().hex,
        description=description,
        attributes=attributes,
        jurisdiction_id=jurisdiction or config.jurisdiction_id,
        idempotency_key=key,
        service_notice=f"Laporan diterima dan diteruskan ke {service.agency}.",
        agency_responsible=service.agency,
        **location,
        **contact,
    )


# -- signed JSON push ----------------------------------------------------------------------------

PUSH_SIGNATURE_HEADER = "x-kanal-signature"
PUSH_TOLERANCE_SECONDS = 300


def verify_push_signature(header: str | None, body: bytes, secrets: tuple[str, ...], *, now: float) -> None:
    """Check ``t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">`` against any accepted secret; 401 otherwise.

    Written here independently of Kanal's signing module, so the receiver checks what the sender does
    rather than sharing its mistakes.
    """
    parts = dict(part.strip().partition("=")[::2] for part in (header or "").split(",") if "=" in part)
    timestamp, given = parts.get("t", ""), parts.get("v1", "").lower()
    if not timestamp.isdigit() or not given:
        raise ApiError(401, "X-Kanal-Signature missing or malformed; expected t=<unix seconds>,v1=<hex hmac>")
    if abs(now - int(timestamp)) > PUSH_TOLERANCE_SECONDS:
        raise ApiError(401, "X-Kanal-Signature timestamp outside the accepted window")
    signed = timestamp.encode() + b"." + body
    if not any(
        hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(), given) for secret in secrets
    ):
        raise ApiError(401, "X-Kanal-Signature does not match the body")


def add_push_routes(app: FastAPI, config: SimConfig) -> None:
    """``POST /push/reports``: a CRM without Open311 taking Kanal's signed JSON push.

    Verifies the signature (401), requires an ``Idempotency-Key`` (400) and answers a repeat with the first
    answer and ``Idempotent-Replayed: true``; the pushed document is kept whole in the request's attributes.
    """

    @app.post("/push/reports")
    async def receive_push(request: Request) -> JSONResponse:
        if not config.push_secrets:
            raise ApiError(404, "this CRM takes no JSON push (start it with --push-secret)")
        body = await request.body()
        verify_push_signature(request.headers.get(PUSH_SIGNATURE_HEADER), body, config.push_secrets, now=time.time())
        key = idempotency_key(request)
        if key is None:
            raise ApiError(400, "Idempotency-Key header is required")
        try:
            document = json.loads(body)
            pushed = PushedReport.model_validate(document)
        except (ValueError, ValidationError) as exc:
            raise ApiError(400, f"body is not a Kanal report document: {str(exc)[:300]}") from None
        service = find_service(pushed.service_code) or find_service("lainnya")
        assert service is not None
        new = NewRequest(
            service_code=service.service_code,
            token=uuid.uuid4().hex,
            description=pushed.description or pushed.text,
            lat=pushed.lat,
            long=pushed.lng,
            address_string=pushed.address,
            attributes={"push": document},
            idempotency_key=key,
            service_notice=f"Laporan diterima dan diteruskan ke {service.agency}.",
            agency_responsible=service.agency,
        )
        stored, created = await run_in_threadpool(config.store.create, new, assign_id=True)
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return JSONResponse(
            {"id": stored.service_request_id, "status": "created" if created else "duplicate"}, headers=headers
        )


def add_traffic_middleware(app: FastAPI, config: SimConfig) -> None:
    """Count what clients send (so tests can see a retry storm, or its absence) and play injected faults."""

    @app.middleware("http")
    async def count_and_fault(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        path = request.url.path
        if path.startswith("/_sim/"):
            return await call_next(request)
        route = "/tokens/{token}.json" if path.startswith("/tokens/") else path
        if path.startswith("/requests/"):
            route = "/requests/{id}.json"
        failure = config.faults.take(path)
        if failure is not None:
            config.traffic[f"{request.method} {route} {failure}"] += 1
            return error_response(failure, f"injected failure ({failure})")
        response = await call_next(request)
        config.traffic[f"{request.method} {route} {response.status_code}"] += 1
        return response


# -- the app -------------------------------------------------------------------------------------


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, FastAPI's and Starlette's included, a spec error array."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.code, *exc.descriptions)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, str(exc.detail))

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        # FastAPI would say 422; the spec's vocabulary for bad input is 400.
        assert isinstance(exc, RequestValidationError)
        messages = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(400, *(messages or ["invalid request"]))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal CRM error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def add_discovery_routes(app: FastAPI, config: SimConfig) -> None:
    """``GET /services.json`` and ``GET /services/{code}.json``."""

    @app.get("/services.json")
    def list_services(jurisdiction_id: str | None = None) -> list[dict[str, Any]]:
        check_jurisdiction(config, jurisdiction_id)
        return service_list()

    @app.get("/services/{service_code}.json")
    def get_service(service_code: str, jurisdiction_id: str | None = None) -> dict[str, Any]:
        check_jurisdiction(config, jurisdiction_id)
        definition = service_definition(service_code)
        if definition is None:
            raise ApiError(404, f"service_code provided was not found: {service_code!r}")
        return definition


def add_request_routes(app: FastAPI, config: SimConfig) -> None:
    """``POST/GET /requests.json``, ``GET /requests/{id}.json``, ``GET /tokens/{token}.json``."""

    @app.post("/requests.json")
    async def create_request(request: Request) -> JSONResponse:
        reader = FormReader(await read_form(request))
        new = build_new_request(config, reader, request)
        assign_now = not config.deferred or config.deferred_delay <= 0
        stored, created = await run_in_threadpool(config.store.create, new, assign_id=assign_now)
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return JSONResponse(creation_answer(config, stored), headers=headers)

    @app.get("/requests.json")
    def search_requests(request: Request) -> list[dict[str, Any]]:
        params = request.query_params
        check_jurisdiction(config, params.get("jurisdiction_id"))
        resolve_pending(config)
        ids = split_list(params.get("service_request_id"))
        if ids:  # spec: an id list overrides every other filter
            return [render_request(r) for r in config.store.get_many(ids)]
        statuses = split_list(params.get("status"))
        if any(s not in ("open", "closed") for s in statuses):
            raise ApiError(400, "status must be 'open', 'closed' or a comma-separated list of them")
        end = parse_time(params["end_date"], "end_date") if params.get("end_date") else utc_now()
        start = parse_time(params["start_date"], "start_date") if params.get("start_date") else end - DEFAULT_WINDOW
        if start > end:
            raise ApiError(400, "start_date must not be after end_date")
        found = config.store.search(
            start=start,
            end=end,
            service_codes=split_list(params.get("service_code")) or None,
            statuses=statuses or None,
            limit=MAX_RESULTS,
        )
        return [render_request(r) for r in found]

    @app.get("/requests/{service_request_id}.json")
    def get_request(service_request_id: str, jurisdiction_id: str | None = None) -> list[dict[str, Any]]:
        check_jurisdiction(config, jurisdiction_id)
        resolve_pending(config)
        found = config.store.get(service_request_id)
        if found is None:
            raise ApiError(404, f"service_request_id not found: {service_request_id!r}")
        return [render_request(found)]

    @app.get("/tokens/{token}.json")
    def get_token(token: str, jurisdiction_id: str | None = None) -> list[dict[str, Any]]:
        check_jurisdiction(config, jurisdiction_id)
        resolve_pending(config)
        found = config.store.get_by_token(token)
        if found is None:
            raise ApiError(404, f"token not found: {token!r}")
        return [{"service_request_id": found.service_request_id, "token": found.token}]


def add_operator_routes(app: FastAPI, config: SimConfig) -> None:
    """Simulator-only endpoints (no api_key): move a request through CRM statuses, and counters."""

    @app.post("/_sim/requests/{service_request_id}/status")
    async def change_status(service_request_id: str, request: Request) -> dict[str, Any]:
        change = parse_operator_body(StatusChange, await request.body())
        updated = await run_in_threadpool(
            config.store.set_status, service_request_id, crm_status=change.crm_status, note=change.note
        )
        if updated is None:
            raise ApiError(404, f"service_request_id not found: {service_request_id!r}")
        rendered = render_request(updated)
        await run_in_threadpool(after_status_change, config, updated, rendered)
        return rendered

    @app.get("/_sim/requests/{service_request_id}")
    def raw_request(service_request_id: str) -> dict[str, Any]:
        """Everything stored for a request, attributes and pushed document included (not in the spec's view)."""
        resolve_pending(config)
        found = config.store.get(service_request_id)
        if found is None:
            raise ApiError(404, f"service_request_id not found: {service_request_id!r}")
        return {**render_request(found), "attributes": found.attributes, "jurisdiction_id": found.jurisdiction_id}

    @app.post("/_sim/faults")
    async def inject_faults(request: Request) -> dict[str, Any]:
        plan = parse_operator_body(FaultRequest, await request.body())
        with config.faults.lock:
            config.faults.status, config.faults.count, config.faults.path = plan.status, plan.count, plan.path
        return plan.model_dump()

    @app.post("/_sim/api-keys")
    async def rotate_api_keys(request: Request) -> dict[str, Any]:
        keys = parse_operator_body(ApiKeys, await request.body())
        config.api_keys.clear()
        config.api_keys.update(keys.keys)
        return {"keys": len(config.api_keys)}

    @app.get("/_sim/traffic")
    def traffic() -> dict[str, int]:
        """Requests received per ``METHOD /route status`` since start, operator routes excluded."""
        return dict(config.traffic)

    @app.get("/_sim/stats")
    def stats() -> dict[str, Any]:
        resolve_pending(config)
        return config.store.stats()


def create_app(
    *,
    db_path: str | Path,
    api_keys: set[str],
    jurisdiction_id: str | None = None,
    deferred: bool = False,
    deferred_delay: float = 0.0,
    push_secrets: Iterable[str] | None = None,
    status_webhook: StatusWebhook | None = None,
) -> FastAPI:
    """Build a CRM simulator app over the SQLite file ``db_path`` (created if missing).

    ``api_keys`` are the keys accepted by ``POST /requests.json``. With ``deferred`` the POST answers
    a token, and the service_request_id appears ``deferred_delay`` seconds later (0: at once).
    With ``push_secrets``, ``POST /push/reports`` takes signed JSON pushes (see ``add_push_routes``).
    The store's connection is closed when the app shuts down (and reopened if it is used again).
    """
    config = SimConfig(
        store=CRMStore(db_path),
        api_keys=set(api_keys),
        push_secrets=tuple(push_secrets or ()),
        jurisdiction_id=jurisdiction_id,
        deferred=deferred,
        deferred_delay=max(0.0, deferred_delay),
        status_webhook=WebhookSlot(status_webhook),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        config.store.close()

    # JSON only, like the spec's .json endpoints: no HTML docs pages.
    app = FastAPI(title="Kanal CRM simulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install_error_handlers(app)
    add_discovery_routes(app, config)
    add_request_routes(app, config)
    add_push_routes(app, config)
    add_operator_routes(app, config)
    add_status_side_routes(app, config)
    add_traffic_middleware(app, config)
    return app
