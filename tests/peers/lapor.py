"""A fake SP4N-LAPOR! integration API on 127.0.0.1, for the `lapor` adapter's tests.

LAPOR!'s agency API is documented only to registered developers, so this peer speaks the shape the
adapter's default settings describe (tests/fixtures/lapor/README.md):

    GET  /api/v1/complaints?updated_since=<ISO time>&page=<n>   (credential header required)
      -> {"status": "success", "data": {"complaints": [...], "pagination": {"page": n, "next": <relative URL>}}}
    POST /api/v1/complaints/<id>/status   {"status", "message", "note", "agency", "changed_at", "ticket"}
      -> {"id": "upd-<n>", "complaint_id": <id>, "status": <label>}
    GET  /files/<name>   an attachment (credential header required)

`updated_since` is inclusive (items updated at that instant or later), items come oldest first. The
peer records every request, can fail the next N requests (5xx, or 429 with Retry-After), fail until
told otherwise, answer slowly, and keeps the status pushes it accepted.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lapor"
WIB = timezone(timedelta(hours=7))
TOKEN = "lapor-test-token-0123456789abcdef"
INSTITUTION = "pemprov-dki-jakarta"
_COMPLAINTS = ["api", "v1", "complaints"]
LIST_PATH = "/api/v1/complaints"
#: What an attachment download returns: the start and end markers of a JPEG around filler bytes.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\xff\xd9"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@dataclass
class PeerRequest:
    method: str
    path: str
    query: dict[str, str]
    #: Whether the credential header was right.
    authorised: bool
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class StatusPush:
    method: str
    complaint_id: str
    body: dict[str, Any]


class LaporPeer:
    """The fake LAPOR! API; use as a context manager. `endpoint` is the complaint list's URL."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer ",
        page_size: int = 2,
    ) -> None:
        self._lock = threading.Lock()
        self.token = token
        self.auth_header = auth_header
        self.auth_scheme = auth_scheme
        self.page_size = page_size
        self.complaints: list[dict[str, Any]] = []
        self.requests: list[PeerRequest] = []
        self.status_pushes: list[StatusPush] = []
        #: Answer every request with this status until set back to None.
        self.fail_status: int | None = None
        self._fail_next: list[tuple[int, int | None, str | None]] = []
        #: Seconds to wait before each answer.
        self.delay = 0.0
        self._next_id = 4_810_000
        self._clock = datetime(2026, 11, 23, 8, 0, tzinfo=WIB)
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                peer._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                peer._handle(self)

            def do_PUT(self) -> None:  # noqa: N802
                peer._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.endpoint = f"{self.base_url}{LIST_PATH}"
        self.status_url = f"{self.base_url}/api/v1/complaints/{{external_id}}/status"
        self._thread = threading.Thread(target=self._server.serve_forever, name="lapor-peer", daemon=True)

    # -- test controls -----------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The `lapor` channel settings pointing at this peer (as a deployment would write them)."""
        settings: dict[str, Any] = {
            "endpoint": self.endpoint,
            "auth_header": self.auth_header,
            "auth_value": f"{self.auth_scheme}{self.token}",
            "cursor_param": "updated_since",
            "cursor_field": "updated_at",
            "items_path": "data.complaints",
            "next_page_path": "data.pagination.next",
            "filter": {"field": "disposition.institution_id", "values": [INSTITUTION]},
            "status_url": self.status_url,
            "timeout_seconds": 5,
        }
        settings.update(overrides)
        return settings

    def add(self, complaint: dict[str, Any], *, same_time: bool = False) -> dict[str, Any]:
        """Publish `complaint` (a fixture item) under a new id, updated now (or at the last item's time)."""
        item = copy.deepcopy(complaint)
        with self._lock:
            self._next_id += 1
            if not same_time:
                self._clock += timedelta(minutes=1)
            item["id"] = self._next_id
            item["tracking_id"] = str(self._next_id)
            item.setdefault("created_at", self._clock.isoformat())
            item["updated_at"] = self._clock.isoformat()
            self.complaints.append(item)
        return item

    def add_fixture(self, name: str, *, same_time: bool = False, **changes: Any) -> dict[str, Any]:
        return self.add({**fixture(name), **changes}, same_time=same_time)

    def fail_next(
        self, count: int, *, status: int = 503, retry_after: int | None = None, path: str | None = LIST_PATH
    ) -> None:
        """Answer the next `count` requests to `path` (None: to any path) with `status`, and Retry-After if given."""
        with self._lock:
            self._fail_next += [(status, retry_after, path)] * count

    def list_requests(self) -> list[PeerRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == LIST_PATH]

    # -- serving -----------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        authorised = handler.headers.get(self.auth_header) == f"{self.auth_scheme}{self.token}"
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            failure: tuple[int, int | None] | None = None
            for n, (status, retry_after, only) in enumerate(self._fail_next):
                if only is None or only == parts.path:
                    failure = (status, retry_after)
                    del self._fail_next[n]
                    break
            if failure is None and self.fail_status is not None:
                failure = (self.fail_status, None)
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            answer: tuple[int, Any, dict[str, str]] = (status, {"status": "error", "message": "unavailable"}, headers)
        elif not authorised:
            answer = (401, {"status": "error", "message": "invalid token"}, {})
        else:
            answer = self._route(handler.command, parts.path, query, body)
        status, payload, headers = answer
        with self._lock:
            self.requests.append(PeerRequest(handler.command, parts.path, query, authorised, status))
        raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path == LIST_PATH:
            return self._list(query)
        if method == "GET" and path.startswith("/files/"):
            return 200, JPEG, {"Content-Type": "image/jpeg"}
        segments = path.strip("/").split("/")
        if method in ("POST", "PUT") and len(segments) == 5 and segments[:3] + segments[4:] == [*_COMPLAINTS, "status"]:
            return self._push(method, segments[3], body)
        return 404, {"status": "error", "message": f"no route {method} {path}"}, {}

    def _list(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        since_text = query.get("updated_since")
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
            page = int(query.get("page", "1"))
        except ValueError:
            return 400, {"status": "error", "message": "bad updated_since or page"}, {}
        with self._lock:
            items = [
                copy.deepcopy(c)
                for c in self.complaints
                if since is None or datetime.fromisoformat(c["updated_at"]) >= since
            ]
        items.sort(key=lambda c: (datetime.fromisoformat(c["updated_at"]), c["id"]))
        start = (page - 1) * self.page_size
        chunk = items[start : start + self.page_size]
        following = None
        if start + self.page_size < len(items):
            params = {**query, "page": str(page + 1)}
            following = f"/api/v1/complaints?{urlencode(params)}"
        pagination = {"page": page, "next": following}
        return 200, {"status": "success", "data": {"complaints": chunk, "pagination": pagination}}, {}

    def _push(self, method: str, complaint_id: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            known = any(str(c["id"]) == complaint_id for c in self.complaints)
        if not known:
            return 404, {"status": "error", "message": f"complaint {complaint_id} not found"}, {}
        try:
            document = json.loads(body)
        except ValueError:
            return 400, {"status": "error", "message": "body is not JSON"}, {}
        with self._lock:
            self.status_pushes.append(StatusPush(method, complaint_id, document))
            number = len(self.status_pushes)
        return 200, {"id": f"upd-{number}", "complaint_id": complaint_id, "status": document.get("status")}, {}

    def __enter__(self) -> LaporPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
