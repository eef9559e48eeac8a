"""`sms`: text messages to the city's complaint number, through Twilio or any SMS gateway with a webhook.

Two modes (setting `mode`):

* `twilio`: Twilio's incoming-message webhook (form-encoded `MessageSid`, `From`, `Body`, `NumMedia`,
  `MediaUrl0`...), checked with `X-Twilio-Signature` against the public URL Twilio was given. Replies
  go through Twilio's Messages API.
* `generic`: a provider-neutral webhook, form-encoded or JSON, whose field names are configured
  (`fields`), authenticated by an HMAC-SHA256 of the raw body or a shared token in a header. Replies
  are POSTed as JSON `{to, from, text}` to the provider's `send_url`.

Every SMS joins its sender's group (`Assembly(key="sms:<number>")`): a citizen who sends the problem,
then the place, then "tolong cepat" within `fold_window_seconds` makes one complaint, not three. The
parts of one concatenated SMS (generic mode, when the gateway passes the concatenation reference,
part number and part count) are also a segment of that group, joined without a separator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from adapters import hookimpl, twilio_signature
from adapters.contract import (
    Adapter,
    AdapterContext,
    AdapterResponse,
    Assembly,
    ChannelSettings,
    InboundMessage,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
    Sender,
    StoredOutcome,
)
from adapters.errors import ChannelUnavailable, MediaUnavailable, PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.media_download import download, host_allowed, hosts_of

TWILIO_API_BASE_URL = "https://api.twilio.com"
#: Where Twilio's media URLs send the download: its API host, then its CDN (with HTTP auth on media) or,
#: for accounts without it, the older public bucket. Only the API host may be the first hop.
TWILIO_MEDIA_HOSTS = frozenset(
    {"api.twilio.com", "mms.twiliocdn.com", "media.twiliocdn.com", "s3-external-1.amazonaws.com"}
)
#: Twilio sends at most 10 photos with an MMS; more than the inbox holds is a malformed delivery.
MAX_MEDIA = 20
#: Channel prefixes Twilio puts before an address that is not a phone (WhatsApp, Messenger, RCS...).
_NON_SMS_ADDRESS = re.compile(r"^[a-z]+:", re.IGNORECASE)
_PHONE_PUNCTUATION = re.compile(r"[\s\-().\u00a0/]")
_E164_DIGITS = re.compile(r"[1-9][0-9]{7,14}")
#: An empty TwiML answer: Twilio sends no automatic reply, and logs no "invalid content type" warning.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: Typography that would switch a whole SMS from GSM-7 (153 characters a segment) to UCS-2 (67).
_GSM_FRIENDLY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2022": "-",
    }
)
_ELLIPSIS = "..."


def e164(raw: str, country_code: str = "62") -> str | None:
    """`raw` as an E.164 number (`+62812...`), or None when it is not a phone number (a short code, a name).

    National numbers ("0812 3456 7890") take `country_code`; "00" is the international prefix.
    """
    compact = _PHONE_PUNCTUATION.sub("", raw.strip())
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif compact.startswith("0"):
        digits = country_code + compact[1:]
    elif compact.startswith(country_code) and len(compact) >= 10:
        digits = compact
    else:
        # A national number without its trunk 0, as some gateways send ("812...").
        digits = country_code + compact
    return "+" + digits if _E164_DIGITS.fullmatch(digits) else None


def is_http_url(value: str) -> bool:
    """Whether `value` is an absolute http(s) URL with a host (and, if any, a valid port)."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # unbalanced brackets, a port out of range
        return False


