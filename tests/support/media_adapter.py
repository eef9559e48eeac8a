"""A push channel for the media worker's tests: `test_media` takes JSON messages that reference photos.

Body: `{"id": "m-1", "text": "...", "photos": ["http://127.0.0.1:<port>/p/1.jpg", ...],
"assembly": {"key": "...", "complete": true}}` (photos and assembly optional). No signature: these tests
are about what happens after a message is stored. Photos are downloaded with the adapter contract's
default `download_media`, from the hosts in the `media_hosts` setting.
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters import hookimpl
from adapters.contract import Adapter, Assembly, ChannelSettings, InboundMessage, MediaRef, RawRequest
from adapters.errors import PayloadRejected


class MediaTestSettings(ChannelSettings):
    media_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    photos: list[str] = Field(default_factory=list)
    assembly: Assembly | None = None


class MediaTestAdapter(Adapter[MediaTestSettings]):
    channel_type: ClassVar[str] = "test_media"
    settings_model: ClassVar[type[ChannelSettings]] = MediaTestSettings

    def verify(self, request: RawRequest) -> None:
        """Anyone may post: authenticity is not what these tests are about."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        try:
            body = _Body.model_validate(json.loads(request.body))
        except (ValueError, ValidationError) as exc:
            raise PayloadRejected(f"not a test_media message: {exc}") from None
        return [
            InboundMessage(
                external_id=body.id,
                text=body.text,
                media=[
                    MediaRef(url=url, content_type="image/jpeg", platform_id=f"pid-{n}")
                    for n, url in enumerate(body.photos)
                ],
                assembly=body.assembly,
            )
        ]

    def allowed_media_hosts(self) -> frozenset[str]:
        return frozenset(self.settings.media_hosts)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [MediaTestAdapter]
