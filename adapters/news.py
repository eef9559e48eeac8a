"""`news`: complaints raised in the mass media ("Aspirasi Publik Media Massa"), read from RSS and Atom feeds.

Each configured feed is fetched with a conditional GET (ETag / Last-Modified, so an unchanged feed
costs one 304) and parsed from the bytes received; feedparser never fetches anything itself. An
article becomes an inbound message for an admin to review when it names a complaint (one of
`keywords`) AND a place in the city (one of `places`, or by default a Jakarta kota, kecamatan or
kelurahan from the shipped gazetteer). Articles are never trusted and have no reply path.

One article is one message, whichever feeds carry it: its external id is a hash of its canonical URL
(tracking parameters, fragment, trailing slash and host case removed), or of the feed and the entry's
id when it has no link. The cursor holds, per feed, the validators for the conditional GET and the
newest entry time seen; a changed feed is read again from a day before that (`lookback_hours`), and
the inbox recognises the articles it already has. A feed that fails does not stop the others; only
when every feed fails is the channel unavailable. A feed that is not readable RSS/Atom is skipped,
and its body is quarantined once per version (not at every poll).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import httpx
from pydantic import Field, ValidationError, field_validator

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    AdapterContext,
    ChannelSettings,
    FetchResult,
    InboundMessage,
    MediaRef,
    OutboundReply,
    RawRequest,
    RejectedItem,
    Sender,
)
from adapters.errors import ChannelUnavailable, PayloadRejected
from adapters.http_helpers import retry_after_seconds, tls
from adapters.media_download import hosts_of
from normalizer.gazetteer import COMMON_WORDS, load_gazetteer, word_set

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "Kanal/1.0 (complaint gateway; news monitoring for Pemprov DKI Jakarta)"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
#: Query parameters that say how a reader arrived, not which article it is.
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "mc_cid", "mc_eid", "yclid", "_ga"})
#: Words that make a risky place name (one made of ordinary words, "Pasar Baru", "Tanah Tinggi") a place.
PLACE_CUES = word_set(
    "di ke dari daerah wilayah sekitar kawasan area dekat warga lokasi kel kelurahan kec kecamatan kota jl"
)
#: Words that name the province itself; with the kota/kecamatan/kelurahan names they are the default places.
PROVINCE_WORDS = (("jakarta",), ("dki",))
_MAX_MEDIA = 20
_MAX_TEXT = 20_000
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")


class NewsSettings(ChannelSettings):
    #: RSS 2.0 or Atom feed URLs (the media's regional or "megapolitan" sections).
    feeds: list[str] = Field(min_length=1, max_length=100)
    #: An article must contain one of these (case-insensitive, whole words; a phrase matches across spaces).
    keywords: list[str] = Field(min_length=1)
    #: ...and one of these places. Empty: any Jakarta kota, kecamatan or kelurahan, or "Jakarta"/"DKI".
    places: list[str] = Field(default_factory=list)
    #: Older articles are not taken, even on a channel's first poll.
    max_age_days: float = Field(default=7.0, gt=0, le=3650)
    #: A changed feed is read again from this long before the newest entry seen (late or backdated entries).
    lookback_hours: float = Field(default=24.0, ge=0, le=24 * 30)
    timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    user_agent: str = Field(default=DEFAULT_USER_AGENT, min_length=1, max_length=300)
    #: A larger feed body is not read (a misconfigured URL pointing at a video, say).
    max_feed_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    #: Hosts article images may be downloaded from, besides the feeds' own hosts (the media's CDN).
    media_hosts: list[str] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _http_urls(cls, feeds: list[str]) -> list[str]:
        for url in feeds:
            try:
                parts = urlsplit(url)
                valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(f"{url!r} is not an http(s) URL; give the feed's full address")
        if len(set(feeds)) != len(feeds):
            raise ValueError("a feed is listed twice; list each feed once")
        return feeds

    @field_validator("keywords", "places")
    @classmethod
    def _not_blank(cls, words: list[str]) -> list[str]:
        if any(not w.strip() for w in words):
            raise ValueError("an entry is blank; remove it or write the word")
        return [w.strip() for w in words]


# ---------------------------------------------------------------------------------------- identity


def canonical_url(url: str) -> str | None:
    """The article's address without what varies between feeds: tracking parameters, the fragment, the
    host's case, a trailing slash. None when `url` is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    default_port = {"http": 80, "https": 443}[parts.scheme.lower()]
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal keeps its brackets
        netloc = f"[{host}]" if port in (None, default_port) else f"[{host}]:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query), ""))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def article_external_id(url: str) -> str | None:
    """The external id of the article at `url` (None when it is not an http(s) URL).

    http and https addresses of one article are one article: the scheme is left out of the hash.
    """
    canonical = canonical_url(url)
    if canonical is None:
        return None
    return "url:" + _digest(canonical.split(":", 1)[1])


