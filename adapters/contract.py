"""The adapter contract: what a channel adapter receives, returns and may rely on.

An adapter knows one channel type's wire format and nothing else. Kanal gives it the raw request
(bytes and headers, exactly as received) and expects back authenticity (`verify`), parsed messages
(`parse`, pure) and, for channels that need them, challenge answers, pulls and replies. Storage,
de-duplication, normalisation and the CRM are Kanal's business, never the adapter's.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Headers that carry credentials are never stored with a raw payload, whatever the adapter says.
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


class _ChannelText(BaseModel):
    """Base of the parsed models: unknown fields are errors, and NUL characters are dropped.

    NUL is never meant by a citizen and PostgreSQL text cannot hold it; the raw body keeps it anyway.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _drop_nul(cls, value: object) -> object:
        return value.replace("\x00", "") if isinstance(value, str) else value


class Sender(_ChannelText):
    """Who sent a message, as far as the channel tells."""

    id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    handle: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)


class Location(_ChannelText):
    """Where the complaint is, as the channel gave it (coordinates, free text, or both)."""

    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=1000)


class MediaRef(_ChannelText):
    """A photo or file referenced by a message; fetched later, never needed to store the message.

    `url` is the platform's address, or `inline:<name>` for a file inside the delivery (a form upload).
    """

    url: str = Field(max_length=2000)
    content_type: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=300)
    #: The platform's own id for the file where it has one (WhatsApp media id, Telegram file_id): what
    #: `Adapter.download_media` resolves when `url` alone cannot be fetched.
    platform_id: str | None = Field(default=None, max_length=500)
    size: int | None = Field(default=None, ge=0)


class Assembly(_ChannelText):
    """This message is one part of a larger one, put together by Kanal before it becomes a report.

    Parts with the same `key` on one channel form a group: a chat conversation (problem, then location,
    then photo), a multipart SMS, or one number's quick succession of messages. Every part is stored
    (and acknowledged) at once, as any message; the normalizer takes the group only when it is done:
    when a part says `complete`, or `window_seconds` after its latest part. Parts of one `segment`
    (a multipart SMS) are joined in `part` order without a separator; segments and the other parts are
    joined by line breaks, in arrival order. A part arriving after its group was taken starts a new one.
    """

    key: str = Field(min_length=1, max_length=200)
    complete: bool = False
    window_seconds: float = Field(default=300.0, gt=0, le=86_400)
    segment: str | None = Field(default=None, max_length=200)
    part: int | None = Field(default=None, ge=1, le=255)
    total: int | None = Field(default=None, ge=1, le=255)


class InboundMessage(_ChannelText):
    """One item from a channel, parsed. `external_id` is the channel's own id: a redelivery has the same."""

    external_id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=20_000)
    sender: Sender | None = None
    location: Location | None = None
    media: list[MediaRef] = Field(default_factory=list, max_length=20)
    sent_at: AwareDatetime | None = None
    thread_id: str | None = Field(default=None, max_length=200)
    #: Set when this message is a part of a conversation or a multipart message (see `Assembly`).
    assembly: Assembly | None = None
    #: Who took the complaint down for the citizen (a walk-in desk officer, a call-centre agent): recorded
    #: with the report, never sent to the CRM as the citizen's identity.
    received_by: str | None = Field(default=None, max_length=200)
    #: A category the citizen chose in the channel's own app or form, as a code of config/taxonomy.yaml
    #: (the adapter maps the channel's labels): the normalizer takes it over its own guess.
    category_hint: str | None = Field(default=None, max_length=100)


