"""How a test authenticates deliveries for one channel type: the only per-adapter part of the contract kit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

#: A setting whose key contains one of these words holds a credential (same words as Kanal's config errors).
SECRET_WORDS = ("secret", "token", "key", "password")


@dataclass(frozen=True)
class Prepared:
    """A delivery ready to send: the exact body bytes and the request headers (signature, cookie...)."""

    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ChannelProfile(ABC):
    """Describes one channel type to the contract kit: its channel instance, fixtures and signing.

    Subclasses set the class attributes and implement `prepare_raw`, `tamper` and `strip`; the other
    methods have defaults that suit a channel that POSTs a signed body to its inbound route.
    """

    #: The adapter's `channel_type`.
    channel_type: ClassVar[str]
    #: The channel instance the suite configures, e.g. "line:test".
    channel_id: ClassVar[str]
    #: The instance's `settings:` block, exactly as it would stand in config.
    channel_settings: ClassVar[dict[str, Any]] = {}
    #: The folder holding this channel's payload fixtures.
    fixtures: ClassVar[Path]
    #: A complete valid delivery in `fixtures`: text, sender, and what else the channel carries.
    valid_fixture: ClassVar[str] = "full.json"
    #: When set, the text the valid fixture's message must be stored with.
    expected_text: ClassVar[str | None] = None

    def url(self) -> str:
        """The channel's inbound route, relative to Kanal's base URL."""
        return f"/channels/{self.channel_id}/inbound"

    def channel_config(self) -> dict[str, Any]:
        """The `channels:` entry for `channel_id`."""
        return {"type": self.channel_type, "settings": dict(self.channel_settings)}

    def extra_channels(self) -> dict[str, dict[str, Any]]:
        """More `channels:` entries the suite's Kanal needs (channel id -> config), e.g. a second instance."""
        return {}

    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        """A correctly authenticated delivery of the named fixture; by default its bytes, signed."""
        return self.prepare_raw(http, (self.fixtures / fixture).read_bytes())

    @abstractmethod
    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        """`body` as-is, authenticated as far as the channel's format allows (garbage gets a valid signature)."""

    @abstractmethod
    def tamper(self, prepared: Prepared) -> Prepared:
        """The same delivery with a wrong signature or token."""

    @abstractmethod
    def strip(self, prepared: Prepared) -> Prepared:
        """The same delivery with no signature or token at all."""

    def secrets(self) -> list[str]:
        """Strings that must never appear in logs or stored headers.

        Default: every string in `channel_settings` under a key containing secret, token, key or password
        (lists of strings too, such as previous secrets kept during a rotation).
        """
        return [value for key, value in _strings(self.channel_settings) if any(w in key.lower() for w in SECRET_WORDS)]

    def send(self, http: httpx.Client, prepared: Prepared) -> httpx.Response:
        """Deliver `prepared` as the platform would: by default a POST to the inbound route."""
        return http.post(self.url(), content=prepared.content, headers=prepared.headers)


def _strings(settings: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) for every string in `settings`, into nested blocks and lists."""
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            yield from _strings(value, path + ".")
        elif isinstance(value, list | tuple):
            yield from ((path, item) for item in value if isinstance(item, str))
