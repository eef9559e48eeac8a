"""`api`: a generic signed JSON intake for other systems (call-centre software, legacy Qlue, partners).

Body: `{"external_id", "text", "sender": {"id", "name", "phone", "email"},
"location": {"lat", "lng", "address"}, "media": [{"url", "content_type"}], "sent_at"}`; only
`external_id` and `text` are required. Header `X-Kanal-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">`, accepted within five minutes of our clock.

Replies (status changes for the citizen) go to the partner's `reply_url` when one is configured:
`POST {"recipient", "text", "in_reply_to", "thread_id"}`, signed the same way with the same secret.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, SecretStr, ValidationError

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
from adapters.errors import ChannelUnavailable, PayloadRejected

SIGNATURE_HEADER = "x-kanal-signature"


class ApiSettings(ChannelSettings):
    secret: SecretStr = Field(min_length=16)
    #: Still accepted during a key rotation, until the partner has switched.
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    tolerance_seconds: int = Field(default=signing.DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)
    #: The partner's endpoint for messages to the citizen (status changes); signed with `secret` as the
    #: partner signs its deliveries. None: this channel has no reply path, and Kanal records that.
    reply_url: HttpUrl | None = None
    reply_timeout_seconds: float = Field(default=10.0, gt=0, le=120)


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

    async def send(self, reply: OutboundReply) -> str:
        """POST the reply to the partner's `reply_url`, signed; its answer's `id`, if any, is the message id."""
        if self.settings.reply_url is None:
            raise NotImplementedError(f"channel {self.channel_id} has no reply_url: set one to tell citizens")
        body = json.dumps(
            {
                "recipient": reply.recipient.model_dump(exclude_none=True),
                "text": reply.text,
                "in_reply_to": reply.in_reply_to,
                "thread_id": reply.thread_id,
            },
            ensure_ascii=False,
        ).encode()
        secret = self.settings.secret.get_secret_value().encode()
        headers = {
            "Content-Type": "application/json",
            "X-Kanal-Signature": signing.sign(secret, body, int(time.time())),
        }
        try:
            async with httpx.AsyncClient(timeout=self.settings.reply_timeout_seconds) as http:
                response = await http.post(str(self.settings.reply_url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"partner reply endpoint unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelUnavailable(f"partner answered {response.status_code}; will retry")
        if response.status_code >= 400:
            raise ChannelUnavailable(
                f"partner refused the reply ({response.status_code}): {response.text[:300]}", retryable=False
            )
        try:
            answer = response.json()
        except ValueError:
            return ""
        return str(answer.get("id", "")) if isinstance(answer, dict) else ""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        if not request.body.strip():
            raise PayloadRejected("empty body; send one JSON object with at least external_id and text")
        try:
            document = json.loads(request.body)
        # ValueError covers JSONDecodeError and UnicodeDecodeError, and also integers too long to convert.
        except ValueError as exc:
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
