"""News feeds on 127.0.0.1, for the `news` adapter's tests: fixture files or live feeds, with conditional GET.

A feed is either a fixed body (a fixture file: RSS 2.0, Atom, broken XML, an HTML page) or a list of
articles rendered as RSS 2.0 or Atom at each request, so a test can publish an article and see it on
the next poll. Every feed answers `ETag` and `Last-Modified` and honours `If-None-Match` /
`If-Modified-Since` with 304 (RFC 9110). The peer records each request and can fail on demand: every
feed, one feed, or the next N requests, with any status (429 with Retry-After too).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "news"
#: What `/img/<anything>` answers: an article's photo.
IMAGE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


@dataclass
class Article:
    title: str
    link: str | None
    summary: str
    published: datetime
    guid: str | None = None
    image: str | None = None


@dataclass
class Feed:
    name: str
    kind: Literal["rss", "atom", "fixed"]
    title: str
    articles: list[Article] = field(default_factory=list)
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    changed_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    fail_status: int | None = None


@dataclass
class FeedRequest:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


class FeedsPeer:
    """Feeds served from a thread; use as a context manager. `url(name)` is a feed's address."""

    def __init__(self, *, send_etag: bool = True, send_last_modified: bool = True) -> None:
        self._lock = threading.Lock()
        self.feeds: dict[str, Feed] = {}
        self.requests: list[FeedRequest] = []
        self.send_etag = send_etag
        self.send_last_modified = send_last_modified
        #: Every feed answers this status until set back to None.
        self.fail_status: int | None = None
        self._fail_next: list[tuple[int, int | None]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                peer._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="feeds-peer", daemon=True)

    # -- test controls -----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"{self.base_url}/feeds/{name}"

    def add_fixture(self, name: str, fixture: str, content_type: str | None = None) -> str:
        """Serve the fixture file as feed `name`; returns its URL."""
        kind = content_type or ("application/atom+xml" if fixture.endswith(".atom.xml") else "application/rss+xml")
        return self.add_body(name, (FIXTURES / fixture).read_bytes(), content_type=kind)

    def add_body(self, name: str, body: bytes, *, content_type: str = "application/rss+xml") -> str:
        with self._lock:
            self.feeds[name] = Feed(name, "fixed", name, body=body, content_type=content_type)
        return self.url(name)

    def add_feed(self, name: str, kind: Literal["rss", "atom"] = "rss", title: str | None = None) -> str:
        """An empty live feed; `publish` adds articles to it."""
        content_type = "application/atom+xml" if kind == "atom" else "application/rss+xml; charset=utf-8"
        with self._lock:
            self.feeds[name] = Feed(name, kind, title or f"Berita {name}", content_type=content_type)
        return self.url(name)

    def publish(self, name: str, article: Article) -> None:
        with self._lock:
            feed = self.feeds[name]
            feed.articles.append(article)
            feed.changed_at = _later(feed.changed_at)

    def replace_body(self, name: str, body: bytes) -> None:
        with self._lock:
            feed = self.feeds[name]
            feed.body = body
            feed.changed_at = _later(feed.changed_at)

    def fail(self, name: str, status: int | None) -> None:
        """Make one feed answer `status` (None: serve it again)."""
        with self._lock:
            self.feeds[name].fail_status = status

    def fail_next(self, count: int, *, status: int = 503, retry_after: int | None = None) -> None:
        with self._lock:
            self._fail_next += [(status, retry_after)] * count

    def requests_for(self, name: str) -> list[FeedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == f"/feeds/{name}"]

    # -- serving -----------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        name = path.removeprefix("/feeds/")
        if_none_match = handler.headers.get("If-None-Match")
        if_modified_since = handler.headers.get("If-Modified-Since")
        headers: dict[str, str] = {}
        body = b""
        with self._lock:
            feed = self.feeds.get(name) if path.startswith("/feeds/") else None
            failure = self._fail_next.pop(0) if self._fail_next else None
            if failure is None and self.fail_status is not None:
                failure = (self.fail_status, None)
            if failure is None and feed is not None and feed.fail_status is not None:
                failure = (feed.fail_status, None)
            if failure is not None:
                status, retry_after = failure
                if retry_after is not None:
                    headers["Retry-After"] = str(retry_after)
                body = b"<html><body>Layanan tidak tersedia</body></html>"
                headers["Content-Type"] = "text/html"
            elif path.startswith("/img/"):
                status, body, headers["Content-Type"] = 200, IMAGE, "image/jpeg"
            elif feed is None:
                status, body, headers["Content-Type"] = 404, b"<html><body>404</body></html>", "text/html"
            else:
                body = feed.body if feed.kind == "fixed" else _render(feed, self.base_url)
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                modified = format_datetime(feed.changed_at, usegmt=True)
                if self.send_etag:
                    headers["ETag"] = etag
                if self.send_last_modified:
                    headers["Last-Modified"] = modified
                headers["Content-Type"] = feed.content_type
                status = 200
                if _not_modified(if_none_match, if_modified_since, etag, feed.changed_at, self.send_etag):
                    status, body = 304, b""
            self.requests.append(
                FeedRequest(path, if_none_match, if_modified_since, handler.headers.get("User-Agent"), status)
            )
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> FeedsPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _later(previous: datetime) -> datetime:
    """Now to the second, and after `previous`: Last-Modified has one-second resolution."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now if now > previous else previous + timedelta(seconds=1)


def _not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, changed_at: datetime, etags: bool
) -> bool:
    # RFC 9110 13.2.2: If-None-Match decides when present; If-Modified-Since only without it.
    if if_none_match is not None and etags:
        return etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return changed_at <= since
    return False


def _render(feed: Feed, base_url: str) -> bytes:
    if feed.kind == "atom":
        return _atom(feed, base_url)
    items = []
    for a in feed.articles:
        parts = [f"<title>{escape(a.title)}</title>"]
        if a.link:
            parts.append(f"<link>{escape(a.link)}</link>")
        parts.append(f"<description>{escape(a.summary)}</description>")
        parts.append(f"<pubDate>{format_datetime(a.published.astimezone(UTC), usegmt=True)}</pubDate>")
        if a.guid:
            parts.append(f'<guid isPermaLink="false">{escape(a.guid)}</guid>')
        if a.image:
            parts.append(f'<enclosure url={quoteattr(a.image)} length="1024" type="image/jpeg"/>')
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(feed.title)}</title><link>{base_url}/</link><description>Berita</description>"
        f"<language>id</language>{''.join(items)}</channel></rss>"
    ).encode()


def _atom(feed: Feed, base_url: str) -> bytes:
    entries = []
    for a in feed.articles:
        stamp = a.published.astimezone(UTC).isoformat().replace("+00:00", "Z")
        parts = [f'<title type="text">{escape(a.title)}</title>']
        if a.link:
            parts.append(f'<link rel="alternate" href={quoteattr(a.link)}/>')
        if a.image:
            parts.append(f'<link rel="enclosure" type="image/jpeg" href={quoteattr(a.image)}/>')
        parts.append(f"<id>{escape(a.guid or a.link or a.title)}</id>")
        parts.append(f"<published>{stamp}</published><updated>{stamp}</updated>")
        parts.append(f'<summary type="html">{escape(a.summary)}</summary>')
        entries.append("<entry>" + "".join(parts) + "</entry>")
    updated = feed.changed_at.isoformat().replace("+00:00", "Z")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(feed.title)}</title><id>{base_url}/feeds/{feed.name}</id><updated>{updated}</updated>"
        f"{''.join(entries)}</feed>"
    ).encode()