def sms_body(text: str, limit: int) -> str:
    """`text` as one SMS body: GSM-7-friendly punctuation, cut at a word before `limit` characters.

    The provider splits the body into 153-character segments; `limit` bounds how many a reply costs.
    """
    body = text.translate(_GSM_FRIENDLY).strip()
    if len(body) <= limit:
        return body
    cut = body[: limit - len(_ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


class SmsFields(ChannelSettings):
    """Generic mode: where the gateway puts each value (a form field, or a dotted path into its JSON)."""

    sender: str = Field(default="from", min_length=1)
    text: str = Field(default="text", min_length=1)
    message_id: str = Field(default="id", min_length=1)
    #: ISO 8601 or Unix seconds/milliseconds; times without an offset are read in `naive_timezone`.
    sent_at: str | None = None
    #: A concatenated SMS: its reference (the same in every part), this part's number and the count.
    concat_ref: str | None = None
    concat_part: str | None = None
    concat_total: str | None = None

    @model_validator(mode="after")
    def _concatenation_all_or_nothing(self) -> SmsFields:
        named = [self.concat_ref, self.concat_part, self.concat_total]
        if any(named) and not all(named):
            raise ValueError("set concat_ref, concat_part and concat_total together (or none of them)")
        return self


#: Settings that only one mode reads; setting them in the other mode is a mistake worth stopping for.
_TWILIO_ONLY = frozenset(
    {"account_sid", "auth_token", "previous_auth_tokens", "messaging_service_sid", "api_base_url", "public_url"}
)
_GENERIC_ONLY = frozenset(
    {
        "secret",
        "previous_secrets",
        "auth",
        "signature_header",
        "token_header",
        "fields",
        "ignore_if_present",
        "naive_timezone",
        "send_url",
        "send_auth",
        "send_token",
        "send_id_field",
    }
)


class SmsSettings(ChannelSettings):
    mode: Literal["twilio", "generic"]
    #: Country code for national numbers ("0812..." -> "+62812...").
    country_code: str = Field(default="62", pattern=r"^[1-9][0-9]{0,2}$")
    #: One number's messages within this many seconds of each other become one complaint.
    fold_window_seconds: float = Field(default=120.0, gt=0, le=86_400)
    #: Replies longer than this are cut at a word (the provider splits what is sent into segments).
    max_reply_chars: int = Field(default=600, ge=70, le=1600)
    reply_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: The complaint number replies are sent from (E.164 or an approved sender id); also how our own
    #: messages are recognised if the provider echoes them.
    from_number: str | None = Field(default=None, max_length=40)

    # --- twilio
    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr | None = None
    #: Still accepted while the auth token is being rotated (Twilio's secondary token).
    previous_auth_tokens: list[SecretStr] = Field(default_factory=list)
    #: Send replies through a Messaging Service instead of `from_number`.
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    api_base_url: str = TWILIO_API_BASE_URL
    #: The webhook URL exactly as typed in the Twilio console, when Kanal's public_base_url + the channel's
    #: route is not it (another path on the proxy, a query string). Twilio signs this URL.
    public_url: str | None = None

    # --- generic
    secret: SecretStr | None = None
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    #: hmac: `signature_header` holds the HMAC-SHA256 of the raw body (hex or base64, "sha256=" allowed).
    #: token: `token_header` holds the shared secret itself ("Bearer " allowed).
    auth: Literal["hmac", "token"] = "hmac"
    signature_header: str = Field(default="x-sms-signature", min_length=1)
    token_header: str = Field(default="x-sms-token", min_length=1)
    fields: SmsFields = Field(default_factory=SmsFields)
    #: A delivery carrying one of these fields is a delivery report, not a citizen's SMS: ignored.
    ignore_if_present: list[str] = Field(default_factory=list)
    naive_timezone: str = "Asia/Jakarta"
    send_url: str | None = None
    send_auth: Literal["bearer", "hmac"] = "bearer"
    #: bearer: the token for `Authorization: Bearer`; hmac signs with `secret` in `signature_header`.
    send_token: SecretStr | None = None
    #: The field of the gateway's answer holding its id for the sent SMS.
    send_id_field: str = Field(default="id", min_length=1)

    @field_validator("api_base_url", "public_url", "send_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("expected an http(s) URL with a host, e.g. https://sms.example.id/send")
        return value

    @field_validator("signature_header", "token_header")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as Asia/Jakarta") from None
        return value

    @model_validator(mode="after")
    def _complete_for_its_mode(self) -> SmsSettings:
        other = _GENERIC_ONLY if self.mode == "twilio" else _TWILIO_ONLY
        stray = sorted(self.model_fields_set & other)
        if stray:
            raise ValueError(f"{', '.join(stray)} not used in mode {self.mode!r}; remove it or change mode")
        if self.mode == "twilio":
            if self.account_sid is None or self.auth_token is None:
                raise ValueError("mode twilio needs account_sid and auth_token (Twilio console, Account Info)")
        else:
            if self.secret is None or len(self.secret.get_secret_value()) < 16:
                raise ValueError("mode generic needs secret: the shared secret of 16+ characters set at the gateway")
            if self.send_url is not None and self.send_auth == "bearer" and self.send_token is None:
                raise ValueError("send_auth bearer needs send_token (the gateway's API token)")
        return self


class SmsAdapter(Adapter[SmsSettings]):
    channel_type: ClassVar[str] = "sms"
    settings_model = SmsSettings
    description = "SMS through Twilio (X-Twilio-Signature) or a generic gateway webhook (HMAC or token)"
    # X-Twilio-Signature is kept: it is a MAC of this very delivery, not a credential, and lets anyone
    # holding the auth token re-check the stored evidence. A generic gateway's token header is a
    # credential and is added per instance (its name is a setting).
    secret_headers: ClassVar[frozenset[str]] = frozenset({"x-sms-token"})
    media_hosts: ClassVar[frozenset[str]] = TWILIO_MEDIA_HOSTS
    acknowledge_receipt: ClassVar[bool] = True

    def __init__(self, *, settings: SmsSettings, context: AdapterContext) -> None:
        super().__init__(settings=settings, context=context)
        if settings.mode == "generic" and settings.auth == "token":
            # The header's name is configured; Kanal reads `secret_headers` from the instance.
            setattr(self, "secret_headers", frozenset({settings.token_header}) | type(self).secret_headers)  # noqa: B010

    # ------------------------------------------------------------------------------------- inbound

    def verify(self, request: RawRequest) -> None:
        if self.settings.mode == "twilio":
            self._verify_twilio(request)
        elif self.settings.auth == "hmac":
            self._verify_hmac(request)
        else:
            self._verify_token(request)

    def _verify_twilio(self, request: RawRequest) -> None:
        signature = request.header(twilio_signature.SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid("missing X-Twilio-Signature header; only Twilio's webhook may post here")
        try:
            params = twilio_signature.form_params(request.body)
        except ValueError:
            raise SignatureInvalid(
                "too many form fields for a Twilio webhook; only Twilio's webhook may post here"
            ) from None
        tokens = [t.get_secret_value() for t in [self.settings.auth_token, *self.settings.previous_auth_tokens] if t]
        if not twilio_signature.matches(signature, self.signed_url(request), params, tokens):
            raise SignatureInvalid(
                "X-Twilio-Signature does not match; check auth_token, and that public_url is exactly the webhook "
                "URL in the Twilio console (scheme, host, path and query string)"
            )

    def signed_url(self, request: RawRequest) -> str:
        """The URL Twilio signed: the public one, never the Host header a proxy handed on."""
        url = self.settings.public_url or self.context.inbound_url()
        _, _, query = request.url.partition("?")
        if query and "?" not in url:
            url = f"{url}?{query}"
        return url

    def _generic_secrets(self) -> list[bytes]:
        return [s.get_secret_value().encode() for s in [self.settings.secret, *self.settings.previous_secrets] if s]

    def _verify_hmac(self, request: RawRequest) -> None:
        header = self.settings.signature_header
        offered = (request.header(header) or "").strip()
        if not offered:
            raise SignatureInvalid(f"missing {header} header; sign the raw body with HMAC-SHA256 and the shared secret")
        if offered[:7].lower() == "sha256=":
            offered = offered[7:]
        candidate = offered.encode()
        matched = False
        for secret in self._generic_secrets():
            digest = hmac.new(secret, request.body, hashlib.sha256).digest()
            # Gateways send hex (either case) or base64; compare both without stopping early.
            matched |= hmac.compare_digest(digest.hex().encode(), candidate.lower())
            matched |= hmac.compare_digest(base64.b64encode(digest), candidate)
        if not matched:
            raise SignatureInvalid(
                f"{header} does not match the body; sign the exact bytes sent with the shared secret"
            )

    def _verify_token(self, request: RawRequest) -> None:
        header = self.settings.token_header
        offered = (request.header(header) or "").strip()
        if offered[:7].lower() == "bearer ":
            offered = offered[7:].strip()
        if not offered:
            raise SignatureInvalid(f"missing {header} header; send the shared token the channel is configured with")
        matched = False
        for secret in self._generic_secrets():
            matched |= hmac.compare_digest(secret, offered.encode())
        if not matched:
            raise SignatureInvalid(f"{header} is not this channel's token; check the token set at the gateway")

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        try:
            if self.settings.mode == "twilio":
                return [self._parse_twilio(request.body)]
            return [self._parse_generic(request)]
        except ValidationError as exc:
            raise PayloadRejected(_describe(exc), status_code=422) from None

    def _parse_twilio(self, body: bytes) -> InboundMessage:
        if not body.strip():
            raise PayloadRejected("empty body; this route takes Twilio's incoming-message webhook (form-encoded)")
        try:
            params = twilio_signature.form_params(body)
        except ValueError:
            raise PayloadRejected("too many form fields for a Twilio webhook") from None
        fields: dict[str, str] = {}
        for name, value in params:
            fields.setdefault(name, value)
        sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid") or ""
        if "MessageStatus" in fields and "Body" not in fields:
            raise PayloadIgnored(f"status callback ({fields['MessageStatus'][:40]}) for an SMS we sent")
        if not sid:
            raise PayloadRejected(
                "no MessageSid: this route takes Twilio's incoming-message webhook; point status callbacks "
                "elsewhere or leave them on",
                status_code=422,
            )
        number = self._sender_address(fields.get("From", ""))
        media = self._twilio_media(fields)
        text = fields.get("Body", "")
        if not text.strip() and not media:
            raise PayloadIgnored("an empty SMS: nothing to store")
        return InboundMessage(
            external_id=sid,
            text=text,
            sender=self._sender(number),
            media=media,
            assembly=Assembly(key=f"sms:{number}", window_seconds=self.settings.fold_window_seconds),
        )

    def _sender_address(self, raw: str) -> str:
        """The sender as the group key and identity: E.164 when it is a phone number, else as sent."""
        raw = raw.strip()
        if not raw:
            raise PayloadRejected(
                "no sender number (From); the provider must pass the citizen's number", status_code=422
            )
        if _NON_SMS_ADDRESS.match(raw):
            raise PayloadRejected(
                f"sender {raw[:60]!r} is not a phone number: this channel takes SMS; connect that channel to its own "
                "channel type",
                status_code=422,
            )
        if len(raw) > 40:
            raise PayloadRejected(
                "sender is longer than any phone number or sender id (40 characters)", status_code=422
            )
        number = e164(raw, self.settings.country_code) or raw
        own = self.settings.from_number
        if own and number == (e164(own, self.settings.country_code) or own):
            raise PayloadIgnored("our own message echoed back by the provider")
        return number

    @staticmethod
    def _sender(number: str) -> Sender:
        if number.startswith("+"):
            return Sender(id=number, phone=number)
        # A short code or an alphanumeric sender id (an operator, a bank): no number to answer.
        return Sender(id=number, handle=number)

    def _twilio_media(self, fields: Mapping[str, str]) -> list[MediaRef]:
        raw_count = fields.get("NumMedia", "0").strip() or "0"
        if len(raw_count) > 2 or not raw_count.isascii() or not raw_count.isdigit() or int(raw_count) > MAX_MEDIA:
            raise PayloadRejected(f"NumMedia must be a count from 0 to {MAX_MEDIA}", status_code=422)
        media = []
        for index in range(int(raw_count)):
            url = fields.get(f"MediaUrl{index}", "")
            if not is_http_url(url):
                raise PayloadRejected(f"MediaUrl{index} is missing or not an http(s) URL", status_code=422)
            media.append(
                MediaRef(
                    url=url,
                    content_type=fields.get(f"MediaContentType{index}") or None,
                    # The media sid (ME...) is the last path segment of Twilio's media URL.
                    platform_id=urlsplit(url).path.rstrip("/").rpartition("/")[2] or None,
                )
            )
        return media

    def _parse_generic(self, request: RawRequest) -> InboundMessage:
        document = _generic_document(request)
        mapping = self.settings.fields
        present = [name for name in self.settings.ignore_if_present if _pick(document, name) is not None]
        if present:
            raise PayloadIgnored(f"delivery report ({present[0]}), not a citizen's SMS")
        number = self._sender_address(_scalar(document, mapping.sender, required=True) or "")
        message_id = _scalar(document, mapping.message_id, required=True) or ""
        text = _pick(document, mapping.text)
        if not isinstance(text, str):
            raise PayloadRejected(f"field {mapping.text!r} (the SMS text) is missing or not a string", status_code=422)
        if not text.strip():
            raise PayloadIgnored("an empty SMS: nothing to store")
        sent_at = None
        if mapping.sent_at is not None:
            sent_at = _timestamp(
                _pick(document, mapping.sent_at), mapping.sent_at, ZoneInfo(self.settings.naive_timezone)
            )
        segment: dict[str, Any] = {}
        if mapping.concat_ref and mapping.concat_part and mapping.concat_total:
            concatenation = _concatenation(document, mapping.concat_ref, mapping.concat_part, mapping.concat_total)
            if concatenation is not None:
                reference, part, total = concatenation
                segment = {"segment": f"{number}:{reference}", "part": part, "total": total}
                # Gateways differ on whether each part has its own id; this is stable across redeliveries either way.
                message_id = f"{message_id}:{part}/{total}"
        return InboundMessage(
            external_id=message_id,
            text=text,
            sender=self._sender(number),
            sent_at=sent_at,
            assembly=Assembly(key=f"sms:{number}", window_seconds=self.settings.fold_window_seconds, **segment),
        )

    # ------------------------------------------------------------------------------ answers to Twilio

    def acknowledge(self, request: RawRequest, outcomes: list[StoredOutcome]) -> AdapterResponse:
        if self.settings.mode == "twilio":
            return AdapterResponse(200, EMPTY_TWIML, "text/xml")
        return super().acknowledge(request, outcomes)

    def ignored(self, request: RawRequest, reason: str) -> AdapterResponse:
        if self.settings.mode == "twilio":
            return AdapterResponse(200, EMPTY_TWIML, "text/xml")
        return super().ignored(request, reason)

    # ---------------------------------------------------------------------------------------- media

    def allowed_media_hosts(self) -> frozenset[str]:
        if self.settings.mode != "twilio":
            return frozenset()
        return self.media_hosts | hosts_of(self.settings.api_base_url)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Twilio media: GET from the API host with the account's credentials (needed when media HTTP auth is
        on); the API redirects to its CDN, and the credentials are not sent there."""
        if self.settings.mode != "twilio":
            raise MediaUnavailable("a generic SMS gateway carries no media")
        if not is_http_url(ref.url) or not host_allowed(ref.url, hosts_of(self.settings.api_base_url)):
            api_host = ", ".join(sorted(hosts_of(self.settings.api_base_url)))
            raise MediaUnavailable(f"not downloaded: the media URL is not on the Twilio API host ({api_host})")
        return await download(
            ref.url,
            allowed_hosts=self.allowed_media_hosts(),
            max_bytes=max_bytes,
            headers={"Authorization": self._twilio_basic_auth()},
        )

    def _twilio_basic_auth(self) -> str:
        token = self.settings.auth_token.get_secret_value() if self.settings.auth_token else ""
        pair = f"{self.settings.account_sid}:{token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    # -------------------------------------------------------------------------------------- replies

    async def send(self, reply: OutboundReply) -> str:
        """Send `reply.text` as one SMS body (the provider splits it into segments); return the provider's id."""
        recipient = reply.recipient.phone or reply.recipient.id or ""
        to = e164(recipient, self.settings.country_code)
        if to is None:
            raise ChannelUnavailable(
                f"cannot answer by SMS: {recipient[:40]!r} is not a phone number (a short code or sender name)",
                retryable=False,
            )
        body = sms_body(reply.text, self.settings.max_reply_chars)
        if self.settings.mode == "twilio":
            return await self._send_twilio(to, body)
        return await self._send_generic(to, body)

    async def _send_twilio(self, to: str, body: str) -> str:
        form = {"To": to, "Body": body}
        if self.settings.messaging_service_sid:
            form["MessagingServiceSid"] = self.settings.messaging_service_sid
        elif self.settings.from_number:
            form["From"] = self.settings.from_number
        else:
            raise NotImplementedError(
                f"channel {self.channel_id} has no from_number or messaging_service_sid: set one to answer by SMS"
            )
        url = f"{self.settings.api_base_url.rstrip('/')}/2010-04-01/Accounts/{self.settings.account_sid}/Messages.json"
        headers = {"Authorization": self._twilio_basic_auth(), "Accept": "application/json"}
        response = await self._post(url, data=form, headers=headers, who="Twilio")
        answer = _json_object(response)
        if response.status_code >= 400:
            code, message = answer.get("code"), str(answer.get("message", response.text[:300]))
            hint = " check account_sid and auth_token;" if response.status_code in (401, 403) else ""
            raise ChannelUnavailable(
                f"Twilio refused the SMS ({response.status_code}, error {code}: {message});{hint} "
                f"see {answer.get('more_info', 'https://www.twilio.com/docs/api/errors')}",
                retryable=False,
            )
        return str(answer.get("sid", ""))

    async def _send_generic(self, to: str, body: str) -> str:
        if self.settings.send_url is None:
            raise NotImplementedError(f"channel {self.channel_id} has no send_url: set one to answer by SMS")
        content = json.dumps({"to": to, "from": self.settings.from_number, "text": body}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.send_auth == "bearer" and self.settings.send_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.send_token.get_secret_value()}"
        elif self.settings.secret is not None:
            digest = hmac.new(self.settings.secret.get_secret_value().encode(), content, hashlib.sha256).hexdigest()
            headers[self.settings.signature_header] = digest
        response = await self._post(self.settings.send_url, content=content, headers=headers, who="the SMS gateway")
        if response.status_code >= 400:
            raise ChannelUnavailable(
                f"the SMS gateway refused the SMS ({response.status_code}): {response.text[:300]}", retryable=False
            )
        return str(_pick(_json_object(response), self.settings.send_id_field) or "")

    async def _post(self, url: str, *, headers: dict[str, str], who: str, **body: Any) -> httpx.Response:
        """POST and turn what may pass (network, 429, 5xx) into a retryable `ChannelUnavailable`."""
        try:
            async with httpx.AsyncClient(timeout=self.settings.reply_timeout_seconds) as http:
                response = await http.post(url, headers=headers, **body)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{who} unreachable ({type(exc).__name__}); will retry") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelUnavailable(
                f"{who} answered {response.status_code}; will retry",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        return response


# ------------------------------------------------------------------------------ generic payload reading


def _generic_document(request: RawRequest) -> dict[str, Any]:
    body = request.body
    if not body.strip():
        raise PayloadRejected("empty body; send the SMS as a form or one JSON object")
    content_type = (request.header("content-type") or "").lower()
    if "json" in content_type or body.lstrip()[:1] == b"{":
        try:
            document = json.loads(body)
        except ValueError as exc:  # also UnicodeDecodeError, and integers too long to convert
            raise PayloadRejected(f"body is not valid UTF-8 JSON ({exc}); send one JSON object") from None
        if not isinstance(document, dict):
            raise PayloadRejected("body must be one JSON object (one SMS), not a list or a scalar")
        return document
    try:
        params = twilio_signature.form_params(body)
    except ValueError:
        raise PayloadRejected("too many form fields for one SMS") from None
    form: dict[str, Any] = {}
    for name, value in params:
        form.setdefault(name, value)
    return form


def _pick(document: Mapping[str, Any], path: str) -> Any:
    """A field by name, or by dotted path into nested JSON objects ("message.from")."""
    if path in document:
        return document[path]
    current: Any = document
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return None
        current = current[step]
    return current


def _scalar(document: Mapping[str, Any], path: str, *, required: bool = False) -> str | None:
    """A text or whole-number field as text; None when absent (a 422 when `required`)."""
    value = _pick(document, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None and not required:
        return None
    raise PayloadRejected(f"field {path!r} is missing or not a text or a whole number", status_code=422)


def _timestamp(value: Any, path: str, zone: ZoneInfo) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 100_000_000_000 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit():
                return _timestamp(int(text), path, zone)
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    except (ValueError, OverflowError, OSError):
        pass
    raise PayloadRejected(f"field {path!r} is not an ISO 8601 time or Unix seconds", status_code=422)


def _concatenation(document: Mapping[str, Any], ref: str, part: str, total: str) -> tuple[str, int, int] | None:
    """(reference, part, total) of a concatenated SMS; None for a single SMS (no reference, or one part)."""
    reference, index_text, count_text = _scalar(document, ref), _scalar(document, part), _scalar(document, total)
    if reference is None and index_text is None and count_text is None:
        return None
    if reference is None or index_text is None or count_text is None:
        raise PayloadRejected(f"a concatenated SMS needs all of {ref!r}, {part!r} and {total!r}", status_code=422)
    if not all(len(n) <= 3 and n.isascii() and n.isdigit() and 1 <= int(n) <= 255 for n in (index_text, count_text)):
        raise PayloadRejected(f"{part!r} and {total!r} must be whole numbers from 1 to 255", status_code=422)
    index, count = int(index_text), int(count_text)
    if index > count:
        raise PayloadRejected(f"part {index} of {count}: {part!r} is larger than {total!r}", status_code=422)
    if count == 1:
        return None
    if len(reference) > 60:
        raise PayloadRejected(f"field {ref!r} is longer than a concatenation reference (60)", status_code=422)
    return reference, index, count


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _describe(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()]
    return "the SMS does not fit a message: " + "; ".join(problems)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [SmsAdapter]
