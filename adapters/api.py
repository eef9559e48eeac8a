"""`api`: a generic signed JSON intake for other systems (call-centre software, legacy Qlue, partners).

Body: `{"external_id", "text", "sender": {"id", "name", "phone", "email"},
"location": {"lat", "lng", "address"}, "media": [{"url", "content_type"}], "sent_at"}`; only
`external_id` and `text` are required. Header `X-Kanal-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">`, accepted within five minutes of our clock.
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from adapters import hookimpl, signing
from adapters.contract import (
    Adapter,
    ChannelSettings,
    InboundMessage,
    Location,
    MediaRef,
    RawRequest,
    Sender,
)
from adapters.errors import PayloadRejected

SIGNATURE_HEADER = "x-kanal-signature"


class ApiSettings(ChannelSettings):
    secret: SecretStr = Field(min_length=16)
    #: Still accepted during a key rotation, until the partner has switched.
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    tolerance_seconds: int = Field(default=signing.DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)


class _ApiPayload(BaseModel):
    # Partners may send fields we do not know yet; they are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")

    external_id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)
    sender: Sender | None = None
    location: Location | None = None
    media: list[MediaRef] = Field(default_factory=list, max_length=20)
    sent_at: AwareDatetime | None = None


class ApiAdapter(Adapter[ApiSettings]):
    channel_type: ClassVar[str] = "api"
    settings_model = ApiSettings
    description = "Signed JSON intake for other systems (HMAC-SHA256, X-Kanal-Signature)"

    def verify(self, request: RawRequest) -> None:
        secrets = [s.get_secret_value().encode() for s in [self.settings.secret, *self.settings.previous_secrets]]
        signing.verify(
            request.header(SIGNATURE_HEADER),
            request.body,
            secrets,
            now=request.received_at,
            tolerance_seconds=self.settings.tolerance_seconds,
        )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        if not request.body.strip():
            raise PayloadRejected("empty body; send one JSON object with at least external_id and text")
        try:
            document = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadRejected(f"body is not valid UTF-8 JSON ({exc}); send one JSON object") from None
        if not isinstance(document, dict):
            raise PayloadRejected("body must be one JSON object, not a list or a scalar")
        try:
            payload = _ApiPayload.model_validate(document)
        except ValidationError as exc:
            raise PayloadRejected(describe_errors(exc), status_code=422) from None
        return [InboundMessage(**payload.model_dump())]


def describe_errors(exc: ValidationError) -> str:
    """`field.path: problem` for each problem, in one line a partner's developer can act on."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return "invalid payload: " + "; ".join(problems)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [ApiAdapter]
