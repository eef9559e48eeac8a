"""`whatsapp`: the city's business number on Meta's WhatsApp Cloud API.

Meta checks the callback URL once (`GET ?hub.mode=subscribe...`) and then POSTs every event signed with
the app secret (see `adapters.meta`). A delivery is `{"object": "whatsapp_business_account", "entry":
[{"changes": [{"field": "messages", "value": {...}}]}]}`; one delivery may carry several messages, events
for other numbers of the same business account, and status callbacks for what we sent.

Citizens write in bursts (the problem, then a location pin, then a photo), so every message carries an
`Assembly` keyed by its sender and Kanal folds a burst into one report.

Replies are free text inside WhatsApp's 24-hour customer-service window (counted from the citizen's last
message); outside it WhatsApp delivers only approved templates, so the configured `reply_template` carries
the reply as its body parameter. A webhook names a photo only by its media id: `download_media` asks the
Graph API for a short-lived URL and fetches it with the access token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters import hookimpl, meta
from adapters.contract import (
    Adapter,
    AdapterResponse,
    Assembly,
    InboundMessage,
    Location,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
    Sender,
)
from adapters.errors import ChannelUnavailable, MediaUnavailable, PayloadIgnored, PayloadRejected
from adapters.media_download import download, hosts_of

#: WhatsApp delivers free-form messages only this long after the citizen's last message.
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
#: Graph error codes meaning "slow down": the same request succeeds later.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
#: Graph error codes for a passing fault on Meta's side.
TEMPORARY_CODES = frozenset({1, 2, 131000, 131016, 131057, 133004})
#: "More than 24 hours since the customer last replied": only a template gets through.
OUTSIDE_WINDOW_CODE = 131047
INVALID_TOKEN_CODE = 190
#: Meta refuses a template parameter with line breaks, tabs or long runs of spaces, and a long one.
TEMPLATE_PARAMETER_MAX_CHARS = 900
MEDIA_PREFIX = "whatsapp:"

# Ids from a stranger's payload end up in URL paths and group keys: no slashes, dots only in BSUIDs.
_MEDIA_ID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_USER_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
_PHONE_DIGITS = re.compile(r"^[0-9]{5,20}$")


class ReplyTemplate(BaseModel):
    """An approved message template with one body parameter, used outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    #: The template's language code as approved in WhatsApp Manager: `id`, `en`, `en_US`...
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")


class WhatsAppSettings(meta.MetaSettings):
    #: The business number's id in the Cloud API (not the number itself); deliveries for others are ignored.
    phone_number_id: str = Field(pattern=r"^[0-9]{1,40}$")
    #: The business number in international digits (628111272206); messages from it are our own echoes.
    display_phone_number: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")
    #: Used for replies outside the 24-hour window; None: such replies fail and say so.
    reply_template: ReplyTemplate | None = None
    #: Messages from one number within this many seconds of each other become one report.
    fold_window_seconds: float = Field(default=120.0, gt=0, le=86_400)


# ------------------------------------------------------------------------------------------ wire models
# Meta adds fields without notice, so unknown ones are ignored; what we read must have the right shape.


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Profile(_Wire):
    name: str | None = None
    username: str | None = None


class _Contact(_Wire):
    wa_id: str | None = None
    #: The business-scoped user id (BSUID), sent as users adopt usernames and may hide their number.
    user_id: str | None = None
    profile: _Profile | None = None


class _Metadata(_Wire):
    phone_number_id: str
    display_phone_number: str | None = None


class _Value(_Wire):
    messaging_product: str | None = None
    metadata: _Metadata
    contacts: list[_Contact] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)


class _Change(_Wire):
    field: str
    value: Any = None


class _Entry(_Wire):
    changes: list[_Change] = Field(default_factory=list)


class _Webhook(_Wire):
    object: str
    entry: list[_Entry]


class _Text(_Wire):
    body: str


class _Media(_Wire):
    id: str = Field(pattern=_MEDIA_ID.pattern)
    mime_type: str | None = Field(default=None, max_length=200)
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None


class _Place(_Wire):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class _Choice(_Wire):
    title: str