def entry_external_id(feed_url: str, entry_id: str) -> str:
    """The external id of an entry without a link: its feed and its own id (guid / atom:id)."""
    return "entry:" + _digest(f"{feed_url}\n{entry_id}")


def shown(url: str) -> str:
    """A feed URL as logs and errors show it: no query, which may hold a subscriber's key."""
    try:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


# -------------------------------------------------------------------------------------------- text


class _TextOnly(HTMLParser):
    """The words of an HTML fragment: tags dropped, entities decoded, scripts and styles left out."""

    _BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def strip_html(fragment: Any) -> str:
    """Plain text of an HTML (or plain) fragment, whitespace collapsed; '' for anything else."""
    if not isinstance(fragment, str) or not fragment:
        return ""
    parser = _TextOnly()
    try:
        parser.feed(fragment)
        parser.close()
    except (AssertionError, ValueError):  # html.parser on broken markup: keep what was read
        pass
    return " ".join("".join(parser.parts).replace("\x00", "").split())


# ------------------------------------------------------------------------------------------ filter


def _phrase(words: str) -> re.Pattern[str]:
    tokens = words.split()
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(t) for t in tokens) + r"(?!\w)", re.IGNORECASE)


class PlaceNames:
    """Jakarta's kota, kecamatan and kelurahan names from the shipped gazetteer, found in running text.

    The same rules as the normalizer's place step in short: names are matched whole, and a name made of
    ordinary words ("Pasar Baru", "Tanah Tinggi") counts only after a place word ("di", "kawasan", ...).
    """

    def __init__(self) -> None:
        self._gazetteer = load_gazetteer()

    def find(self, text: str) -> str | None:
        g = self._gazetteer
        words = re.findall(r"[a-z0-9]+", text.lower())
        for i, word in enumerate(words):
            if (word,) in PROVINCE_WORDS:
                return word
            for key in g.by_first.get(word, ()):
                n = len(key.tokens)
                if tuple(words[i : i + n]) != key.tokens:
                    continue
                if not key.risky or (i > 0 and words[i - 1] in PLACE_CUES):
                    return " ".join(key.tokens)
                break
            if i + 1 < len(words):
                joined = g.keys.get((word + words[i + 1],))  # "Kramat Jati" for Kramatjati
                # Written apart into ordinary words ("tanah tinggi"), a name is as risky as those words.
                risky = joined is not None and (joined.risky or {word, words[i + 1]} <= COMMON_WORDS)
                if joined is not None and (not risky or (i > 0 and words[i - 1] in PLACE_CUES)):
                    return f"{word} {words[i + 1]}"
        return None


@functools.cache
def jakarta_places() -> PlaceNames:
    return PlaceNames()


class ArticleFilter:
    """Keeps articles that name a complaint (a keyword) and a place in the city."""

    def __init__(self, keywords: Iterable[str], places: Iterable[str]) -> None:
        self._keywords = [_phrase(k) for k in keywords]
        place_list = list(places)
        self._places = [_phrase(p) for p in place_list] if place_list else None

    def keyword(self, text: str) -> str | None:
        return next((m.group(0) for p in self._keywords if (m := p.search(text))), None)

    def place(self, text: str) -> str | None:
        if self._places is None:
            return jakarta_places().find(text)
        return next((m.group(0) for p in self._places if (m := p.search(text))), None)

    def accepts(self, text: str) -> bool:
        return self.keyword(text) is not None and self.place(text) is not None


# ------------------------------------------------------------------------------------------ reading


@dataclass
class FeedReading:
    """What one feed body holds for Kanal."""

    messages: list[InboundMessage] = field(default_factory=list)
    #: The newest entry time in the feed (matching or not), to start the next read from.
    newest: datetime | None = None
    #: Why the body is not a feed (not XML, no entries and a parse error); None when it was read.
    problem: str | None = None
    #: Entries left out: no keyword or place, too old, already seen, or unusable.
    skipped: int = 0


