"""A fake SMS provider on 127.0.0.1: Twilio's Messages REST API and media, and a generic gateway's send endpoint.

It speaks what Twilio documents: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form `To`, `From`
or `MessagingServiceSid`, `Body`; HTTP basic auth with the account SID and auth token; `201` with the
Message resource, or Twilio's error document `{code, message, more_info, status}`), and media at
`/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}` redirecting to a short-lived
CDN URL. The generic gateway takes `POST /send` with JSON `{to, from, text}` and a bearer token or a hex
HMAC-SHA256 of the body. Everything received is recorded; failures are served on demand.

`twilio_signature` signs a webhook as Twilio does, written apart from the adapter's own code so a test
signed here checks the adapter rather than agreeing with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2010-04-01"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """`X-Twilio-Signature` for `params` POSTed to `url`: base64 HMAC-SHA1 of the URL + sorted name/value pairs."""
    pairs = sorted(params)  # by name, then value: what Twilio's helper libraries do for repeated names
    payload = url + "".join(f"{name}{value}" for name, value in pairs)
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


@dataclass(frozen=True)
class Received:
    """One request the provider answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class SmsProvider:
    """Use as a context manager; `url` is the base URL to configure as `api_base_url` (Twilio mode)."""

    account_sid: str
    auth_token: str
    #: Generic gateway: the bearer token, or the secret its HMAC header is checked with.
    send_token: str | None = None
    send_secret: str | None = None
    signature_header: str = "x-sms-signature"
    #: Seconds to wait before answering anything (a slow provider).
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    _failures: deque[_Failure] = field(default_factory=deque)
    _media: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> SmsProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                provider._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                provider._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sms-provider-peer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def send_url(self) -> str:
        return f"{self.url}/send"

    # ------------------------------------------------------------------------------------ controls

    def fail_next(
        self, status: int, *, count: int = 1, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        """Answer the next `count` requests with `status` (and `headers`, e.g. Retry-After), whatever they ask."""
        content = json.dumps(body).encode() if body is not None else b'{"message": "provider failure"}'
        for _ in range(count):
            self._failures.append(_Failure(status, headers or {}, content))

    def add_media(self, message_sid: str, media_sid: str, content_type: str, data: bytes) -> str:
        """Store a photo as Twilio holds an MMS's media; returns its MediaUrl (on this peer)."""
        self._media[media_sid] = (content_type, data)
        return f"{self.url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    def sent(self) -> list[Received]:
        """The send requests received (Twilio's Messages.json and the generic /send), oldest first."""
        return [r for r in self.received if r.method == "POST"]

    # ----------------------------------------------------------------------------------- protocol

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        received = Received(request.command, request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self.received.append(received)
            failure = self._failures.popleft() if self._failures else None
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if failure is not None:
            self._answer(request, failure.status, failure.body, headers=failure.headers)
            return
        path = urlsplit(request.path).path
        parts = path.strip("/").split("/")
        if request.command == "POST" and path == "/send":
            self._generic_send(request, received)
        elif request.command == "POST" and parts[:2] == [API_VERSION, "Accounts"] and parts[3:] == ["Messages.json"]:
            self._twilio_send(request, received, parts[2])
        elif request.command == "GET" and parts[:2] == [API_VERSION, "Accounts"] and len(parts) == 7:
            self._twilio_media(request, received, parts[6])
        elif request.command == "GET" and parts[0] == "cdn" and len(parts) == 2:
            self._cdn(request, parts[1])
        else:
            self._twilio_error(request, 404, 20404, "The requested resource was not found")

    def _authorised(self, received: Received, account_sid: str) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account_sid == self.account_sid and received.headers.get("authorization") == expected

    def _twilio_send(self, request: BaseHTTPRequestHandler, received: Received, account_sid: str) -> None:
        if not self._authorised(received, account_sid):
            self._twilio_error(request, 401, 20003, "Authentication Error - invalid username")
            return
        form = received.form()
        to, sender = form.get("To", ""), form.get("From") or form.get("MessagingServiceSid")
        if not to.startswith("+") or not to[1:].isdigit():
            self._twilio_error(request, 400, 21211, f"Invalid 'To' Phone Number: {to}")
            return
        if not sender or "Body" not in form:
            self._twilio_error(request, 400, 21604, "A 'From' phone number and a 'Body' are required.")
            return
        sid = "SM" + uuid.uuid4().hex
        body = form["Body"]
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": str(1 if len(body) <= 160 else -(-len(body) // 153)),
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "date_created": formatdate(usegmt=True),
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self._answer(request, 201, json.dumps(resource).encode())

    def _twilio_media(self, request: BaseHTTPRequestHandler, received: Received, media_sid: str) -> None:
        if not self._authorised(received, received.path.split("/")[3]):
            self._twilio_error(request, 401, 20003, "Authenticate")
            return
        if media_sid not in self._media:
            self._twilio_error(request, 404, 20404, "The requested resource was not found")
            return
        # Media with HTTP auth on redirects to a short-lived CDN URL.
        self._answer(request, 307, b"", headers={"Location": f"/cdn/{media_sid}?Expires={int(time.time()) + 14400}"})

    def _cdn(self, request: BaseHTTPRequestHandler, media_sid: str) -> None:
        key = urlsplit(media_sid).path
        if key not in self._media:
            self._answer(request, 404, b"")
            return
        content_type, data = self._media[key]
        self._answer(request, 200, data, content_type=content_type)

    def _generic_send(self, request: BaseHTTPRequestHandler, received: Received) -> None:
        authorised = False
        if self.send_token is not None:
            authorised = received.headers.get("authorization") == f"Bearer {self.send_token}"
        elif self.send_secret is not None:
            digest = hmac.new(self.send_secret.encode(), received.body, hashlib.sha256).hexdigest()
            authorised = hmac.compare_digest(received.headers.get(self.signature_header, ""), digest)
        if not authorised:
            self._answer(request, 401, b'{"error": "unauthorised"}')
            return
        try:
            message = received.json()
        except ValueError:
            self._answer(request, 400, b'{"error": "expected JSON"}')
            return
        if not isinstance(message, dict) or not {"to", "text"} <= message.keys():
            self._answer(request, 422, b'{"error": "to and text are required"}')
            return
        self._answer(request, 200, json.dumps({"id": f"gw-{uuid.uuid4().hex[:12]}", "status": "accepted"}).encode())

    def _twilio_error(self, request: BaseHTTPRequestHandler, status: int, code: int, message: str) -> None:
        document = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        self._answer(request, status, json.dumps(document).encode())

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)