class _Interactive(_Wire):
    type: str
    button_reply: _Choice | None = None
    list_reply: _Choice | None = None


class _Button(_Wire):
    text: str


class _Message(_Wire):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=200)
    sender_number: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    timestamp: str | int | None = None
    type: str
    text: _Text | None = None
    image: _Media | None = None
    document: _Media | None = None
    audio: _Media | None = None
    video: _Media | None = None
    location: _Place | None = None
    interactive: _Interactive | None = None
    button: _Button | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


#: What a message of each type says, when it says nothing itself (stored as the message's text).
_MEDIA_NOTES = {
    "document": "[Dokumen terlampir{name}]",
    "audio": "[Rekaman suara terlampir, belum ditranskripsi]",
    "video": "[Video terlampir]",
}
#: Message types that carry nothing for a complaint.
_NOT_COMPLAINTS = {
    "reaction": "a reaction",
    "sticker": "a sticker",
    "contacts": "a shared contact card",
    "system": "a system notice (number change)",
    "request_welcome": "a welcome request (chat opened)",
    "order": "a catalogue order",
    "ephemeral": "a disappearing message",
}


class WhatsAppAdapter(Adapter[WhatsAppSettings]):
    channel_type: ClassVar[str] = "whatsapp"
    settings_model = WhatsAppSettings
    description = "Meta WhatsApp Cloud API: the business number's messages, replies and photos"
    media_hosts: ClassVar[frozenset[str]] = meta.MEDIA_HOSTS
    acknowledge_receipt: ClassVar[bool] = True

    # ------------------------------------------------------------------------------------- inbound

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        return meta.answer_challenge(request, self.settings.verify_token)

    def verify(self, request: RawRequest) -> None:
        meta.verify_signature(request, self.settings.app_secret)

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        hook = _load(request.body)
        if hook.object != "whatsapp_business_account":
            raise PayloadRejected(
                f"object is {hook.object[:60]!r}, not 'whatsapp_business_account'; point other Meta products' "
                "webhooks at their own channel",
                status_code=422,
            )
        messages: dict[str, InboundMessage] = {}
        ignored: list[str] = []
        for entry in hook.entry:
            for change in entry.changes:
                if change.field != "messages":
                    ignored.append(f"a webhook event of field {change.field[:60]!r} (only 'messages' is read)")
                    continue
                value = _validate(_Value, change.value, "entry.changes.value")
                if value.messaging_product not in (None, "whatsapp"):
                    raise PayloadRejected("messaging_product must be 'whatsapp'", status_code=422)
                if value.metadata.phone_number_id != self.settings.phone_number_id:
                    ignored.append(f"an event for phone number id {value.metadata.phone_number_id[:40]}, not ours")
                    continue
                for raw in value.messages:
                    outcome = self._message(_validate(_Message, raw, "messages[]"), value.contacts)
                    if isinstance(outcome, str):
                        ignored.append(outcome)
                    else:
                        # One delivery may repeat a message; the inbox needs each id once.
                        messages.setdefault(outcome.external_id, outcome)
                if value.statuses:
                    ignored.append(_statuses(value.statuses))
                if value.errors:
                    ignored.append(f"a platform error notice ({_error_codes(value.errors)})")
        if not messages:
            raise PayloadIgnored(("; ".join(ignored) or "no messages in delivery")[:1000])
        return list(messages.values())

    def _message(self, message: _Message, contacts: list[_Contact]) -> InboundMessage | str:
        """The message, or why it was ignored."""
        if message.type == "unsupported" or message.errors:
            return f"message {message.id[:80]} could not be read by WhatsApp ({_error_codes(message.errors)})"
        if message.type in _NOT_COMPLAINTS:
            return _NOT_COMPLAINTS[message.type]
        own = self.settings.display_phone_number
        if own and message.sender_number == own.lstrip("+"):
            return "our own message"
        content = _content(message)
        if isinstance(content, str):
            return content
        text, media, location = content
        key, sender = _sender(message, contacts)
        try:
            return InboundMessage(
                external_id=message.id,
                text=text,
                sender=sender,
                location=location,
                media=media,
                sent_at=_sent_at(message.timestamp),
                thread_id=f"whatsapp:{key}",
                assembly=Assembly(key=f"whatsapp:{key}", window_seconds=self.settings.fold_window_seconds),
            )
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc, f"message {message.id[:80]}"), status_code=422) from None

    # ------------------------------------------------------------------------------------- replies

    async def send(self, reply: OutboundReply) -> str:
        """Text inside the 24-hour window (quoting the citizen's message), the reply template outside it."""
        token = self._token("send replies")
        recipient = _recipient(reply)
        if _within_window(reply.last_inbound_at):
            body: dict[str, Any] = {**recipient, "type": "text", "text": {"body": reply.text}}
            if reply.in_reply_to:
                body["context"] = {"message_id": reply.in_reply_to}
            try:
                return await self._post_message(token, body)
            except _OutsideWindow:
                pass  # our clock and Meta's disagree at the edge of the window: the template still gets through
        return await self._post_message(token, {**recipient, **self._template(reply.text)})

    def _template(self, text: str) -> dict[str, Any]:
        template = self.settings.reply_template
        if template is None:
            raise ChannelUnavailable(
                f"channel {self.channel_id}: the citizen last wrote more than 24 hours ago, and WhatsApp then "
                "delivers only approved templates; set reply_template (name and language of a template with "
                "one body parameter) to reach them",
                retryable=False,
            )
        parameter = " ".join(text.split())
        if len(parameter) > TEMPLATE_PARAMETER_MAX_CHARS:
            parameter = parameter[: TEMPLATE_PARAMETER_MAX_CHARS - 1] + "…"
        return {
            "type": "template",
            "template": {
                "name": template.name,
                "language": {"code": template.language},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": parameter}]}],
            },
        }

    async def _post_message(self, token: str, body: dict[str, Any]) -> str:
        url = f"{self._graph}/{self.settings.phone_number_id}/messages"
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", **body}
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout_seconds) as http:
                response = await http.post(url, json=payload, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"Graph API unreachable ({type(exc).__name__}); will retry") from None
        if response.is_success:
            return _message_id(response)
        code, message = _graph_error(response)
        if code == OUTSIDE_WINDOW_CODE and body.get("type") == "text":
            raise _OutsideWindow()
        raise _send_failure(response, code, message)

    # --------------------------------------------------------------------------------------- media

    def allowed_media_hosts(self) -> frozenset[str]:
        return self.media_hosts | hosts_of(self.settings.graph_base_url)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Resolve the media id to its short-lived URL, then fetch it with the token (Meta requires it)."""
        media_id = ref.platform_id or (ref.url[len(MEDIA_PREFIX) :] if ref.url.startswith(MEDIA_PREFIX) else "")
        if not _MEDIA_ID.fullmatch(media_id):
            raise MediaUnavailable(f"not a WhatsApp media reference: {ref.url[:100]!r}")
        try:
            token = self._token("download media")
        except NotImplementedError as exc:
            raise MediaUnavailable(str(exc)) from None
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=self.settings.timeout_seconds, follow_redirects=False) as http:
            info = await self._media_info(http, media_id, headers)
            size = _as_int(info.get("file_size"))
            if size is not None and size > max_bytes:
                raise MediaUnavailable(f"too large: {size} bytes, limit {max_bytes}")
            url = info.get("url")
            if not isinstance(url, str) or not url:
                raise MediaUnavailable(f"the Graph API gave no download URL for media {media_id}")
            content = await download(
                url, allowed_hosts=self.allowed_media_hosts(), max_bytes=max_bytes, headers=headers, client=http
            )
        mime_type = info.get("mime_type")
        if content.content_type == "application/octet-stream" and isinstance(mime_type, str) and mime_type:
            return MediaContent(content_type=mime_type, data=content.data)
        return content

    async def _media_info(self, http: httpx.AsyncClient, media_id: str, headers: Mapping[str, str]) -> dict[str, Any]:
        try:
            response = await http.get(
                f"{self._graph}/{media_id}",
                params={"phone_number_id": self.settings.phone_number_id},
                headers=dict(headers),
            )
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"Graph API unreachable ({type(exc).__name__}); will retry") from None
        if not response.is_success:
            code, message = _graph_error(response)
            failure = _send_failure(response, code, message)
            if failure.retryable or code == INVALID_TOKEN_CODE or response.status_code in (401, 403):
                raise failure
            raise MediaUnavailable(f"the Graph API does not give media {media_id} ({response.status_code}: {message})")
        try:
            info = response.json()
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise MediaUnavailable(f"the Graph API answered media {media_id} with something other than an object")
        return info

    # ------------------------------------------------------------------------------------- helpers

    @property
    def _graph(self) -> str:
        return self.settings.graph_base_url.rstrip("/")

    def _token(self, purpose: str) -> str:
        if self.settings.access_token is None:
            raise NotImplementedError(
                f"channel {self.channel_id} has no access_token: set a system user token with the "
                f"whatsapp_business_messaging permission to {purpose}"
            )
        return self.settings.access_token.get_secret_value()


class _OutsideWindow(Exception):
    """Meta says the 24-hour window has closed (error 131047) although our clock said it was open."""


# ------------------------------------------------------------------------------------- parse helpers


def _load(body: bytes) -> _Webhook:
    if not body.strip():
        raise PayloadRejected("empty body; Meta sends one JSON object per delivery")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadRejected("body is not JSON; Meta sends one UTF-8 JSON object per delivery") from None
    if not isinstance(document, dict):
        raise PayloadRejected("body must be one JSON object with 'object' and 'entry'")
    return _validate(_Webhook, document, "body")


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: object, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadRejected(_describe(exc, where), status_code=422) from None


def _describe(exc: ValidationError, where: str) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5]]
    return f"{where} does not fit the WhatsApp webhook format: " + "; ".join(problems)


def _content(message: _Message) -> tuple[str, list[MediaRef], Location | None] | str:
    """(text, media, location) of a message, or why it carries nothing to store."""
    kind = message.type
    if kind == "text" and message.text is not None:
        return message.text.body, [], None
    if kind == "image" and message.image is not None:
        return message.image.caption or "", [_media_ref(message.image)], None
    if kind in _MEDIA_NOTES:
        media = getattr(message, kind)
        if isinstance(media, _Media):
            name = f": {media.filename}" if media.filename else ""
            return media.caption or _MEDIA_NOTES[kind].format(name=name), [_media_ref(media)], None
    if kind == "location" and message.location is not None:
        place = message.location
        address = ", ".join(part for part in (place.name, place.address) if part) or None
        try:
            location = Location(lat=place.latitude, lng=place.longitude, address=address)
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc, f"message {message.id[:80]} location"), status_code=422) from None
        return "", [], location
    if kind == "interactive" and message.interactive is not None:
        choice = message.interactive.button_reply or message.interactive.list_reply
        if choice is None:
            return f"an interactive {message.interactive.type[:40]!r} reply (only button and list replies are read)"
        return choice.title, [], None
    if kind == "button" and message.button is not None:
        return message.button.text, [], None
    if kind in {"text", "image", "location", "interactive", "button", *_MEDIA_NOTES}:
        raise PayloadRejected(f"message {message.id[:80]} has type {kind!r} but no {kind!r} object", status_code=422)
    return f"a message of type {kind[:40]!r}, which this channel does not read"


def _media_ref(media: _Media) -> MediaRef:
    return MediaRef(
        url=f"{MEDIA_PREFIX}{media.id}",
        platform_id=media.id,
        content_type=media.mime_type,
        filename=media.filename[:300] if media.filename else None,
    )


def _sender(message: _Message, contacts: list[_Contact]) -> tuple[str, Sender]:
    """The sender's stable key (wa_id, or BSUID when the number is hidden) and identity."""
    number = message.sender_number
    contact = next((c for c in contacts if number and c.wa_id == number), None)
    contact = contact or next((c for c in contacts if message.from_user_id and c.user_id == message.from_user_id), None)
    if contact is None and len(contacts) == 1:
        contact = contacts[0]
    wa_id = (contact.wa_id if contact else None) or number
    key = wa_id or (contact.user_id if contact else None) or message.from_user_id
    if not key or not _USER_ID.fullmatch(key):
        raise PayloadRejected(f"message {message.id[:80]} names no usable sender (from / wa_id)", status_code=422)
    phone = next((p for p in (number, wa_id) if p and _PHONE_DIGITS.fullmatch(p)), None)
    profile = contact.profile if contact else None
    return key, Sender(
        id=key,
        phone=f"+{phone}" if phone else None,
        name=profile.name[:200] if profile and profile.name else None,
        handle=profile.username[:200] if profile and profile.username else None,
    )