@dataclass(frozen=True)
class RawRequest:
    """A delivery exactly as it reached Kanal. Header names are lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    client_ip: str
    received_at: datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class AdapterResponse:
    """What to answer the platform; adapters build these instead of framework responses."""

    status_code: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, status_code: int = 200) -> AdapterResponse:
        return cls(status_code, json.dumps(payload, ensure_ascii=False).encode())

    @classmethod
    def html(cls, page: str, status_code: int = 200) -> AdapterResponse:
        return cls(status_code, page.encode(), "text/html; charset=utf-8")


@dataclass(frozen=True)
class StoredOutcome:
    """What Kanal did with one parsed message: stored now, or recognised as a redelivery."""

    external_id: str
    ticket_code: str
    duplicate: bool


class TicketStatus(BaseModel):
    """What a citizen may learn about a report by its ticket code: no personal data, no internal notes."""

    model_config = ConfigDict(extra="forbid")

    ticket: str
    #: Kanal's state: pending_review, approved, rejected, forwarded, in_progress, resolved, ...
    state: str
    agency_unit: str | None = None
    updated_at: AwareDatetime
    status_url: str


#: `AdapterContext.lookup_ticket`: a ticket code as the citizen typed it -> its status, or None.
TicketLookup = Callable[[str], Awaitable[TicketStatus | None]]


async def _no_tickets(code: str) -> TicketStatus | None:
    return None


@dataclass(frozen=True)
class AdapterContext:
    """What Kanal lends an adapter instance: its own secret for tokens it issues, public URLs, and a way
    to answer a citizen who asks about a ticket (`lookup_ticket`, read-only)."""

    channel_id: str
    instance_secret: bytes
    public_base_url: str
    lookup_ticket: TicketLookup = _no_tickets

    def inbound_url(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/channels/{self.channel_id}/inbound"


class StatusUpdate(BaseModel):
    """The change a reply tells of, for channels whose far end wants it structured (JAKI, LAPOR!, partners)."""

    model_config = ConfigDict(extra="forbid")

    ticket: str
    #: `received` for the acknowledgement of a new report; otherwise Kanal's report state (in_progress,
    #: resolved, rejected, ...).
    state: str
    agency_unit: str | None = None
    #: The agency's own words about the change, when the CRM gave any.
    note: str | None = None
    changed_at: AwareDatetime
    status_url: str


class OutboundReply(BaseModel):
    """A message to a citizen on the channel they used, in answer to one of their messages.

    Kanal fills in what it knows of the conversation: `in_reply_to` is the external id of the citizen's
    message (a tweet id, an e-mail Message-ID, a LAPOR! complaint id), `thread_id` its thread, and
    `last_inbound_at` when the citizen last wrote on this channel (WhatsApp's 24-hour window).
    """

    model_config = ConfigDict(extra="forbid")

    recipient: Sender
    text: str = Field(min_length=1, max_length=4000)
    in_reply_to: str | None = None
    thread_id: str | None = None
    ticket: str | None = None
    last_inbound_at: AwareDatetime | None = None
    status: StatusUpdate | None = None


class RejectedItem(BaseModel):
    """An item a pull could not parse (a poison e-mail): quarantined once, and the cursor moves past it."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(default=None, max_length=200)
    reason: str = Field(max_length=2000)
    body: bytes
    content_type: str | None = None


class FetchResult(BaseModel):
    """One pull from a pull channel: the messages seen and the cursor to resume from next time."""

    model_config = ConfigDict(extra="forbid")

    messages: list[InboundMessage]
    cursor: str | None
    #: Items seen but unusable; Kanal quarantines them with the reason and does not ask for them again.
    rejected: list[RejectedItem] = Field(default_factory=list)


@dataclass(frozen=True)
class MediaContent:
    """A downloaded file."""

    content_type: str
    data: bytes


class ChannelSettings(BaseModel):
    """Base of every adapter's settings model; unknown keys are errors, so typos surface at start."""

    model_config = ConfigDict(extra="forbid")


SettingsT = TypeVar("SettingsT", bound=ChannelSettings)


class Adapter(ABC, Generic[SettingsT]):
    """One configured channel instance of a channel type.

    Subclasses set `channel_type`, `settings_model` and implement `verify` and `parse`; pull channels
    also set `pulls = True` and implement `fetch`; channels that can answer implement `send`.
    """

    channel_type: ClassVar[str]
    settings_model: ClassVar[type[ChannelSettings]] = ChannelSettings
    description: ClassVar[str] = ""
    #: Largest body accepted on the push route; larger deliveries are answered 413 unread.
    max_body_bytes: ClassVar[int] = 1024 * 1024
    #: Lower-case header names holding secrets; removed before the raw delivery is stored.
    secret_headers: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, settings: SettingsT, context: AdapterContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def channel_id(self) -> str:
        return self.context.channel_id

    @abstractmethod
    def verify(self, request: RawRequest) -> None:
        """Check authenticity on the raw body; raise `SignatureInvalid` when it fails. Constant-time."""

    @abstractmethod
    def parse(self, request: RawRequest) -> list[InboundMessage]:
        """Turn a verified delivery into messages. Pure: no I/O. Raise `PayloadRejected` or `PayloadIgnored`."""

    #: Pull channels set this and implement `fetch`; the scheduler then polls them. Kanal reads it from the
    #: instance, so a type that can do both (Telegram: webhook or long polling) sets it in `__init__`.
    pulls: bool = False

    async def fetch(self, cursor: str | None) -> FetchResult:
        """Pull messages newer than `cursor`. Raise `ChannelUnavailable` when the platform fails."""
        raise NotImplementedError(f"channel type {self.channel_type!r} does not pull")

    async def send(self, reply: OutboundReply) -> str:
        """Send `reply`; return the platform's id for it. Raise `ChannelUnavailable` on failure."""
        raise NotImplementedError(f"channel type {self.channel_type!r} cannot send replies")

    #: Hosts this channel type's media may be downloaded from (a name matches itself and its subdomains).
    #: Empty: nothing is downloaded unless `download_media` is overridden. Settings may narrow or widen it.
    media_hosts: ClassVar[frozenset[str]] = frozenset()

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Fetch a remote media ref after its message is stored. Kanal calls it from the media worker.

        The default GETs `ref.url` from an allowed host (`allowed_media_hosts`), at most `max_bytes`.
        Override it where the platform needs a token or an id lookup first (WhatsApp, Telegram), using
        `adapters.media_download.download`. Raise `MediaUnavailable` when the file will never come (too
        large, gone, not from an allowed host) and `ChannelUnavailable` when trying later may help.
        """
        from adapters.media_download import download

        return await download(ref.url, allowed_hosts=self.allowed_media_hosts(), max_bytes=max_bytes)

    def allowed_media_hosts(self) -> frozenset[str]:
        """The hosts media may come from for this instance; adapters with a configurable API base add it."""
        return self.media_hosts

    #: Whether instances of this type are trusted (skip admin review, see `ChannelConfig.trusted`) when their
    #: configuration does not say; `may_be_trusted = False` refuses `trusted: true` at start (news, social).
    trusted_by_default: ClassVar[bool] = False
    may_be_trusted: ClassVar[bool] = True

    #: Whether a new report from this channel is acknowledged to the citizen (the `received` template).
    #: A channel's `acknowledge_receipt` setting overrides it. Off where the channel answers by itself
    #: (the form's thank-you page, a chat bot's own conversation).
    acknowledge_receipt: ClassVar[bool] = False

    async def after_delivery(
        self, request: RawRequest | None, messages: list[InboundMessage], outcomes: list[StoredOutcome]
    ) -> None:
        """Called once a delivery is handled: its messages stored (`outcomes`, same order as `messages`;
        `duplicate` for redeliveries), or, for a push delivery `parse` ignored, with both lists empty.

        For chat bots: the next question of a conversation, a ticket number, the answer to a command such
        as `/status <ticket>` (see `AdapterContext.lookup_ticket`). `request` is None for pulled messages.
        Best effort: Kanal logs what this raises and goes on; nothing stored depends on it.
        """

    async def aclose(self) -> None:
        """Release what the instance holds open (HTTP clients, bot sessions); called once when Kanal stops."""

    def inline_attachment(self, request: RawRequest, url: str) -> tuple[str, bytes]:
        """The content type and bytes of a media ref `inline:<name>`: a file carried in the delivery itself.

        Kanal serves these to admins and the CRM from the stored raw delivery. Raise `LookupError` when
        the delivery holds no such file.
        """
        raise LookupError(f"channel type {self.channel_type!r} carries no inline attachments")

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        """Answer `GET` on the channel's route (platform verification challenges, a form page)."""
        return AdapterResponse.json({"detail": "This channel accepts POST deliveries only."}, 405)

    def acknowledge(self, request: RawRequest, outcomes: list[StoredOutcome]) -> AdapterResponse:
        """Answer a delivery whose messages are all durably stored (or recognised as redeliveries)."""
        return AdapterResponse.json(
            {
                "accepted": [
                    {"external_id": o.external_id, "ticket": o.ticket_code, "duplicate": o.duplicate} for o in outcomes
                ]
            }
        )

    def ignored(self, request: RawRequest, reason: str) -> AdapterResponse:
        """Answer an authentic delivery that carried nothing to store (answered 200 so it is not resent)."""
        return AdapterResponse.json({"ignored": reason})

    def reject(self, request: RawRequest, status_code: int, message: str) -> AdapterResponse:
        """Answer a delivery that was rejected; `message` says what to do next."""
        return AdapterResponse.json({"detail": message}, status_code)
