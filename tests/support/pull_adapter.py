"""A pull channel for tests: `test_pull` reads a JSON feed (`GET <feed_url>?since=<cursor>`) over loopback.

The feed answers `{"items": [{"id": 3, "text": "..."}], "cursor": "3"}` with the items after `since`.
`FeedServer` is such a feed, served from a thread, that can be told to fail or to answer slowly.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters import hookimpl
from adapters.contract import Adapter, ChannelSettings, FetchResult, InboundMessage, RawRequest, Sender
from adapters.errors import ChannelUnavailable, PayloadRejected


class PullSettings(ChannelSettings):
    feed_url: str
    timeout_seconds: float = Field(default=5.0, gt=0)
    #: Sent as a bearer token; never appears in errors, logs or /healthz.
    token: str | None = None


class _FeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    text: str
    sender: str | None = None


class _FeedPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[_FeedItem]
    cursor: str | None


class PullAdapter(Adapter[PullSettings]):
    channel_type: ClassVar[str] = "test_pull"
    settings_model: ClassVar[type[ChannelSettings]] = PullSettings
    pulls = True

    def verify(self, request: RawRequest) -> None:
        """Nothing is pushed to a pull channel; `parse` refuses whatever arrives."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        raise PayloadRejected("this channel is pulled, not pushed to", status_code=405)

    async def fetch(self, cursor: str | None) -> FetchResult:
        headers = {"Authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}
        params = {"since": cursor} if cursor is not None else {}
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout_seconds) as client:
                response = await client.get(self.settings.feed_url, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ChannelUnavailable(f"feed unreachable ({type(exc).__name__})") from exc
        if response.status_code in (401, 403):
            raise ChannelUnavailable(f"feed refused the credentials ({response.status_code})", retryable=False)
        if response.status_code >= 500 or response.status_code == 429:
            raise ChannelUnavailable(f"feed answered {response.status_code}")
        response.raise_for_status()
        page = _FeedPage.model_validate_json(response.content)
        messages = [
            InboundMessage(
                external_id=f"feed-{item.id}",
                text=item.text,
                sender=Sender(id=item.sender) if item.sender else None,
            )
            for item in page.items
        ]
        return FetchResult(messages=messages, cursor=page.cursor)


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [PullAdapter]


class FeedServer:
    """The feed `PullAdapter` reads, on 127.0.0.1, recording every request it answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[dict[str, Any]] = []
        #: Answer every request with this status (500: an outage, 401: revoked credentials); None: serve.
        self.fail_status: int | None = None
        #: Seconds each answer takes, so overlapping polls would overlap here.
        self.delay = 0.0
        #: Serve this many items before `since` again, as a feed that rescans a window does.
        self.overlap = 0
        #: (monotonic time, since, status) of each request, in arrival order.
        self.requests: list[tuple[float, str | None, int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                feed._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/feed"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-feed", daemon=True)

    def add(self, *texts: str) -> None:
        with self._lock:
            for text in texts:
                self.items.append({"id": len(self.items) + 1, "text": text})

    def since_values(self) -> list[str | None]:
        with self._lock:
            return [since for _, since, _ in self.requests]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        since = parse_qs(urlsplit(handler.path).query).get("since", [None])[0]
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            status = self.fail_status or 200
            start = max(0, int(since or 0) - self.overlap)
            items = list(self.items[start:])
        try:
            time.sleep(self.delay)
            if status == 200:
                cursor = str(items[-1]["id"]) if items else since
                body = json.dumps({"items": items, "cursor": cursor}).encode()
            else:
                body = b'{"error": "unavailable"}'
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.requests.append((time.monotonic(), since, status))

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