def _sent_at(timestamp: str | int | None) -> datetime | None:
    """The message's unix time; None when absent or absurd (the time is informative, not worth a refusal)."""
    seconds = _as_int(timestamp)
    if seconds is None or not 0 < seconds < 10**10:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        return int(value)
    return None


def _statuses(statuses: list[dict[str, Any]]) -> str:
    """Status callbacks for what we sent; a `failed` one says why our reply never arrived."""
    kinds = sorted({str(s.get("status"))[:20] for s in statuses})
    failures = [s.get("errors") for s in statuses if s.get("status") == "failed"]
    why = "; ".join(_error_codes(e) for e in failures if isinstance(e, list) and e)
    return f"{len(statuses)} status update(s) ({', '.join(kinds)})" + (f", failed with {why}" if why else "")


def _error_codes(errors: list[Any]) -> str:
    described = [
        f"{e.get('code')}: {str(e.get('title') or e.get('message') or '')[:80]}"
        for e in errors[:3]
        if isinstance(e, dict)
    ]
    return "; ".join(described) or "no reason given"


# ------------------------------------------------------------------------------------- send helpers


def _within_window(last_inbound_at: datetime | None) -> bool:
    return last_inbound_at is not None and datetime.now(UTC) - last_inbound_at < CUSTOMER_SERVICE_WINDOW


