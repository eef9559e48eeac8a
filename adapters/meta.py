"""What the Meta channels (WhatsApp Cloud API, Facebook Page, Instagram) share: webhook security.

Meta verifies a callback URL once with `GET ?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`
and expects the challenge echoed as plain text. Every event is then a `POST` signed with the app secret:
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`. The signature has no timestamp, so a
replayed delivery verifies; the inbox recognises it by the platform's message id instead.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import Field, SecretStr

from adapters.contract import AdapterResponse, ChannelSettings, RawRequest
from adapters.errors import SignatureInvalid

SIGNATURE_HEADER = "x-hub-signature-256"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com/v21.0"
#: Where Meta serves webhook attachments and media downloads.
MEDIA_HOSTS = frozenset({"graph.facebook.com", "lookaside.fbsbx.com", "fbcdn.net", "cdninstagram.com"})


class MetaSettings(ChannelSettings):
    """Settings every Meta channel has: the app secret, the verify token and the Graph API."""

    #: The Meta app's secret: what X-Hub-Signature-256 is computed with.
    app_secret: SecretStr = Field(min_length=8)
    #: Chosen by us and typed into the app dashboard; Meta echoes it in the GET verification.
    verify_token: SecretStr = Field(min_length=8)
    #: A (system user) access token with the channel's messaging permission, for replies and media.
    access_token: SecretStr | None = None
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


def sign(app_secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends for `body` (used by tests and replay tools)."""
    return "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()


def verify_signature(request: RawRequest, app_secret: SecretStr) -> None:
    """Check X-Hub-Signature-256 over the raw body, in constant time; raise `SignatureInvalid`."""
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise SignatureInvalid("missing X-Hub-Signature-256; Meta signs every delivery with the app secret")
    scheme, _, given = header.strip().partition("=")
    if scheme.lower() != "sha256" or not given:
        raise SignatureInvalid("X-Hub-Signature-256 must read sha256=<hex digest>")
    expected = sign(app_secret.get_secret_value().encode(), request.body).partition("=")[2]
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise SignatureInvalid("X-Hub-Signature-256 does not match the body; check the channel's app_secret")


def answer_challenge(request: RawRequest, verify_token: SecretStr) -> AdapterResponse:
    """Answer Meta's subscription check: echo `hub.challenge` when the token is ours, 403 otherwise."""
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    if mode != "subscribe" or not challenge:
        return AdapterResponse.json(
            {"detail": "expected hub.mode=subscribe with hub.verify_token and hub.challenge (Meta's verification)"},
            400,
        )
    if not hmac.compare_digest(token.encode(), verify_token.get_secret_value().encode()):
        return AdapterResponse.json({"detail": "hub.verify_token does not match this channel's verify_token"}, 403)
    # Echoed as plain text, and only digits and letters, so the answer cannot carry markup.
    if not challenge.isalnum() or len(challenge) > 200:
        return AdapterResponse.json({"detail": "hub.challenge must be a short alphanumeric string"}, 400)
    return AdapterResponse(200, challenge.encode(), "text/plain; charset=utf-8")
