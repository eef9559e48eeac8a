"""`walk_in`: complaints taken down by staff at a desk (a kelurahan office, the Pendopo Balai Kota, the call centre).

One channel instance per desk. Nobody outside Kanal posts to it: Kanal's own intake page
(/admin/intake, review_queue/web/pages_intake.py) builds the delivery for a signed-in officer, signs
it with this instance's own secret (`AdapterContext.instance_secret`, which only Kanal holds) and runs
it through the ordinary ingest path in-process. The route `/channels/walk_in:<desk>/inbound` still
exists like every channel's, and refuses anything without that signature (401, quarantined).

Body (JSON, built by the intake page; unknown fields are errors since only Kanal writes it):
`{"intake_id", "text", "received_by", "citizen": {"name", "phone", "email"}, "contact_consent",
"address", "lat", "lng", "wilayah_code", "photo": {"content_type", "filename", "data_base64"}}`.
Header `X-Kanal-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (adapters/signing.py).

`intake_id` is issued with the form, so a double click or a re-sent form is one complaint, not two.
The place: the officer's address text, plus the names of the wilayah they chose (`wilayah_code`), so
the normalizer places it without guessing; a desk with `default_place_to_desk` puts a complaint that
has no place at all (no address, no coordinates, no wilayah) in the desk's own area.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
from adapters.errors import PayloadRejected
from adapters.web_form import safe_filename, sniff_image
from normalizer.gazetteer import load_gazetteer

SIGNATURE_HEADER = "x-kanal-signature"
#: How a stored intake refers to its photo; served back by `inline_attachment`.
PHOTO_REF = "inline:photo"
DEFAULT_MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_TEXT_CHARS = 5000
MAX_ADDRESS_CHARS = 500

DeskKind = Literal["balai_kota", "kelurahan", "kecamatan", "walikota", "inspektorat", "call_centre"]
DESK_KINDS: tuple[str, ...] = DeskKind.__args__  # type: ignore[attr-defined]


def place_names(code: str) -> list[str]:
    """How an address names wilayah `code` and its parents: ["Kel. Gambir", "Kec. Gambir", "Jakarta Pusat"].

    Written with the "Kel."/"Kec." cues the normalizer's place step trusts; nothing for the provinsi
    (every complaint is in Jakarta). Raises `KeyError` for a code not in normalizer/data/wilayah.csv.
    """
    gazetteer = load_gazetteer()
    names = []
    for region in gazetteer.lineage(code):
        if region.level == "kelurahan":
            names.append(f"Kel. {region.name}")
        elif region.level == "kecamatan":
            names.append(f"Kec. {region.name}")
        elif region.level == "kota":
            names.append(region.short_name)
    return names


def check_wilayah_code(code: str) -> str:
    """`code` stripped, if it is in wilayah.csv; a ValueError saying where to look otherwise."""
    code = code.strip()
    if code not in load_gazetteer().regions:
        raise ValueError(
            f"unknown wilayah code {code!r}; use a Kemendagri code from normalizer/data/wilayah.csv, e.g. "
            "31 (the whole city), 31.71 (kota), 31.71.01 (kecamatan) or 31.71.01.1001 (kelurahan)"
        )
    return code


class WalkInSettings(ChannelSettings):
    """Settings of one desk."""

    desk_kind: DeskKind
    #: The desk as printed on the receipt: "Kantor Kelurahan Gambir", "Pendopo Balai Kota".
    desk_name: str = Field(min_length=1, max_length=200)
    #: The desk's own area (wilayah.csv): which officers may use it, and where `default_place_to_desk` puts
    #: a complaint. "31" for city-wide desks (Balai Kota, the call centre, Inspektorat).
    wilayah_code: str
    #: A complaint entered with no place at all is placed in `wilayah_code` (for kelurahan offices: people
    #: complain about their own kelurahan). Off: it stays without a place, for a reviewer to ask.
    default_place_to_desk: bool = False
    #: Can be lowered, not raised: the route reads at most `WalkInAdapter.max_body_bytes`.
    max_photo_bytes: int = Field(default=DEFAULT_MAX_PHOTO_BYTES, ge=16 * 1024, le=DEFAULT_MAX_PHOTO_BYTES)
    tolerance_seconds: int = Field(default=signing.DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)

    @field_validator("wilayah_code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        return check_wilayah_code(value)

    @model_validator(mode="after")
    def _default_place_needs_an_area(self) -> WalkInSettings:
        if self.default_place_to_desk and "." not in self.wilayah_code:
            raise ValueError(
                "default_place_to_desk needs a wilayah_code below the whole city (a kota, kecamatan or "
                "kelurahan): placing a complaint in '31' tells the reviewer nothing; remove it or narrow the code"
            )
        return self


class _Citizen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)


class _Photo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str | None = Field(default=None, max_length=300)
    data_base64: str = Field(min_length=4)


class WalkInPayload(BaseModel):
    """What the intake page posts. Built by Kanal itself, so anything unexpected is an error."""

    model_config = ConfigDict(extra="forbid")

    intake_id: str = Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    received_by: str = Field(min_length=1, max_length=200)
    citizen: _Citizen | None = None
    contact_consent: bool = False
    address: str | None = Field(default=None, max_length=MAX_ADDRESS_CHARS)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    wilayah_code: str | None = None
    photo: _Photo | None = None

    @field_validator("wilayah_code")
    @classmethod
    def _known_code(cls, value: str | None) -> str | None:
        return check_wilayah_code(value) if value else None

    @model_validator(mode="after")
    def _consistent(self) -> WalkInPayload:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("give both lat and lng, or neither")
        citizen = self.citizen
        if citizen is not None and (citizen.phone or citizen.email) and not self.contact_consent:
            raise ValueError(
                "a phone number or e-mail address is kept only with the citizen's consent: tick contact_consent "
                "or leave them out"
            )
        return self


def build_payload(**fields: object) -> bytes:
    """The JSON body of one intake (fields of `WalkInPayload`), checked, as the adapter will read it."""
    payload = WalkInPayload.model_validate(fields)
    return json.dumps(payload.model_dump(exclude_none=True), ensure_ascii=False).encode()


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a delivery of `body` to a desk whose instance secret is `secret`."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"content-type": "application/json", SIGNATURE_HEADER: signing.sign(secret, body, stamp)}


class WalkInAdapter(Adapter[WalkInSettings]):
    channel_type: ClassVar[str] = "walk_in"
    settings_model = WalkInSettings
    description = "Staff intake at walk-in desks and the call centre (Kanal's own /admin/intake page)"
    # A photo travels base64-encoded in the JSON: 4/3 of its size, plus the text fields.
    max_body_bytes: ClassVar[int] = DEFAULT_MAX_PHOTO_BYTES * 4 // 3 + 256 * 1024
    # A citizen who left a phone or e-mail is told the ticket; everyone gets the printed receipt anyway.
    acknowledge_receipt: ClassVar[bool] = True
    trusted_by_default: ClassVar[bool] = False

    def verify(self, request: RawRequest) -> None:
        signing.verify(
            request.header(SIGNATURE_HEADER),
            request.body,
            [self.context.instance_secret],
            now=request.received_at,
            tolerance_seconds=self.settings.tolerance_seconds,
        )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        payload = self._payload(request)
        citizen = payload.citizen
        sender = None
        if citizen is not None and (citizen.name or citizen.phone or citizen.email):
            sender = Sender(name=citizen.name, phone=citizen.phone, email=citizen.email)
        try:
            return [
                InboundMessage(
                    external_id=payload.intake_id,
                    text=payload.text,
                    sender=sender,
                    location=self._location(payload),
                    media=self._media(payload),
                    sent_at=request.received_at,
                    received_by=payload.received_by,
                )
            ]
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc), status_code=422) from None

    async def send(self, reply: OutboundReply) -> str:
        # A desk has no messaging line of its own; the citizen holds the printed receipt and the status URL.
        raise NotImplementedError(
            f"walk-in desk {self.channel_id} cannot message citizens; they have the printed receipt with the "
            "ticket and the status page address"
        )

    def inline_attachment(self, request: RawRequest, url: str) -> tuple[str, bytes]:
        """The photo taken at the desk, as its sniffed type and bytes."""
        if url != PHOTO_REF:
            raise LookupError(url)
        try:
            payload = self._payload(request)
        except PayloadRejected:
            raise LookupError(url) from None
        data = _photo_bytes(payload.photo) if payload.photo else None
        sniffed = sniff_image(data) if data else None
        if data is None or sniffed is None:
            raise LookupError(url)
        return sniffed[0], data

    def _payload(self, request: RawRequest) -> WalkInPayload:
        if not request.body.strip():
            raise PayloadRejected("empty body; the intake page sends one JSON object")
        try:
            document = json.loads(request.body)
        except ValueError as exc:  # also UnicodeDecodeError and over-long integers
            raise PayloadRejected(f"body is not valid UTF-8 JSON ({exc}); send one JSON object") from None
        if not isinstance(document, dict):
            raise PayloadRejected("body must be one JSON object, not a list or a scalar")
        try:
            return WalkInPayload.model_validate(document)
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc), status_code=422) from None

    def _location(self, payload: WalkInPayload) -> Location | None:
        address = " ".join((payload.address or "").split())
        parts = [address] if address else []
        area = payload.wilayah_code
        has_place = bool(address or payload.lat is not None or area)
        if area is None and self.settings.default_place_to_desk and not has_place:
            area = self.settings.wilayah_code
        if area:
            parts += place_names(area)
        text = ", ".join(parts)[:1000] or None
        if text is None and payload.lat is None:
            return None
        return Location(lat=payload.lat, lng=payload.lng, address=text)

    def _media(self, payload: WalkInPayload) -> list[MediaRef]:
        if payload.photo is None:
            return []
        data = _photo_bytes(payload.photo)
        if data is None:
            raise PayloadRejected("photo.data_base64 is not valid base64; attach the photo again", status_code=422)
        if len(data) > self.settings.max_photo_bytes:
            limit = self.settings.max_photo_bytes // (1024 * 1024)
            raise PayloadRejected(f"photo too large (limit {limit} MB); take a smaller photo", status_code=413)
        sniffed = sniff_image(data)
        if sniffed is None:
            raise PayloadRejected("the photo is not a JPEG, PNG or WebP image; choose another file", status_code=415)
        content_type, extension = sniffed
        name = safe_filename(payload.photo.filename or "foto", extension)
        return [MediaRef(url=PHOTO_REF, content_type=content_type, filename=name, size=len(data))]


def _photo_bytes(photo: _Photo) -> bytes | None:
    try:
        return base64.b64decode(photo.data_base64, validate=True)
    except (binascii.Error, ValueError):
        return None


def _describe(exc: ValidationError) -> str:
    """`field.path: problem` for each problem, in one line."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return "invalid intake: " + "; ".join(problems)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [WalkInAdapter]


__all__ = [
    "DESK_KINDS",
    "PHOTO_REF",
    "WalkInAdapter",
    "WalkInPayload",
    "WalkInSettings",
    "build_payload",
    "place_names",
    "sign",
]
