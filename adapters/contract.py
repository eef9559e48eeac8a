"""The adapter contract: what a channel adapter receives, returns and may rely on.

An adapter knows one channel type's wire format and nothing else. Kanal gives it the raw request
(bytes and headers, exactly as received) and expects back authenticity (`verify`), parsed messages
(`parse`, pure) and, for channels that need them, challenge answers, pulls and replies. Storage,
de-duplication, normalisation and the CRM are Kanal's business, never the adapter's.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
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


class InboundMessage(_ChannelText):
    """One item from a channel, parsed. `external_id` is the channel's own id: a redelivery has the same."""

    external_id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=20_000)
    sender: Sender | None = None
    location: Location | None = None
    media: list[MediaRef] = Field(default_factory=list, max_length=20)
    sent_at: AwareDatetime | None = None
    thread_id: str | None = Field(default=None, max_length=200)


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


@dataclass(frozen=True)
class AdapterContext:
    """What Kanal lends an adapter instance: its own secret for tokens it issues, and public URLs."""

    channel_id: str
    instance_secret: bytes
    public_base_url: str

    def inbound_url(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/channels/{self.channel_id}/inbound"


class OutboundReply(BaseModel):
    """A message to a citizen on the channel they used, in answer to one of their messages."""

    model_config = ConfigDict(extra="forbid")

    recipient: Sender
    text: str = Field(min_length=1, max_length=4000)
    in_reply_to: str | None = None
    thread_id: str | None = None


class FetchResult(BaseModel):
    """One pull from a pull channel: the messages seen and the cursor to resume from next time."""

    model_config = ConfigDict(extra="forbid")

    messages: list[InboundMessage]
    cursor: str | None


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

    #: Pull channels set this and implement `fetch`; the scheduler then polls them.
    pulls: ClassVar[bool] = False

    async def fetch(self, cursor: str | None) -> FetchResult:
        """Pull messages newer than `cursor`. Raise `ChannelUnavailable` when the platform fails."""
        raise NotImplementedError(f"channel type {self.channel_type!r} does not pull")

    async def send(self, reply: OutboundReply) -> str:
        """Send `reply`; return the platform's id for it. Raise `ChannelUnavailable` on failure."""
        raise NotImplementedError(f"channel type {self.channel_type!r} cannot send replies")

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
