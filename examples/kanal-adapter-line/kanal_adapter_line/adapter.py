"""`line`: a LINE Official Account's Messaging API webhook in, push messages out.

LINE posts `{"destination": "<bot user id>", "events": [...]}` signed with `X-Line-Signature`:
base64(HMAC-SHA256(channel secret, raw body)). Every message event that carries something a citizen
can be asked about (text, a shared location, a photo or other media) becomes one `InboundMessage`;
stickers, follows, joins, postbacks and the like are acknowledged and not stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import httpx
from adapters import hookimpl
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
from adapters.errors import ChannelUnavailable, PayloadIgnored, PayloadRejected, SignatureInvalid
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

SIGNATURE_HEADER = "x-line-signature"
PUSH_PATH = "/v2/bot/message/push"
#: Media message types and the format LINE's content endpoint serves them in (None: whatever was uploaded).
MEDIA_CONTENT_TYPES: dict[str, str | None] = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/x-m4a",
    "file": None,
}
#: Fixed namespace for retry keys, so a retried reply hashes to the same key in every process.
_RETRY_KEY_NAMESPACE = uuid.UUID("6f1c3b0e-2d4a-5b8e-9c7f-4a1d2e3b5c60")


class LineSettings(ChannelSettings):
    """One LINE channel (Messaging API channel in the LINE Developers Console)."""

    #: "Basic settings" tab: a 32-character hex string. Signs every webhook.
    channel_secret: SecretStr = Field(min_length=16)
    #: "Messaging API" tab: the long-lived channel access token. Authorises push messages.
    channel_access_token: SecretStr = Field(min_length=1)
    #: Still accepted after the secret is reissued, until every in-flight redelivery has arrived.
    previous_channel_secrets: list[SecretStr] = Field(default_factory=list)
    api_base_url: str = "https://api.line.me"
    #: Media content is served from a separate host.
    data_api_base_url: str = "https://api-data.line.me"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("api_base_url", "data_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.line.me")
        return value.rstrip("/")


class _Wire(BaseModel):
    """Base of LINE's webhook shapes: camelCase on the wire, and properties LINE adds later are ignored."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class _Source(_Wire):
    type: Literal["user", "group", "room"]
    user_id: str | None = Field(default=None, max_length=200)
    group_id: str | None = Field(default=None, max_length=200)
    room_id: str | None = Field(default=None, max_length=200)


class _ContentProvider(_Wire):
    type: Literal["line", "external"]
    #: Only for "external": the media lives on another server, not LINE's content API.
    original_content_url: str | None = Field(default=None, max_length=2000)


class _MessageContent(_Wire):
    type: str = Field(min_length=1)
    id: str = Field(min_length=1, max_length=100)
    text: str | None = None
    title: str | None = None
    address: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    content_provider: _ContentProvider | None = None
    file_name: str | None = Field(default=None, max_length=300)


class _DeliveryContext(_Wire):
    is_redelivery: bool = False


class _MessageEvent(_Wire):
    type: Literal["message"]
    #: Milliseconds since the epoch; unchanged on a redelivery. Bounded so a forged value cannot overflow datetime.
    timestamp: int = Field(ge=0, le=253_402_300_799_999)
    source: _Source
    #: Unchanged on a redelivery, so it is what makes a redelivery a duplicate in Kanal's inbox.
    webhook_event_id: str = Field(min_length=1, max_length=200)
    delivery_context: _DeliveryContext = Field(default_factory=_DeliveryContext)
    mode: str = "active"
    message: _MessageContent


class _OtherEvent(_Wire):
    """follow, unfollow, join, leave, postback, unsend, ...: acknowledged, never stored."""

    type: str = Field(min_length=1)


def _event_kind(value: object) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None:
        return None  # pydantic reports the event as lacking its type
    return "message" if kind == "message" else "other"


_Event = Annotated[
    Annotated[_MessageEvent, Tag("message")] | Annotated[_OtherEvent, Tag("other")],
    Discriminator(
        _event_kind,
        custom_error_type="missing_event_type",
        custom_error_message="each event must be an object with a type",
    ),
]


class _Webhook(_Wire):
    destination: str = Field(min_length=1, max_length=200)
    events: list[_Event] = Field(max_length=500)


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str = ""
    property: str = ""