def _recipient(reply: OutboundReply) -> dict[str, str]:
    """`to` for a phone number (Meta's preference), `recipient` for a BSUID when the number is hidden."""
    person = reply.recipient
    for candidate in (person.id, person.phone):
        digits = (candidate or "").lstrip("+")
        if _PHONE_DIGITS.fullmatch(digits):
            return {"to": digits}
    if person.id and _USER_ID.fullmatch(person.id):
        return {"recipient": person.id}
    raise ChannelUnavailable(
        "the citizen has no WhatsApp number or user id to write to; reply on another channel", retryable=False
    )


def _message_id(response: httpx.Response) -> str:
    try:
        answer = response.json()
        return str(answer["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        # Sent (2xx) but unlabelled: raising would send the citizen the same message again.
        return ""


def _graph_error(response: httpx.Response) -> tuple[int | None, str]:
    """Graph's `error.code` and message, as far as the answer has them."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return None, response.text[:200] or response.reason_phrase
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    message = " ".join(str(part) for part in (error.get("message"), details) if part)
    return _as_int(error.get("code")), message[:300]


def _send_failure(response: httpx.Response, code: int | None, message: str) -> ChannelUnavailable:
    status = response.status_code
    said = f"Graph API answered {status}" + (f" (code {code})" if code is not None else "") + f": {message}"
    if status == 429 or status >= 500 or code in RATE_LIMIT_CODES or code in TEMPORARY_CODES:
        return ChannelUnavailable(f"{said}; will retry", retry_after=_retry_after(response))
    if code == INVALID_TOKEN_CODE or status in (401, 403):
        return ChannelUnavailable(f"{said}; check the channel's access_token and its permissions", retryable=False)
    if code == OUTSIDE_WINDOW_CODE:
        return ChannelUnavailable(
            f"{said}; outside the 24-hour window only reply_template gets through", retryable=False
        )
    return ChannelUnavailable(f"{said}; not retried", retryable=False)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 86_400 else None


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [WhatsAppAdapter]
