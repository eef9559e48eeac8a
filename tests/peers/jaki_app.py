"""A fake JAKI backend on 127.0.0.1: it signs reports the way the app's backend does, takes Kanal's status
callbacks (checking their signature), and serves report photos.

JAKI has no public API documentation; this peer follows the intake contract agreed for Kanal (see
docs/channels/jaki.md): a timestamped HMAC-SHA256 signature `t=<unix>,v1=<hex of "<t>.<raw body>">` in the
configured header, both ways. The signature check here is written apart from adapters.signing so a
callback the peer accepts was signed correctly, not merely signed the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


def jaki_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value the JAKI backend sends with `body`."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def signature_valid(secret: str, header: str | None, body: bytes, *, tolerance_seconds: int = 300) -> bool:
    """Whether `header` signs `body` with `secret`, stamped within `tolerance_seconds` of now."""
    if not header:
        return False
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    stamp, offered = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance_seconds:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, offered)


@dataclass(frozen=True)
class StatusCallback:
    """One status callback Kanal posted."""

    headers: dict[str, str]
    body: bytes
    signed: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class JakiApp:
    """Use as a context manager; `status_url` is what the channel's `status_url` setting points at."""

    secret: str
    signature_header: str = "x-kanal-signature"
    delay_seconds: float = 0.0
    callbacks: list[StatusCallback] = field(default_factory=list)
    _failures: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    _photos: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> JakiApp:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                app._photo(self)

            def do_POST(self) -> None:  # noqa: N802
                app._status(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="jaki-app-peer", daemon=True)
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
    def status_url(self) -> str:
        return f"{self.url}/api/v1/laporan/status"

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Headers for a report delivery from the app, signed now (or at `timestamp`)."""
        return {"Content-Type": "application/json", self.signature_header: jaki_signature(self.secret, body, timestamp)}

    def add_photo(self, name: str, content_type: str, data: bytes) -> str:
        """Serve a report photo; returns its URL on this peer."""
        self._photos[name] = (content_type, data)
        return f"{self.url}/foto/{name}"

    def fail_next(self, status: int, *, count: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` status callbacks with `status` (and `headers`, e.g. Retry-After)."""
        for _ in range(count):
            self._failures.append((status, headers or {}))

    def _status(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        signed = signature_valid(self.secret, headers.get(self.signature_header.lower()), body)
        with self._lock:
            self.callbacks.append(StatusCallback(headers, body, signed))
            failure = self._failures.popleft() if self._failures else None
            number = len(self.callbacks)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if failure is not None:
            self._answer(request, failure[0], b'{"message": "sedang gangguan"}', headers=failure[1])
        elif urlsplit(request.path).path != urlsplit(self.status_url).path:
            self._answer(request, 404, b'{"message": "not found"}')
        elif not signed:
            self._answer(request, 401, b'{"message": "invalid signature"}')
        else:
            self._answer(request, 200, json.dumps({"id": f"cb-{number}", "received": True}).encode())

    def _photo(self, request: BaseHTTPRequestHandler) -> None:
        name = urlsplit(request.path).path.rpartition("/")[2]
        if name not in self._photos:
            self._answer(request, 404, b"")
            return
        content_type, data = self._photos[name]
        self._answer(request, 200, data, content_type=content_type)

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
