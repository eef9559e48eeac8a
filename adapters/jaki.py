"""`jaki`: structured reports from JAKI (Jakarta Kini), the city's own app, and their progress sent back to it.

The app POSTs one report per delivery:
`{"report_id", "description", "category", "latitude", "longitude", "address",
"photos": [{"url", "content_type"}], "reporter": {"id", "name", "phone", "email"}, "created_at"}`,
signed as the `api` channel is: `<signature_header>: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
(adapters.signing), within `tolerance_seconds` of our clock.

The app's own category (a label or a code) becomes the report's `category_hint` through `category_map`;
an unknown one gives no hint and the normalizer classifies the text. JAKI is the city's app, so its
channels are trusted by default (no admin review unless a report looks duplicate or incomplete).

Progress goes back to `status_url`, signed the same way: `{"report_id", "ticket", "state", "agency_unit",
"note", "changed_at", "status_url", "message"}` -- the structured fields when Kanal tells of a status
change, `report_id`, `ticket` and `message` alone for a plain message.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from adapters import hookimpl, signing
from adapters.contract import (
    Adapter,
    ChannelSettings,
    InboundMessage,
    Location,
    MediaRef,
    OutboundReply,
    RawRequest,
    Sender,
)
from adapters.errors import ChannelUnavailable, PayloadRejected, SignatureInvalid
from adapters.sms import e164, is_http_url

#: The header name adapters.signing's messages use; replaced by the configured one in what we answer.
_KANAL_HEADER = "X-Kanal-Signature"
#: A Kanal category code as config/taxonomy.yaml writes them.
_CATEGORY_CODE = r"^[a-z0-9][a-z0-9_-]{0,99}$"


def category_key(label: str) -> str:
    """A category label as matched: case and spacing do not matter ("Jalan  Rusak" is "jalan rusak")."""
    return " ".join(label.casefold().split())


class JakiSettings(ChannelSettings):
    #: Shared with the app's backend; signs its deliveries and our status callbacks.
    secret: SecretStr = Field(min_length=16)
    #: Still accepted during a key rotation, until the app has switched.
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    signature_header: str = Field(default=_KANAL_HEADER, min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    tolerance_seconds: int = Field(default=signing.DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)
    #: The app's category (label or code, as it sends it) -> a category code of config/taxonomy.yaml.
    category_map: dict[str, str] = Field(default_factory=dict)
    #: Hosts the report photos are downloaded from (a name also covers its subdomains).
    media_hosts: list[str] = Field(default_factory=list)
    #: The app's endpoint for progress on a report; None: this channel tells the app nothing.
    status_url: str | None = None
    status_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("category_map")
    @classmethod
    def _codes_look_like_codes(cls, mapping: dict[str, str]) -> dict[str, str]:
        for label, code in mapping.items():
            if not category_key(label):
                raise ValueError("a category_map label is empty; write the app's category as it sends it")
            if not re.match(_CATEGORY_CODE, code):
                raise ValueError(
                    f"{label!r} maps to {code!r}, which is not a category code; use a code of config/taxonomy.yaml "
                    "such as 'jalan' or 'parkir-liar'"
                )
        return {category_key(label): code for label, code in mapping.items()}

    @field_validator("media_hosts")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not host or "/" in host or ":" in host:
                raise ValueError(f"{host!r} is not a host name; write only the host, e.g. photos.jaki.jakarta.go.id")
        return [host.lower().rstrip(".") for host in hosts]

    @field_validator("status_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("expected an http(s) URL with a host, e.g. https://api.jaki.example/status")
        return value


class _Photo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, max_length=2000)
    content_type: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not is_http_url(url):
            raise ValueError("expected an http(s) URL of the photo")
        return url


class _Reporter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)

    @field_validator("id", mode="before")
    @classmethod
    def _numeric_ids_are_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _JakiReport(BaseModel):
    # The app may add fields before we know them; they are kept in the raw delivery and ignored here.
    model_config = ConfigDict(extra="ignore")

    report_id: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=20_000)
    category: str | None = Field(default=None, max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=1000)
    photos: list[_Photo] = Field(default_factory=list, max_length=20)
    reporter: _Reporter
    created_at: AwareDatetime | None = None

    @field_validator("report_id", "category", mode="before")
    @classmethod
    def _numeric_codes_are_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _says_something(self) -> _JakiReport:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together (or neither)")
        if not self.description.strip() and not self.photos:
            raise ValueError("a report needs a description or at least one photo")
        return self


class JakiAdapter(Adapter[JakiSettings]):
    channel_type: ClassVar[str] = "jaki"
    settings_model = JakiSettings
    description = "Reports from the JAKI city app (signed JSON); progress sent back to the app"
    trusted_by_default: ClassVar[bool] = True
    # The app shows the ticket when our `received` status callback reaches it.
    acknowledge_receipt: ClassVar[bool] = True

    def verify(self, request: RawRequest) -> None:
        secrets = [s.get_secret_value().encode() for s in [self.settings.secret, *self.settings.previous_secrets]]
        try:
            signing.verify(
                request.header(self.settings.signature_header),
                request.body,
                secrets,
                now=request.received_at,
                tolerance_seconds=self.settings.tolerance_seconds,
            )
        except SignatureInvalid as exc:
            raise SignatureInvalid(exc.message.replace(_KANAL_HEADER, self.settings.signature_header)) from None

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        if not request.body.strip():
            raise PayloadRejected("empty body; send one JSON report object")
        try:
            document = json.loads(request.body)
        except ValueError as exc:  # also UnicodeDecodeError, and integers too long to convert
            raise PayloadRejected(f"body is not valid UTF-8 JSON ({exc}); send one JSON report object") from None
        if not isinstance(document, dict):
            raise PayloadRejected("body must be one JSON report object, not a list or a scalar")
        try:
            report = _JakiReport.model_validate(document)
            return [self._message(report)]
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc), status_code=422) from None

    def _message(self, report: _JakiReport) -> InboundMessage:
        reporter = report.reporter
        phone = e164(reporter.phone) if reporter.phone else None
        location = None
        if report.latitude is not None or report.address:
            location = Location(lat=report.latitude, lng=report.longitude, address=report.address or None)
        return InboundMessage(
            external_id=report.report_id,
            text=report.description,
            sender=Sender(id=reporter.id, name=reporter.name, phone=phone or reporter.phone, email=reporter.email),
            location=location,
            media=[MediaRef(url=photo.url, content_type=photo.content_type) for photo in report.photos],
            sent_at=report.created_at,
            category_hint=self.category_hint(report.category),
        )

    def category_hint(self, category: str | None) -> str | None:
        """The Kanal category code for the app's category, or None when it is not mapped."""
        if category is None:
            return None
        return self.settings.category_map.get(category_key(category))

    def allowed_media_hosts(self) -> frozenset[str]:
        return frozenset(self.settings.media_hosts)

    async def send(self, reply: OutboundReply) -> str:
        """POST the report's progress to the app's `status_url`, signed; the app's `id` for it, if it gives one."""
        if self.settings.status_url is None:
            raise NotImplementedError(f"channel {self.channel_id} has no status_url: set one to tell the app")
        if not reply.in_reply_to:
            raise ChannelUnavailable(
                "no JAKI report id to attach this message to (in_reply_to is empty); JAKI only takes progress on "
                "reports it sent",
                retryable=False,
            )
        body = json.dumps(self.status_document(reply), ensure_ascii=False).encode()
        secret = self.settings.secret.get_secret_value().encode()
        headers = {
            "Content-Type": "application/json",
            self.settings.signature_header: signing.sign(secret, body, int(time.time())),
        }
        try:
            async with httpx.AsyncClient(timeout=self.settings.status_timeout_seconds) as http:
                response = await http.post(self.settings.status_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"JAKI status endpoint unreachable ({type(exc).__name__}); will retry") from None
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("retry-after", "").strip()
            raise ChannelUnavailable(
                f"JAKI answered {response.status_code}; will retry",
                retry_after=float(retry_after) if retry_after.isdigit() else None,
            )
        if response.status_code >= 400:
            raise ChannelUnavailable(
                f"JAKI refused the status update ({response.status_code}): {response.text[:300]}", retryable=False
            )
        try:
            answer = response.json()
        except ValueError:
            return ""
        return str(answer.get("id") or "") if isinstance(answer, dict) else ""

    @staticmethod
    def status_document(reply: OutboundReply) -> dict[str, Any]:
        """What the app receives: the structured change when there is one, and always the citizen's message."""
        status = reply.status
        if status is None:
            return {"report_id": reply.in_reply_to, "ticket": reply.ticket, "message": reply.text}
        return {
            "report_id": reply.in_reply_to,
            "ticket": status.ticket,
            "state": status.state,
            "agency_unit": status.agency_unit,
            "note": status.note,
            "changed_at": status.changed_at.isoformat(),
            "status_url": status.status_url,
            "message": reply.text,
        }


def _describe(exc: ValidationError) -> str:
    """`field.path: problem` for each problem, in one line the app's developers can act on."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return "invalid JAKI report: " + "; ".join(problems)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [JakiAdapter]
