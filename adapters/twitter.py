"""`twitter`: complaints addressed to a city account on X, pulled from the X API v2 with tweepy.

Each poll reads the account's mentions (`GET /2/users/:id/mentions`) and, when `search_query` is set, a
recent search (`GET /2/tweets/search/recent`), newest first, following `meta.next_token` for a bounded
number of pages. The cursor is a small JSON document per source: `since_id` (the newest tweet seen) and
its creation time. Requests do not ask from `since_id` itself but from `rescan_seconds` before that
tweet's time, because X indexes some tweets late (an id older than one already seen) and because Kanal
may crash between storing a batch and saving the cursor; the inbox recognises the tweets seen again by
their id. A poll that runs out of pages before reaching the checkpoint remembers the gap (`gap_*`) and
fills it first next time, so a burst larger than the page budget is delayed, never skipped.

Replies are tweets in answer to the citizen's tweet (`POST /2/tweets` with OAuth 1.0a user context);
reading needs only the app's bearer token. tweepy always addresses https://api.twitter.com; a requests
transport adapter mounted on the client's session sends those requests to `api_base_url` instead (the
tests' fake X API) and enforces `timeout_seconds`, which tweepy itself does not set.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import requests
import requests.adapters
import tweepy
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    AdapterContext,
    ChannelSettings,
    FetchResult,
    InboundMessage,
    Location,
    MediaRef,
    OutboundReply,
    RawRequest,
    RejectedItem,
    Sender,
)
from adapters.errors import ChannelUnavailable, PayloadRejected, SignatureInvalid
from adapters.media_download import hosts_of

#: tweepy.Client builds every URL on this host; requests to it are redirected to `api_base_url`.
TWEEPY_HOST = "https://api.twitter.com"
#: Twitter's snowflake ids carry their creation time: milliseconds since this epoch, shifted left 22 bits.
SNOWFLAKE_EPOCH_MS = 1288834974657
#: Recent search only reaches back seven days; a little is kept off so a slow request is not refused.
SEARCH_REACH = timedelta(days=7) - timedelta(minutes=2)
MAX_TWEET_WEIGHT = 280
#: Every link in a tweet counts as a t.co link of this length, whatever its own length.
LINK_WEIGHT = 23
ELLIPSIS = "\u2026"

TWEET_FIELDS = [
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "attachments",
    "geo",
    "entities",
    # The whole text of a long post; `text` holds only its first 280 characters then.
    "note_tweet",
]
EXPANSIONS = [
    "author_id",
    "attachments.media_keys",
    "geo.place_id",
    # Our own account appears among the users when mentioned, so its @handle can be dropped from the text.
    "entities.mentions.username",
    # The tweet a reply answers: its text stands in for a reply that only tags the city.
    "referenced_tweets.id",
]
USER_FIELDS = ["username", "name"]
MEDIA_FIELDS = ["url", "preview_image_url", "type"]
PLACE_FIELDS = ["full_name", "geo", "country_code", "place_type"]

#: A place's bounding-box centre stands for the complaint's spot only when the box is this small (about
#: 1 km): the centre of a city or district says nothing about where a pothole is.
MAX_PLACE_SPAN_DEGREES = 0.01

_TWEET_ID = re.compile(r"^[0-9]{1,19}$")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w{1,50})+")
_WORD = re.compile(r"\w", re.UNICODE)
_LINK = re.compile(r"https?://\S+")
_IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}

log = logging.getLogger(__name__)


class TwitterSettings(ChannelSettings):
    """One X account: the city's (@DKIJakarta) or the governor's are two channel instances."""

    #: The account's numeric id (not its @handle): whose mentions are read and whose tweets are ours.
    user_id: str = Field(pattern=r"^[0-9]{1,19}$")
    #: The app's bearer token (OAuth 2.0 app-only): enough to read mentions and search.
    bearer_token: SecretStr = Field(min_length=1)
    #: OAuth 1.0a user context of the account, to reply; all four or none (then the channel only reads).
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    #: A recent-search query read besides the mentions, e.g. "#jakartabanjir -is:retweet".
    search_query: str | None = Field(default=None, min_length=1, max_length=4096)
    api_base_url: str = TWEEPY_HOST
    #: Each poll asks again for tweets created up to this long before the newest one seen (late indexing).
    rescan_seconds: float = Field(default=900.0, ge=10, le=6 * 86_400)
    #: A channel polled for the first time (or whose search query changed) reads back this far only.
    first_poll_lookback_seconds: float = Field(default=86_400.0, ge=10, le=7 * 86_400)
    #: Tweets per page (X allows 10-100 on search, 5-100 on mentions).
    max_results: int = Field(default=100, ge=10, le=100)
    #: Pages per source per poll; the rest of a larger burst is fetched next poll.
    max_pages: int = Field(default=5, ge=1, le=50)
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)

    @field_validator("user_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        # YAML reads `user_id: 123` as a number; ids are text everywhere in the X API.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+$", value.rstrip("/")):
            raise ValueError("must be a scheme and host only, such as https://api.twitter.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _user_context_complete(self) -> TwitterSettings:
        given = [name for name in _USER_CONTEXT_KEYS if getattr(self, name) is not None]
        if given and len(given) != len(_USER_CONTEXT_KEYS):
            missing = ", ".join(name for name in _USER_CONTEXT_KEYS if name not in given)
            raise ValueError(
                f"replying needs all four OAuth 1.0a user-context credentials; also set {missing} "
                "(or remove the others to only read)"
            )
        return self

    def can_reply(self) -> bool:
        return all(getattr(self, name) is not None for name in _USER_CONTEXT_KEYS)


_USER_CONTEXT_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


# ------------------------------------------------------------------------------------ reading a page


class _Loose(BaseModel):
    # The X API adds fields over time; what is not needed here is ignored, never refused.
    model_config = ConfigDict(extra="ignore")


class _MentionEntity(_Loose):
    username: str | None = None
    id: str | None = None


class _UrlEntity(_Loose):
    url: str | None = None
    expanded_url: str | None = None
    media_key: str | None = None


class _Entities(_Loose):
    mentions: list[_MentionEntity] = Field(default_factory=list)
    urls: list[_UrlEntity] = Field(default_factory=list)


class _Reference(_Loose):
    type: str | None = None
    id: str | None = None


class _Point(_Loose):
    coordinates: list[float]


class _TweetGeo(_Loose):
    place_id: str | None = None
    coordinates: _Point | None = None


class _Attachments(_Loose):
    media_keys: list[str] = Field(default_factory=list)


class _NoteTweet(_Loose):
    text: str
    entities: _Entities | None = None


class _Tweet(_Loose):
    id: str = Field(pattern=_TWEET_ID.pattern)
    text: str
    author_id: str | None = None
    created_at: str | None = None
    conversation_id: str | None = None
    referenced_tweets: list[_Reference] = Field(default_factory=list)
    geo: _TweetGeo | None = None
    entities: _Entities | None = None
    attachments: _Attachments | None = None
    note_tweet: _NoteTweet | None = None


class _User(_Loose):
    id: str
    username: str | None = None
    name: str | None = None


class _Media(_Loose):
    media_key: str
    type: str | None = None
    url: str | None = None
    preview_image_url: str | None = None


class _PlaceGeo(_Loose):
    bbox: list[float] | None = None


class _Place(_Loose):
    id: str
    full_name: str | None = None
    place_type: str | None = None
    geo: _PlaceGeo | None = None


@dataclass
class PageReading:
    """What one page of tweets holds for Kanal. `seen` lists every tweet id on the page, used or not."""

    messages: list[InboundMessage] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    #: (tweet id, why) for tweets left out on purpose: our own, retweets, bare mentions.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: (tweet id, creation time if known) of every tweet on the page with a usable id.
    seen: list[tuple[int, datetime | None]] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True)
class _Includes:
    users: dict[str, _User]
    media: dict[str, _Media]
    places: dict[str, _Place]
    tweets: dict[str, _Tweet]


def read_page(document: object, *, own_user_id: str) -> PageReading:
    """Turn one X API v2 timeline or search response (decoded JSON) into messages. Pure.

    Raises `PayloadRejected` when the page as a whole is not a tweets page; a single tweet that cannot
    be used becomes a `RejectedItem` and the others still count.
    """
    if not isinstance(document, dict):
        raise PayloadRejected("an X API page must be a JSON object with data, includes and meta")
    data = document.get("data", [])
    if data is None:
        data = []
    if not isinstance(data, list):
        raise PayloadRejected("the page's `data` must be a list of tweets")
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise PayloadRejected("the page's `meta` must be an object")
    token = meta.get("next_token")
    if token is not None and not (isinstance(token, str) and 0 < len(token) <= 1000):
        raise PayloadRejected("the page's `meta.next_token` must be a short string")
    includes = _read_includes(document.get("includes"))
    reading = PageReading(next_token=token)
    own_handles = _own_handles(includes, own_user_id)
    for raw in data:
        _read_one(raw, includes, own_user_id, own_handles, reading)
    return reading


def _read_includes(raw: object) -> _Includes:
    block = raw if isinstance(raw, dict) else {}

    def each(key: str, model: type[_Loose]) -> Iterator[Any]:
        items = block.get(key)
        for item in items if isinstance(items, list) else []:
            try:
                yield model.model_validate(item)
            except ValidationError:
                continue  # an unusable expansion costs its detail, not the tweets

    return _Includes(
        users={u.id: u for u in each("users", _User)},
        media={m.media_key: m for m in each("media", _Media)},
        places={p.id: p for p in each("places", _Place)},
        tweets={t.id: t for t in each("tweets", _Tweet)},
    )


def _own_handles(includes: _Includes, own_user_id: str) -> set[str]:
    handles = set()
    own = includes.users.get(own_user_id)
    if own is not None and own.username:
        handles.add(own.username.lower())
    return handles


def _read_one(raw: object, includes: _Includes, own_user_id: str, own_handles: set[str], into: PageReading) -> None:
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    known_id = raw_id if isinstance(raw_id, str) and _TWEET_ID.match(raw_id) else None
    try:
        tweet = _Tweet.model_validate(raw)
    except ValidationError as exc:
        if known_id is not None:
            into.seen.append((int(known_id), None))
        into.rejected.append(_rejected(raw, known_id, f"not a usable tweet: {_problems(exc)}"))
        return
    sent_at = _parse_time(tweet.created_at)
    into.seen.append((int(tweet.id), sent_at))
    if tweet.author_id == own_user_id:
        into.ignored.append((tweet.id, "our own tweet"))
        return
    if any(ref.type == "retweeted" for ref in tweet.referenced_tweets):
        into.ignored.append((tweet.id, "a retweet"))
        return
    try:
        message = _message(tweet, sent_at, includes, own_user_id, own_handles)
    except ValidationError as exc:
        into.rejected.append(_rejected(raw, tweet.id, f"tweet does not fit a message: {_problems(exc)}"))
        return
    if message is None:
        into.ignored.append((tweet.id, "only a mention, nothing to report"))
        return
    into.messages.append(message)


def _message(
    tweet: _Tweet, sent_at: datetime | None, includes: _Includes, own_user_id: str, own_handles: set[str]
) -> InboundMessage | None:
    handles = own_handles | {
        m.username.lower() for m in _entities(tweet).mentions if m.id == own_user_id and m.username
    }
    text = _clean_text(tweet, handles)
    media = _media(tweet, includes)
    if not _WORD.search(_LEADING_MENTIONS.sub("", text)):
        # A reply that only tags the city ("@DKIJakarta" under someone's complaint) asks it to read that.
        parent = _parent(tweet, includes)
        if parent is not None and parent.author_id != own_user_id:
            text = f"{text}\n{_clean_text(parent, handles)}".strip()
        elif not media:
            return None
    author = includes.users.get(tweet.author_id or "")
    sender = Sender(
        id=tweet.author_id,
        handle=author.username if author else None,
        name=author.name if author else None,
    )
    return InboundMessage(
        external_id=tweet.id,
        # A long post (note_tweet) may exceed what Kanal keeps of one message.
        text=text[:20_000],
        sender=sender if tweet.author_id else None,
        location=_location(tweet, includes),
        media=media[:20],
        sent_at=sent_at,
        thread_id=tweet.conversation_id,
    )


def _entities(tweet: _Tweet) -> _Entities:
    if tweet.note_tweet is not None:
        return tweet.note_tweet.entities or _Entities()
    return tweet.entities or _Entities()


def _clean_text(tweet: _Tweet, own_handles: set[str]) -> str:
    """The tweet's words: links expanded, photo links and our own leading @handle dropped, entities decoded."""
    text = tweet.note_tweet.text if tweet.note_tweet is not None else tweet.text
    for link in _entities(tweet).urls:
        if not link.url or not _LINK.fullmatch(link.url):
            continue
        if link.media_key or (link.expanded_url and re.search(r"/(photo|video)/\d+$", link.expanded_url)):
            replacement = ""  # the photo itself is attached as media
        elif link.expanded_url and _LINK.fullmatch(link.expanded_url):
            replacement = link.expanded_url
        else:
            continue
        text = text.replace(link.url, replacement)
    # The X API sends &, < and > as HTML entities in tweet text.
    text = html.unescape(text)
    return _drop_own_mentions(text, own_handles).strip()


