"""A fake Meta Graph API for Facebook Pages and Instagram on 127.0.0.1: what `facebook` and `instagram` answer through.

It speaks the documented endpoints those adapters use, with Meta's error shape
(`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`):

- `POST /{version}/{object-id}/comments` `{"message"}`: a comment under a post or comment -> `{"id"}`;
- `POST /{version}/{comment-id}/replies` `{"message"}`: an Instagram comment reply -> `{"id"}`;
- `POST /{version}/{page-or-ig-user-id}/messages` `{"recipient": {"id"}, "message": {"text"}, ...}`: the
  Send API -> `{"recipient_id", "message_id"}`;
- `POST /{version}/{ig-user-id}/mentions` `{"media_id", "comment_id"?, "message"}` -> `{"id"}`;
- `GET /media/{name}`: an attachment on the "CDN" (no token needed, as Meta's signed CDN links).

Graph requests must carry `Authorization: Bearer <access_token>` (400, code 190 otherwise, as Meta
answers). `fail_next` makes the next Graph requests fail (a 5xx, a 429 with `Retry-After`, or a
Graph error code in a 400), `delay` makes every answer slow. Every request is recorded in `calls`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "v21.0"
TINY_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@dataclass(frozen=True)
class GraphCall:
    """One request as the peer saw it."""

    method: str
    #: The path after the API version, e.g. `912345678901234_1187654321098765/comments`.
    path: str
    body: Any
    authorization: str | None
    #: What the peer answered.
    status: int


@dataclass(frozen=True)
class Failure:
    status: int
    code: int | None
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class MetaPagesPeer:
    """Use as a context manager; `graph_base_url` is what a channel's `graph_base_url` should be set to."""

    def __init__(self, *, access_token: str) -> None:
        self.access_token = access_token
        self.calls: list[GraphCall] = []
        #: Files served under `/media/<name>`: (bytes, content type).
        self.media: dict[str, tuple[bytes, str]] = {"photo.jpg": (TINY_JPEG, "image/jpeg")}
        self.delay = 0.0
        self._failures: deque[Failure] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval: a test's teardown waits for it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="meta-pages-peer", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graph_base_url(self) -> str:
        return f"{self.url}/{API_VERSION}"

    def media_url(self, name: str) -> str:
        return f"{self.url}/media/{name}"

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        code: int | None = None,
        message: str = "An unexpected error has occurred. Please retry your request later.",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` Graph requests with `status` and a Graph error (`code`, `message`)."""
        with self._lock:
            self._failures.extend([Failure(status, code, message, dict(headers or {}))] * times)

    def posts_to(self, suffix: str) -> list[GraphCall]:
        """The accepted POSTs whose path ends with `suffix` (`/comments`, `/messages`, ...)."""
        return [c for c in self.calls if c.method == "POST" and c.path.endswith(suffix) and c.status == 200]

    def __enter__(self) -> MetaPagesPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------------------ serving

    def _next_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _answer_graph(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        object_id, _, edge = path.partition("/")
        if not isinstance(body, dict):
            return 400, _error(100, "(#100) The request body must be a JSON object")
        number = next(self._ids)
        if edge in ("comments", "replies"):
            if not isinstance(body.get("message"), str) or not body["message"]:
                return 400, _error(100, "(#100) Missing message")
            return 200, {"id": f"{object_id.split('_')[0]}_{9_000_000_000 + number}"}
        if edge == "messages":
            recipient = (body.get("recipient") or {}).get("id")
            text = (body.get("message") or {}).get("text")
            if not recipient or not text:
                return 400, _error(100, "(#100) The parameter recipient is required")
            if body.get("messaging_type") == "MESSAGE_TAG" and not body.get("tag"):
                return 400, _error(100, "(#100) Tag is required for MESSAGE_TAG messaging type")
            return 200, {"recipient_id": recipient, "message_id": f"m_peer{number:012d}"}
        if edge == "mentions":
            if not body.get("media_id") or not body.get("message"):
                return 400, _error(100, "(#100) media_id and message are required")
            return 200, {"id": str(18_000_000_000_000_000 + number)}
        return 400, _error(2500, f"Unknown path components: /{edge}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

            def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers or {})

            def do_GET(self) -> None:
                if peer.delay:
                    time.sleep(peer.delay)
                path = urlsplit(self.path).path
                name = path.removeprefix("/media/")
                found = path.startswith("/media/") and name in peer.media
                peer.calls.append(
                    GraphCall("GET", path, None, self.headers.get("Authorization"), 200 if found else 404)
                )
                if found:
                    data, content_type = peer.media[name]
                    self._send(200, data, content_type, {})
                else:
                    self._json(404, _error(100, "Unsupported get request."))

            def do_POST(self) -> None:
                if peer.delay:
                    time.sleep(peer.delay)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path.removeprefix(f"/{API_VERSION}/")
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("latin-1")
                authorization = self.headers.get("Authorization")
                headers: dict[str, str] = {}
                if authorization != f"Bearer {peer.access_token}":
                    status, answer = 400, _error(190, "Invalid OAuth access token - Cannot parse access token")
                elif (failure := peer._next_failure()) is not None:
                    status, answer, headers = failure.status, _error(failure.code, failure.message), failure.headers
                else:
                    status, answer = peer._answer_graph(path, body)
                peer.calls.append(GraphCall("POST", path, body, authorization, status))
                self._json(status, answer, headers)

        return Handler


def _error(code: int | None, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "fbtrace_id": "AkanalPeerTrace"}
    if code is not None:
        error["code"] = code
    return {"error": error}