class _ErrorBody(BaseModel):
    """LINE's error answer: `{"message", "details": [{"message", "property"}]}`."""

    model_config = ConfigDict(extra="ignore")

    message: str = ""
    details: list[_ErrorDetail] = Field(default_factory=list)

    def describe(self) -> str:
        parts = [self.message, *(f"{d.property}: {d.message}" if d.property else d.message for d in self.details)]
        return "; ".join(p for p in parts if p)


class LineAdapter(Adapter[LineSettings]):
    channel_type: ClassVar[str] = "line"
    settings_model = LineSettings
    description = "LINE Official Account (Messaging API webhook, X-Line-Signature; replies by push message)"
    secret_headers = frozenset({SIGNATURE_HEADER})

    def verify(self, request: RawRequest) -> None:
        header = request.header(SIGNATURE_HEADER)
        if not header:
            raise SignatureInvalid(
                "missing X-Line-Signature header; LINE signs every webhook, so check that the webhook URL in the "
                "LINE Developers Console points at this channel and that no proxy strips the header"
            )
        try:
            given = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("X-Line-Signature is not base64; it must be LINE's signature, unchanged") from None
        secrets = [self.settings.channel_secret, *self.settings.previous_channel_secrets]
        matched = False
        for secret in secrets:
            expected = hmac.new(secret.get_secret_value().encode(), request.body, hashlib.sha256).digest()
            # No early exit: the time taken says nothing about which secret, if any, matched.
            matched |= hmac.compare_digest(expected, given)
        if not matched:
            raise SignatureInvalid(
                "X-Line-Signature does not match the body; check that channel_secret is this channel's secret "
                "(Basic settings, not the access token), that it was not reissued, and that nothing re-encodes the body"
            )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        webhook = _read_webhook(request.body)
        if not webhook.events:
            # The console's "Verify" button sends no events and expects a 200.
            raise PayloadIgnored("webhook verification")
        messages: list[InboundMessage] = []
        skipped: Counter[str] = Counter()
        for index, event in enumerate(webhook.events):
            if not isinstance(event, _MessageEvent):
                skipped[f"{event.type} event"] += 1
                continue
            message = self._to_inbound(event, index)
            if message is None:
                skipped[f"{event.message.type} message"] += 1
            else:
                messages.append(message)
        if not messages:
            raise PayloadIgnored("no complaint to store: " + ", ".join(f"{n} {kind}" for kind, n in skipped.items()))
        return messages

    def _to_inbound(self, event: _MessageEvent, index: int) -> InboundMessage | None:
        """The stored form of one message event, or None for a kind that carries no complaint (stickers)."""
        content = event.message
        text: str | None = None
        location: Location | None = None
        media: list[MediaRef] = []
        if content.type == "text":
            text = content.text
            if text is None:
                raise PayloadRejected(f"events.{index}.message.text: a text message must have text", status_code=422)
        elif content.type == "location":
            if content.latitude is None or content.longitude is None:
                raise PayloadRejected(
                    f"events.{index}.message: a location message must have latitude and longitude", status_code=422
                )
            # The title is the place the citizen picked (a shop, a bus stop); the address is where it is.
            parts = [p.strip() for p in (content.title, content.address) if p and p.strip()]
            text = ", ".join(dict.fromkeys(parts))
            location = Location(lat=content.latitude, lng=content.longitude, address=content.address or content.title)
        elif content.type in MEDIA_CONTENT_TYPES:
            # A photo says nothing by itself; the citizen's text usually follows as its own event.
            text = ""
            media.append(self._media_ref(content))
        else:
            return None
        user_id = event.source.user_id
        try:
            return InboundMessage(
                external_id=event.webhook_event_id,
                text=text,
                sender=Sender(id=user_id) if user_id else None,
                location=location,
                media=media,
                sent_at=datetime.fromtimestamp(event.timestamp / 1000, tz=UTC),
                thread_id=event.source.group_id or event.source.room_id or user_id,
            )
        except ValidationError as exc:
            raise PayloadRejected(describe_errors(exc, prefix=f"events.{index}"), status_code=422) from None

    def _media_ref(self, content: _MessageContent) -> MediaRef:
        provider = content.content_provider
        if provider is not None and provider.type == "external" and provider.original_content_url:
            url = provider.original_content_url
        else:
            url = f"{self.settings.data_api_base_url}/v2/bot/message/{quote(content.id, safe='')}/content"
        return MediaRef(url=url, content_type=MEDIA_CONTENT_TYPES[content.type], filename=content.file_name)

    async def send(self, reply: OutboundReply) -> str:
        """Push `reply` to the citizen's LINE chat with the bot; return LINE's request id ("" if none was given)."""
        recipient = reply.recipient.id
        if not recipient:
            raise ChannelUnavailable("reply has no LINE user id to push to", retryable=False)
        headers = {"Authorization": f"Bearer {self.settings.channel_access_token.get_secret_value()}"}
        if reply.in_reply_to:
            # LINE runs a request with a given retry key once and answers later attempts 409, so a reply
            # retried after a timeout or a 5xx (which LINE may have delivered anyway) is not sent twice.
            headers["X-Line-Retry-Key"] = str(_retry_key(self.channel_id, recipient, reply))
        payload = {"to": recipient, "messages": [{"type": "text", "text": reply.text}]}
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout_seconds) as client:
                response = await client.post(f"{self.settings.api_base_url}{PUSH_PATH}", json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"LINE push API unreachable: {type(exc).__name__}: {exc}") from None
        if response.is_success:
            return response.headers.get("x-line-request-id", "")
        if response.status_code == 409 and "x-line-accepted-request-id" in response.headers:
            # An earlier attempt of this same reply was accepted: it is sent, not failed.
            return response.headers["x-line-accepted-request-id"]
        raise _push_error(response)