def _drop_own_mentions(text: str, own_handles: set[str]) -> str:
    leading = _LEADING_MENTIONS.match(text)
    if leading is None or not own_handles:
        return text
    kept = [token for token in leading.group(0).split() if token[1:].lower() not in own_handles]
    return " ".join([*kept, text[leading.end() :].strip()])


def _parent(tweet: _Tweet, includes: _Includes) -> _Tweet | None:
    for ref in tweet.referenced_tweets:
        if ref.type in ("replied_to", "quoted") and ref.id in includes.tweets:
            return includes.tweets[ref.id]
    return None


def _media(tweet: _Tweet, includes: _Includes) -> list[MediaRef]:
    refs = []
    for key in tweet.attachments.media_keys if tweet.attachments else []:
        item = includes.media.get(key)
        if item is None:
            continue
        # A video or GIF is referenced by its still: a photo of the problem all the same.
        url = item.url if item.type == "photo" else item.preview_image_url
        if not url or not _LINK.fullmatch(url) or len(url) > 2000:
            continue
        name = url.rsplit("/", 1)[-1].split("?", 1)[0][:300] or None
        suffix = ("." + name.rsplit(".", 1)[-1].lower()) if name and "." in name else ""
        refs.append(
            MediaRef(
                url=url,
                content_type=_IMAGE_TYPES.get(suffix, "image/jpeg"),
                filename=name,
                platform_id=key[:500],
            )
        )
    return refs