def read_feed(
    body: bytes,
    *,
    feed_url: str,
    content_type: str | None,
    articles: ArticleFilter,
    now: datetime,
    max_age: timedelta,
    since: datetime | None = None,
) -> FeedReading:
    """The matching articles of one RSS/Atom body. Pure (no I/O) and never raises."""
    headers = {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    try:
        # A stream, never bytes or text: given those, feedparser may open a URL or a local file they name.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # feedparser has its own failures on hostile input; none may stop the poll
        return FeedReading(problem=f"the feed could not be parsed ({type(exc).__name__})")
    entries = parsed.get("entries") or []
    if not entries:
        if parsed.get("bozo"):
            reason = str(parsed.get("bozo_exception") or "not XML")[:300]
            return FeedReading(problem=f"not a readable RSS or Atom feed: {reason}")
        if not parsed.get("version"):
            return FeedReading(problem="the answer is not RSS or Atom (an HTML page? check the URL)")
        return FeedReading()  # a feed with nothing in it today
    feed_info = parsed.get("feed") or {}
    source = strip_html(feed_info.get("title"))[:200] or (urlsplit(feed_url).hostname or "news")
    reading = FeedReading()
    oldest = now - max_age
    for entry in entries:
        try:
            published = _entry_time(entry)
            if published is not None and (reading.newest is None or published > reading.newest):
                reading.newest = published
            if published is not None and (published < oldest or (since is not None and published < since)):
                reading.skipped += 1
                continue
            message = _article(entry, feed_url=feed_url, source=source, published=published, articles=articles)
        except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
            message = None
        if message is None:
            reading.skipped += 1
        else:
            reading.messages.append(message)
    return reading


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own `get` answers a missing `updated_parsed` with `published_parsed`, and warns.
        value = dict.get(entry, key) if isinstance(entry, dict) else None
        if value:
            try:
                year, month, day, hour, minute, second = value[:6]
                return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _article(
    entry: Any, *, feed_url: str, source: str, published: datetime | None, articles: ArticleFilter
) -> InboundMessage | None:
    title = strip_html(entry.get("title"))
    summary = strip_html(entry.get("summary"))
    if not summary:
        contents = entry.get("content") or []
        summary = strip_html(contents[0].get("value")) if contents and isinstance(contents[0], dict) else ""
    text = f"{title}\n\n{summary}" if title and summary and summary != title else (title or summary)
    if not text or not articles.accepts(text):
        return None
    link = _link(entry, feed_url)
    canonical = canonical_url(link) if link else None
    entry_id = entry.get("id")
    if canonical is not None:
        external_id = article_external_id(canonical)
    elif isinstance(entry_id, str) and entry_id.strip():
        external_id = entry_external_id(feed_url, entry_id.strip())
    else:
        external_id = "text:" + _digest(f"{feed_url}\n{text}")
    if external_id is None:
        return None
    entry_source = entry.get("source") or {}
    name = strip_html(entry_source.get("title")) if isinstance(entry_source, dict) else ""
    thread = canonical if canonical is not None and len(canonical) <= 200 else external_id
    return InboundMessage(
        external_id=external_id,
        text=text[:_MAX_TEXT],
        sender=Sender(name=(name or source)[:200]),
        media=_images(entry, feed_url),
        sent_at=published,
        thread_id=thread,
    )


def _link(entry: Any, feed_url: str) -> str | None:
    candidates = [entry.get("link")]
    candidates += [
        link.get("href")
        for link in entry.get("links") or []
        if isinstance(link, dict) and link.get("rel", "alternate") == "alternate"
    ]
    guid = entry.get("id")
    if entry.get("guidislink") and isinstance(guid, str):
        candidates.append(guid)
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return urljoin(feed_url, candidate.strip())
    return None


def _images(entry: Any, feed_url: str) -> list[MediaRef]:
    found: dict[str, str | None] = {}

    def add(url: Any, content_type: Any, medium: Any = None) -> None:
        if not isinstance(url, str) or not url.strip():
            return
        kind = content_type[:200] if isinstance(content_type, str) and content_type else None
        looks_like_image = url.lower().split("?")[0].endswith(_IMAGE_SUFFIXES)
        if not ((kind or "").startswith("image/") or medium == "image" or (kind is None and looks_like_image)):
            return
        absolute = urljoin(feed_url, url.strip())
        if urlsplit(absolute).scheme in ("http", "https") and len(absolute) <= 2000:
            found.setdefault(absolute, kind)

    for enclosure in entry.get("enclosures") or []:
        if isinstance(enclosure, dict):
            add(enclosure.get("href") or enclosure.get("url"), enclosure.get("type"))
    for media in entry.get("media_content") or []:
        if isinstance(media, dict):
            add(media.get("url"), media.get("type"), media.get("medium"))
    for thumbnail in entry.get("media_thumbnail") or []:
        if isinstance(thumbnail, dict):
            add(thumbnail.get("url"), None, "image")
    return [MediaRef(url=url, content_type=kind) for url, kind in list(found.items())[:_MAX_MEDIA]]


# ------------------------------------------------------------------------------------------- cursor


@dataclass
class FeedState:
    """What the next poll of one feed needs: the conditional GET's validators and where to read from."""

    etag: str | None = None
    last_modified: str | None = None
    newest: datetime | None = None
    #: Hash of the last unreadable body, so the same broken feed is quarantined once.
    broken: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "last_modified": self.last_modified,
            "newest": self.newest.isoformat() if self.newest else None,
            "broken": self.broken,
        }

    @classmethod
    def from_json(cls, data: Any) -> FeedState:
        if not isinstance(data, dict):
            return cls()

        def text(key: str) -> str | None:
            value = data.get(key)
            return value[:500] if isinstance(value, str) and value else None

        newest = None
        if (raw := text("newest")) is not None:
            try:
                newest = datetime.fromisoformat(raw)
            except ValueError:
                newest = None
            if newest is not None and newest.tzinfo is None:
                newest = newest.replace(tzinfo=UTC)
        return cls(etag=text("etag"), last_modified=text("last_modified"), newest=newest, broken=text("broken"))