def _read_webhook(body: bytes) -> _Webhook:
    if not body.strip():
        raise PayloadRejected("empty body; LINE webhooks are one JSON object with destination and events")
    try:
        # Decoded here rather than by json.loads, which would guess UTF-16 or UTF-32 for some garbage.
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PayloadRejected(f"body is not UTF-8 (byte {exc.start}); LINE sends UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise PayloadRejected(f"body is not valid JSON ({exc}); LINE sends one JSON object") from None
    if not isinstance(document, dict):
        raise PayloadRejected("body must be one JSON object with destination and events, not a list or a scalar")
    try:
        return _Webhook.model_validate(document)
    except ValidationError as exc:
        raise PayloadRejected(describe_errors(exc), status_code=422) from None


def describe_errors(exc: ValidationError, *, prefix: str = "") -> str:
    """`field.path: problem` for each problem, in one line, with LINE's own (camelCase) field names."""
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        # events.<i>.<tag>...: the union tag ("message" or "other") is pydantic's bookkeeping, not LINE's field.
        if len(loc) >= 3 and loc[0] == "events" and isinstance(loc[1], int) and loc[2] in ("message", "other"):
            del loc[2]
        where = ".".join(filter(None, [prefix, *(str(p) for p in loc)])) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "invalid LINE webhook: " + "; ".join(problems)


def _retry_key(channel_id: str, recipient: str, reply: OutboundReply) -> uuid.UUID:
    """The same key for every attempt at one reply, and a different one for any other reply."""
    return uuid.uuid5(_RETRY_KEY_NAMESPACE, "\n".join([channel_id, recipient, reply.in_reply_to or "", reply.text]))


def _push_error(response: httpx.Response) -> ChannelUnavailable:
    """Map LINE's refusal to a policy: 429 and 5xx are worth retrying, any other 4xx is not."""
    try:
        detail = _ErrorBody.model_validate_json(response.content).describe()
    except ValidationError:
        detail = response.text[:300]
    status = response.status_code
    retryable = status == 429 or status >= 500
    retry_after: float | None = None
    if status == 429 and (header := response.headers.get("retry-after", "")).isdigit():
        retry_after = float(header)
    request_id = response.headers.get("x-line-request-id", "")
    message = f"LINE push API answered {status}: {detail or response.reason_phrase}"
    if request_id:
        message += f" (x-line-request-id {request_id})"
    return ChannelUnavailable(message, retryable=retryable, retry_after=retry_after)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [LineAdapter]
