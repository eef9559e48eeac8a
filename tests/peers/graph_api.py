"""A fake Meta Graph API for the WhatsApp Cloud API, on 127.0.0.1: what the `whatsapp` adapter talks to.

It speaks the documented endpoints the adapter uses, with Meta's error shape
(`{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`):

- `POST /{version}/{phone_number_id}/messages`: sends a message; keeps the body in `sent` and answers
  `{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}`.
- `GET /{version}/{media_id}`: the media's metadata and a short-lived download URL (`add_media`).
- `GET /download/{media_id}`: the file itself; like Meta's lookaside host, only with the bearer token.

Every request must carry `Authorization: Bearer <access_token>` (401, code 190 otherwise). `fail_next`
makes the next requests fail (429 or 5xx, or a Graph error code such as 130429 or 131047), and `delay`
makes every answer slow.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "v21.0"


@dataclass
class MediaFile:
    data: bytes
    mime_type: str
    #: The URL the metadata names; None: this peer's own download route.
    url: str | None = None
    #: What the metadata claims (Meta sends it as a string); None: the real size.
    file_size: str | None = None


@dataclass(frozen=True)
class Failure:
    status: int
    code: int | None
    message: str
    retry_after: str | None


class GraphApiPeer:
    """Use as a context manager; `base_url` is what a channel's `graph_base_url` should be set to."""

    def __init__(self, *, access_token: str, phone_number_id: str) -> None:
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        #: Bodies of accepted `messages` requests, in order.
        self.sent: list[dict[str, Any]] = []
        #: Media ids whose file was downloaded.
        self.downloads: list[str] = []
        #: Every request as (method, path, whether it carried the right bearer token).
        self.requests: list[tuple[str, str, bool]] = []
        self.media: dict[str, MediaFile] = {}
        #: Seconds to wait before every answer.
        self.delay = 0.0
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-api-peer", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/{API_VERSION}"

    def add_media(self, media_id: str, data: bytes, mime_type: str = "image/jpeg", **overrides: Any) -> None:
        self.media[media_id] = MediaFile(data, mime_type, **overrides)

    def fail_next(
        self,
        status: int,
        *,
        code: int | None = None,
        message: str = "Service temporarily unavailable",
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests get `status` with a Graph error body (and Retry-After, if given)."""
        with self._lock:
            self._failures.extend([Failure(status, code, message, retry_after)] * times)

    def _next_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def __enter__(self) -> GraphApiPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _error(code: int | None, message: str, kind: str = "OAuthException") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "fbtrace_id": "AbCdEfGhIjKlMnOp"}
    if code is not None:
        error["code"] = code
        error["error_data"] = {"messaging_product": "whatsapp", "details": message}
    return {"error": error}


def _handler(peer: GraphApiPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            self._answer_bytes(status, json.dumps(payload).encode(), "application/json", headers)

        def _answer_bytes(
            self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _admitted(self) -> bool:
            """Record the request; answer it here (and return False) when it is refused or made to fail."""
            path = urlsplit(self.path).path
            authorized = self.headers.get("Authorization") == f"Bearer {peer.access_token}"
            peer.requests.append((self.command, path, authorized))
            if peer.delay:
                time.sleep(peer.delay)
            if not authorized:
                self._answer(401, _error(190, "Invalid OAuth access token - Cannot parse access token"))
                return False
            failure = peer._next_failure()
            if failure is not None:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
                self._answer(failure.status, _error(failure.code, failure.message), headers)
                return False
            return True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._admitted():
                return
            if urlsplit(self.path).path != f"/{API_VERSION}/{peer.phone_number_id}/messages":
                self._answer(400, _error(100, "Unsupported post request.", "GraphMethodException"))
                return
            try:
                message = json.loads(body)
            except ValueError:
                self._answer(400, _error(100, "Invalid parameter"))
                return
            recipient = message.get("to") or message.get("recipient")
            kind = message.get("type")
            if message.get("messaging_product") != "whatsapp" or not recipient or kind not in message:
                self._answer(400, _error(100, "Invalid parameter"))
                return
            peer.sent.append(message)
            wamid = f"wamid.peer{len(peer.sent):04d}"
            self._answer(
                200,
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": recipient, "wa_id": recipient}],
                    "messages": [{"id": wamid}],
                },
            )

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._admitted():
                return
            parts = urlsplit(self.path).path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "download" and parts[1] in peer.media:
                peer.downloads.append(parts[1])
                media = peer.media[parts[1]]
                self._answer_bytes(200, media.data, media.mime_type)
                return
            if len(parts) == 2 and parts[0] == API_VERSION and parts[1] in peer.media:
                media = peer.media[parts[1]]
                self._answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "url": media.url or f"{peer.url}/download/{parts[1]}",
                        "mime_type": media.mime_type,
                        "sha256": "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3",
                        "file_size": media.file_size or str(len(media.data)),
                        "id": parts[1],
                    },
                )
                return
            self._answer(
                400,
                _error(
                    100, "Unsupported get request. Object does not exist or cannot be loaded.", "GraphMethodException"
                ),
            )

    return Handler