def _location(tweet: _Tweet, includes: _Includes) -> Location | None:
    lat = lng = None
    point = tweet.geo.coordinates if tweet.geo else None
    if point is not None and len(point.coordinates) == 2:
        # GeoJSON order: longitude first.
        lng, lat = point.coordinates
    place = includes.places.get(tweet.geo.place_id or "") if tweet.geo else None
    address = place.full_name if place else None
    if lat is None and place is not None:
        centre = _small_place_centre(place)
        if centre is not None:
            lat, lng = centre
    if lat is not None and lng is not None and not (_on_earth(lat, lng)):
        lat = lng = None
    if lat is None and not address:
        return None
    return Location(lat=lat, lng=lng, address=address[:1000] if address else None)


def _small_place_centre(place: _Place) -> tuple[float, float] | None:
    bbox = place.geo.bbox if place.geo else None
    if not bbox or len(bbox) != 4:
        return None
    west, south, east, north = bbox
    if place.place_type != "poi" and (
        abs(east - west) > MAX_PLACE_SPAN_DEGREES or abs(north - south) > MAX_PLACE_SPAN_DEGREES
    ):
        return None
    return (south + north) / 2, (west + east) / 2


def _on_earth(lat: float, lng: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180


def _parse_time(value: str | None) -> datetime | None:
    """X sends ISO 8601 ("2021-01-06T18:40:40.000Z"); its reference examples show the v1.1 form too."""
    if not value:
        return None
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%a %b %d %H:%M:%S %z %Y")):
        try:
            parsed = parse(value)
        except (ValueError, OverflowError):
            continue
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _rejected(raw: object, tweet_id: str | None, reason: str) -> RejectedItem:
    try:
        body = json.dumps(raw, ensure_ascii=False).encode()
    except (TypeError, ValueError):
        body = repr(raw).encode()
    return RejectedItem(external_id=tweet_id, reason=reason[:2000], body=body, content_type="application/json")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'tweet'}: {e['msg']}" for e in exc.errors()[:5])