def feed_key(url: str) -> str:
    """How the cursor names a feed: its URL without the query (which may hold a subscriber's key), and a hash
    of the query when there is one, so two feeds differing only there stay apart."""
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    return shown(url) + (f"?#{_digest(query)[:12]}" if query else "")


def decode_cursor(cursor: str | None) -> dict[str, FeedState]:
    """Feed key (`feed_key`) -> its state; an unreadable cursor starts every feed afresh (the inbox de-duplicates)."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    feeds = data.get("feeds") if isinstance(data, dict) else None
    if not isinstance(feeds, dict):
        return {}
    return {url: FeedState.from_json(state) for url, state in feeds.items() if isinstance(url, str)}


def encode_cursor(states: dict[str, FeedState]) -> str:
    return json.dumps({"feeds": {url: s.to_json() for url, s in states.items()}}, ensure_ascii=False, sort_keys=True)


# ------------------------------------------------------------------------------------------ adapter


@dataclass
class _FeedOutcome:
    state: FeedState
    messages: list[InboundMessage] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    failure: ChannelUnavailable | None = None


class _TooLarge(Exception):
    pass


class NewsAdapter(Adapter[NewsSettings]):
    channel_type: ClassVar[str] = "news"
    settings_model: ClassVar[type[ChannelSettings]] = NewsSettings
    description: ClassVar[str] = "Mass media: RSS/Atom articles naming a complaint and a Jakarta place, for review"
    pulls = True
    #: An article is a journalist's account, not a citizen's report: always reviewed by an admin.
    may_be_trusted: ClassVar[bool] = False
    trusted_by_default: ClassVar[bool] = False
    acknowledge_receipt: ClassVar[bool] = False

    def __init__(self, *, settings: NewsSettings, context: AdapterContext) -> None:
        super().__init__(settings=settings, context=context)
        self._articles = ArticleFilter(settings.keywords, settings.places)

    def verify(self, request: RawRequest) -> None:
        """Nothing to check: `parse` refuses every push."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        raise PayloadRejected(
            "this channel reads news feeds; nothing may be pushed to it (add the feed to its settings instead)",
            status_code=405,
        )

    async def send(self, reply: OutboundReply) -> str:
        raise NotImplementedError("news articles have no reply path")

    def allowed_media_hosts(self) -> frozenset[str]:
        return hosts_of(*self.settings.feeds) | frozenset(h.lower() for h in self.settings.media_hosts)

    async def fetch(self, cursor: str | None) -> FetchResult:
        previous = decode_cursor(cursor)
        if not self.settings.places:
            await asyncio.to_thread(jakarta_places)  # loads the gazetteer once, off the event loop
        headers = {"User-Agent": self.settings.user_agent, "Accept": ACCEPT}
        async with httpx.AsyncClient(
            timeout=self.settings.timeout_seconds, verify=tls(), follow_redirects=True, max_redirects=3, headers=headers
        ) as http:
            outcomes = await asyncio.gather(
                *(self._poll_feed(http, url, previous.get(feed_key(url), FeedState())) for url in self.settings.feeds)
            )
        failures = [o.failure for o in outcomes if o.failure is not None]
        if failures and len(failures) == len(outcomes):
            waits = [f.retry_after for f in failures if f.retry_after is not None]
            raise ChannelUnavailable(
                f"every feed failed ({len(failures)}); first: {failures[0]}",
                retryable=any(f.retryable for f in failures),
                retry_after=max(waits) if waits else None,
            )
        messages: dict[str, InboundMessage] = {}
        rejected: list[RejectedItem] = []
        for outcome in outcomes:
            for message in outcome.messages:
                messages.setdefault(message.external_id, message)  # one article, whichever feeds carry it
            rejected += outcome.rejected
        states = {feed_key(url): outcome.state for url, outcome in zip(self.settings.feeds, outcomes, strict=True)}
        return FetchResult(messages=list(messages.values()), cursor=encode_cursor(states), rejected=rejected)

    async def _poll_feed(self, http: httpx.AsyncClient, url: str, state: FeedState) -> _FeedOutcome:
        conditional = {}
        if state.etag:
            conditional["If-None-Match"] = state.etag
        if state.last_modified:
            conditional["If-Modified-Since"] = state.last_modified
        try:
            status, response_headers, body = await self._get(http, url, conditional)
        except ChannelUnavailable as exc:
            log.warning("news %s: feed %s skipped this poll: %s", self.channel_id, shown(url), exc)
            return _FeedOutcome(state=state, failure=exc)
        if status == 304:
            return _FeedOutcome(state=state)
        validators = {
            "etag": response_headers.get("etag"),
            "last_modified": response_headers.get("last-modified"),
        }
        now = datetime.now(UTC)
        since = state.newest - timedelta(hours=self.settings.lookback_hours) if state.newest else None
        reading = await asyncio.to_thread(
            read_feed,
            body,
            feed_url=url,
            content_type=response_headers.get("content-type"),
            articles=self._articles,
            now=now,
            max_age=timedelta(days=self.settings.max_age_days),
            since=since,
        )
        if reading.problem is not None:
            digest = hashlib.sha256(body).hexdigest()[:40]
            outcome = _FeedOutcome(state=FeedState(newest=state.newest, broken=digest, **validators))
            if digest != state.broken:
                log.warning("news %s: feed %s skipped: %s", self.channel_id, shown(url), reading.problem)
                outcome.rejected.append(
                    RejectedItem(
                        external_id=None,
                        reason=f"feed {shown(url)}: {reading.problem}; skipped until it changes",
                        body=body,
                        content_type=response_headers.get("content-type"),
                    )
                )
            return outcome
        newest = max(filter(None, [state.newest, reading.newest]), default=None)
        return _FeedOutcome(state=FeedState(newest=newest, **validators), messages=reading.messages)

    async def _get(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> tuple[int, httpx.Headers, bytes]:
        where = shown(url)
        try:
            async with http.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return status, response.headers, b""
                if status == 429:
                    raise ChannelUnavailable(
                        f"feed {where} asks us to slow down (429)",
                        retry_after=retry_after_seconds(response.headers.get("retry-after")),
                    )
                if status >= 500:
                    raise ChannelUnavailable(f"feed {where} answered {status}")
                if status != 200:
                    raise ChannelUnavailable(
                        f"feed {where} answered {status}; check the URL in feeds", retryable=status in (408, 425)
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self.settings.max_feed_bytes:
                        raise _TooLarge
                return status, response.headers, bytes(body)
        except _TooLarge:
            raise ChannelUnavailable(
                f"feed {where} is larger than max_feed_bytes ({self.settings.max_feed_bytes}); check the URL",
                retryable=False,
            ) from None
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"feed {where} unreachable ({type(exc).__name__})") from None


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [NewsAdapter]