def snowflake_time(tweet_id: int) -> datetime:
    """When a tweet was created, read from its id (ids before November 2010 read as that month)."""
    return datetime.fromtimestamp(((tweet_id >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)


# ------------------------------------------------------------------------------------------- cursor


class SourceState(BaseModel):
    """Where one source (mentions or search) stands."""

    model_config = ConfigDict(extra="ignore")

    #: The newest tweet id seen: the checkpoint.
    since_id: str | None = Field(default=None, pattern=_TWEET_ID.pattern)
    #: Its creation time; the next poll asks from `rescan_seconds` before it.
    newest_at: datetime | None = None
    #: Tweets older than `gap_until_id` and newer than `gap_since_id` (or created from `gap_start_time`)
    #: were not read yet: a poll ran out of pages before reaching them.
    gap_until_id: str | None = Field(default=None, pattern=_TWEET_ID.pattern)
    gap_since_id: str | None = Field(default=None, pattern=_TWEET_ID.pattern)
    gap_start_time: datetime | None = None
    #: Search only: the query this state belongs to; another query starts afresh.
    query: str | None = None


class TwitterCursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    mentions: SourceState = Field(default_factory=SourceState)
    search: SourceState | None = None

    @classmethod
    def load(cls, cursor: str | None) -> TwitterCursor:
        if not cursor:
            return cls()
        try:
            return cls.model_validate_json(cursor)
        except ValidationError:
            # Not ours (another version, edited by hand): the first-poll lookback applies, and the inbox
            # recognises whatever was already stored.
            log.warning("twitter: cursor unreadable; reading back as on a first poll")
            return cls()

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)


# ------------------------------------------------------------------------------------------ fetching


class _ApiHost(requests.adapters.HTTPAdapter):
    """Sends tweepy's requests for https://api.twitter.com to the configured base URL, with a timeout."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(max_retries=0)
        self._base_url = base_url
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url and request.url.startswith(TWEEPY_HOST + "/"):
            request.url = self._base_url + request.url[len(TWEEPY_HOST) :]
        kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


@dataclass
class _Batch:
    """What one poll gathered over its sources and pages; a tweet found twice is kept once."""

    messages: dict[str, InboundMessage] = field(default_factory=dict)
    rejected: dict[str, RejectedItem] = field(default_factory=dict)
    unnamed_rejected: list[RejectedItem] = field(default_factory=list)


@dataclass
class _Walk:
    """The pages read for one request: whether its results ran out, and the ids met."""

    exhausted: bool = False
    oldest: int | None = None
    newest: tuple[int, datetime | None] | None = None


@dataclass(frozen=True)
class _Source:
    name: Literal["mentions", "search"]
    #: What a person reads in an error: "mentions of user 123", "recent search".
    label: str
    request: Callable[[Any, dict[str, Any], str | None], requests.Response]
    #: Oldest time the endpoint serves, if limited.
    reach: timedelta | None


class TwitterAdapter(Adapter[TwitterSettings]):
    channel_type: ClassVar[str] = "twitter"
    settings_model: ClassVar[type[ChannelSettings]] = TwitterSettings
    description: ClassVar[str] = "Mentions (and a recent search) of an X account, pulled from the X API v2"
    pulls = True
    # Anyone can post on X: its reports always go through review.
    may_be_trusted: ClassVar[bool] = False
    acknowledge_receipt: ClassVar[bool] = True
    media_hosts: ClassVar[frozenset[str]] = frozenset({"pbs.twimg.com", "twimg.com"})
    max_body_bytes: ClassVar[int] = 64 * 1024

    def __init__(self, *, settings: TwitterSettings, context: AdapterContext) -> None:
        super().__init__(settings=settings, context=context)
        # At DEBUG, tweepy logs each request's headers (the bearer token) and oauthlib the OAuth parameters:
        # debugging anything else must not write the account's credentials to the log.
        for name in ("tweepy", "oauthlib", "requests_oauthlib"):
            logger = logging.getLogger(name)
            if logger.level < logging.INFO:  # also NOTSET, which would follow a root logger set to DEBUG
                logger.setLevel(logging.INFO)

    # ------------------------------------------------------------------------ nothing is pushed here

    def verify(self, request: RawRequest) -> None:
        raise SignatureInvalid(
            f"channel {self.channel_id} reads X through its API; nothing can be delivered to this route"
        )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        raise PayloadRejected(f"channel {self.channel_id} is pulled from the X API, not pushed to", status_code=405)

    def allowed_media_hosts(self) -> frozenset[str]:
        return self.media_hosts | hosts_of(self.settings.api_base_url)

    # ----------------------------------------------------------------------------------- pulling

    async def fetch(self, cursor: str | None) -> FetchResult:
        state = TwitterCursor.load(cursor)
        return await asyncio.to_thread(self._fetch, state, datetime.now(UTC))

    def _fetch(self, cursor: TwitterCursor, now: datetime) -> FetchResult:
        client = self._client()
        batch = _Batch()
        mentions, search = self._sources()
        try:
            cursor.mentions = self._poll(client, mentions, cursor.mentions, now, batch)
            query = self.settings.search_query
            if query is None:
                cursor.search = None
            else:
                previous = cursor.search if cursor.search is not None and cursor.search.query == query else None
                cursor.search = self._poll(client, search, previous or SourceState(query=query), now, batch)
        finally:
            client.session.close()
        messages = sorted(batch.messages.values(), key=lambda m: int(m.external_id))
        return FetchResult(
            messages=messages,
            cursor=cursor.dump(),
            rejected=[*batch.rejected.values(), *batch.unnamed_rejected],
        )

    def _sources(self) -> tuple[_Source, _Source]:
        settings = self.settings

        def mentions(client: Any, params: dict[str, Any], token: str | None) -> requests.Response:
            return client.get_users_mentions(settings.user_id, pagination_token=token, **params)  # type: ignore[no-any-return]

        def search(client: Any, params: dict[str, Any], token: str | None) -> requests.Response:
            return client.search_recent_tweets(  # type: ignore[no-any-return]
                settings.search_query, next_token=token, sort_order="recency", **params
            )

        return (
            _Source("mentions", f"mentions of user {settings.user_id}", mentions, None),
            _Source("search", "the recent search", search, SEARCH_REACH),
        )

    def _poll(self, client: Any, source: _Source, state: SourceState, now: datetime, batch: _Batch) -> SourceState:
        """Read one source: first a gap an earlier poll left, then the newest tweets with the rescan window."""
        settings = self.settings
        floor = now - source.reach if source.reach else None
        state = state.model_copy()
        checkpoint = int(state.since_id) if state.since_id else None

        if state.gap_until_id:
            params: dict[str, Any] = {"until_id": state.gap_until_id}
            if state.gap_since_id and (floor is None or snowflake_time(int(state.gap_since_id)) > floor):
                params["since_id"] = state.gap_since_id
            else:
                params["start_time"] = _latest(state.gap_start_time, floor) or now - timedelta(
                    seconds=settings.first_poll_lookback_seconds
                )
            gap = self._walk(client, source, params, batch, report_rejected_above=None)
            if gap.exhausted or gap.oldest is None:
                state.gap_until_id = state.gap_since_id = state.gap_start_time = None
            else:
                state.gap_until_id = str(gap.oldest)

        if state.newest_at is not None:
            start = state.newest_at - timedelta(seconds=settings.rescan_seconds)
        else:
            start = now - timedelta(seconds=settings.first_poll_lookback_seconds)
        start = _latest(start, floor) or start
        # X refuses a start_time less than 10 s before the request, and a tweet time ahead of our clock
        # must not make us ask for the future.
        start = min(start, now - timedelta(seconds=10))
        ahead = self._walk(client, source, {"start_time": start}, batch, report_rejected_above=checkpoint)
        if not ahead.exhausted and ahead.oldest is not None and (checkpoint is None or ahead.oldest > checkpoint):
            # Out of pages before reaching the checkpoint: what lies between is read next poll.
            if state.gap_until_id is None:
                state.gap_since_id = state.since_id
                state.gap_start_time = None if state.since_id else start
            state.gap_until_id = str(ahead.oldest)
        if ahead.newest is not None and (checkpoint is None or ahead.newest[0] > checkpoint):
            newest_id, newest_at = ahead.newest
            state.since_id = str(newest_id)
            state.newest_at = newest_at or snowflake_time(newest_id)
        return state

    def _walk(
        self,
        client: Any,
        source: _Source,
        params: dict[str, Any],
        batch: _Batch,
        *,
        report_rejected_above: int | None,
    ) -> _Walk:
        """Follow `next_token` for at most `max_pages` pages of one request, adding what they hold to `batch`."""
        walk = _Walk()
        request = {
            **params,
            "max_results": self.settings.max_results,
            "expansions": EXPANSIONS,
            "tweet_fields": TWEET_FIELDS,
            "user_fields": USER_FIELDS,
            "media_fields": MEDIA_FIELDS,
            "place_fields": PLACE_FIELDS,
        }
        token: str | None = None
        for _ in range(self.settings.max_pages):
            response = self._call(source.label, functools.partial(source.request, client, request, token))
            try:
                document = json.loads(response.content)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ChannelUnavailable(f"X API answered {source.label} with something not JSON; retrying") from None
            try:
                page = read_page(document, own_user_id=self.settings.user_id)
            except PayloadRejected as exc:
                raise ChannelUnavailable(
                    f"X API answered {source.label} with a page Kanal cannot read ({exc.message}); retrying"
                ) from None
            _add(batch, page, report_rejected_above)
            for tweet_id, created_at in page.seen:
                walk.oldest = tweet_id if walk.oldest is None else min(walk.oldest, tweet_id)
                if walk.newest is None or tweet_id > walk.newest[0]:
                    walk.newest = (tweet_id, created_at)
            token = page.next_token
            if token is None:
                walk.exhausted = True
                return walk
        return walk

    def _call(self, what: str, call: Callable[[], requests.Response]) -> requests.Response:
        """Run one tweepy request; translate its failures into what the scheduler and the outbox act on."""
        try:
            return call()
        except tweepy.TooManyRequests as exc:
            retry_after = _until_reset(exc.reset_time)
            when = f"after the reset in {math.ceil(retry_after)} s" if retry_after is not None else "later"
            raise ChannelUnavailable(
                f"X API rate limit reached on {what}; trying again {when}", retry_after=retry_after
            ) from None
        except tweepy.Unauthorized:
            raise ChannelUnavailable(
                f"X API refused the credentials on {what} (401): check the channel's bearer_token "
                "(and, to reply, the OAuth 1.0a keys and tokens)",
                retryable=False,
            ) from None
        except tweepy.Forbidden as exc:
            raise ChannelUnavailable(
                f"X API forbade {what} (403: {_api_message(exc)}): check the app's access level and permissions",
                retryable=False,
            ) from None
        except (tweepy.BadRequest, tweepy.NotFound) as exc:
            raise ChannelUnavailable(
                f"X API refused {what} ({exc.response.status_code}: {_api_message(exc)}): "
                "check user_id and search_query",
                retryable=False,
            ) from None
        except tweepy.HTTPException as exc:
            raise ChannelUnavailable(f"X API answered {exc.response.status_code} on {what}; retrying") from None
        except requests.RequestException as exc:
            raise ChannelUnavailable(f"X API unreachable for {what} ({type(exc).__name__}); retrying") from None
        except (ValueError, TypeError, AttributeError) as exc:
            # tweepy itself trips over some malformed error bodies.
            raise ChannelUnavailable(f"X API answer to {what} unreadable ({type(exc).__name__}); retrying") from None

    def _client(self, *, user_context: bool = False) -> Any:
        settings = self.settings

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        client = tweepy.Client(
            bearer_token=settings.bearer_token.get_secret_value(),
            consumer_key=secret(settings.consumer_key) if user_context else None,
            consumer_secret=secret(settings.consumer_secret) if user_context else None,
            access_token=secret(settings.access_token) if user_context else None,
            access_token_secret=secret(settings.access_token_secret) if user_context else None,
            # The raw answer: its bytes are read by `read_page`, whatever tweepy would make of them.
            return_type=requests.Response,
            # A rate limit is the scheduler's to wait out (ChannelUnavailable.retry_after), not a thread's.
            wait_on_rate_limit=False,
        )
        client.session.mount(TWEEPY_HOST + "/", _ApiHost(settings.api_base_url, settings.timeout_seconds))
        return client

    # ---------------------------------------------------------------------------------- replying

    async def send(self, reply: OutboundReply) -> str:
        """Tweet `reply.text` in answer to the citizen's tweet; return the new tweet's id."""
        if not self.settings.can_reply():
            raise NotImplementedError(
                f"channel {self.channel_id} can only read: set consumer_key, consumer_secret, access_token and "
                "access_token_secret (OAuth 1.0a of the account, app with Read and Write permission) to reply"
            )
        target = next((t for t in (reply.in_reply_to, reply.thread_id) if t and _TWEET_ID.match(t)), None)
        if target is None:
            raise ChannelUnavailable(
                "no tweet to answer (the reply names neither the citizen's tweet nor its conversation); "
                "a reply on X must answer a tweet",
                retryable=False,
            )
        text = reply.text.strip()
        handle = reply.recipient.handle
        if target != reply.in_reply_to and handle and f"@{handle}".lower() not in text.lower():
            # Answering the conversation's first tweet notifies its author; the citizen may be someone else.
            text = f"@{handle} {text}"
        text = fit_tweet(text, keep=reply.ticket)
        response = await asyncio.to_thread(self._create_tweet, text, target)
        try:
            answer = json.loads(response.content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ""
        data = answer.get("data") if isinstance(answer, dict) else None
        tweet_id = data.get("id") if isinstance(data, dict) else None
        return tweet_id if isinstance(tweet_id, str) else ""

    def _create_tweet(self, text: str, in_reply_to: str) -> requests.Response:
        client = self._client(user_context=True)
        try:
            response: requests.Response = self._call(
                "the reply",
                lambda: client.create_tweet(text=text, in_reply_to_tweet_id=in_reply_to, user_auth=True),
            )
            return response
        finally:
            client.session.close()


def _add(batch: _Batch, page: PageReading, report_rejected_above: int | None) -> None:
    for message in page.messages:
        batch.messages[message.external_id] = message
    for item in page.rejected:
        if item.external_id is None:
            batch.unnamed_rejected.append(item)
        elif report_rejected_above is None or int(item.external_id) > report_rejected_above:
            # A tweet rejected once is met again in every rescan; only its first sighting is quarantined.
            batch.rejected[item.external_id] = item


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def _until_reset(reset_time: int | None) -> float | None:
    """Seconds until X's `x-rate-limit-reset` (Unix seconds), plus one: the window resets during that second."""
    if reset_time is None:
        return None
    return max(1.0, reset_time - time.time() + 1)


def _api_message(exc: tweepy.HTTPException) -> str:
    messages = [m for m in exc.api_messages if isinstance(m, str)]
    return ("; ".join(messages) or str(exc.response.reason or "no detail"))[:300]


# ------------------------------------------------------------------------------------- tweet length


def tweet_weight(text: str) -> int:
    """The length X counts: a link is 23, most Latin text 1 per character, other scripts and emoji 2."""
    weight, position = 0, 0
    for link in _LINK.finditer(text):
        weight += _plain_weight(text[position : link.start()]) + LINK_WEIGHT
        position = link.end()
    return weight + _plain_weight(text[position:])


def _plain_weight(text: str) -> int:
    return sum(_char_weight(ch) for ch in text)


def _char_weight(ch: str) -> int:
    # twitter-text's configuration: these ranges weigh 1, everything else 2.
    cp = ord(ch)
    light = cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247
    return 1 if light else 2


def fit_tweet(text: str, *, keep: str | None = None) -> str:
    """`text` cut to 280 as X counts, keeping what the citizen needs most: every link (the status page)
    and `keep` (the ticket code) when the text holds it. The prose is shortened at a word, with an ellipsis."""
    text = text.strip()
    if tweet_weight(text) <= MAX_TWEET_WEIGHT:
        return text
    links = list(dict.fromkeys(_LINK.findall(text)))
    prose = " ".join(_LINK.sub(" ", text).split())
    tail = list(links)
    cut = _cut(prose, tail)
    if keep and keep in text and keep not in cut and not any(keep in link for link in links):
        tail = [keep, *links]
        cut = _cut(prose, tail)
    result = " ".join(part for part in [cut, *tail] if part)
    while tweet_weight(result) > MAX_TWEET_WEIGHT and tail:
        tail.pop()  # only when links alone fill the tweet
        result = " ".join(part for part in [_cut(prose, tail), *tail] if part)
    if tweet_weight(result) > MAX_TWEET_WEIGHT:
        result = _hard_cut(result, MAX_TWEET_WEIGHT)
    while tweet_weight(result) > MAX_TWEET_WEIGHT:
        result = result[:-1]  # a cut through a short link can still weigh 23 for it
    return result


def _cut(prose: str, tail: Iterable[str]) -> str:
    tail_weight = sum(tweet_weight(part) + 1 for part in tail)
    budget = MAX_TWEET_WEIGHT - tail_weight - _char_weight(ELLIPSIS)
    if budget <= 0:
        return ""
    if _plain_weight(prose) <= budget:
        return prose
    cut = _hard_cut(prose, budget)
    at_word = cut.rsplit(" ", 1)[0] if " " in cut[len(cut) // 2 :] else cut
    return at_word.rstrip(" ,;:.-") + ELLIPSIS


def _hard_cut(text: str, budget: int) -> str:
    weight = 0
    for index, ch in enumerate(text):
        weight += _char_weight(ch)
        if weight > budget:
            return text[:index]
    return text


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [TwitterAdapter]
