"""A fake X API v2 on 127.0.0.1 for the `twitter` channel's tests, with the documented query semantics.

Serves `GET /2/users/:id/mentions` and `GET /2/tweets/search/recent` from tweets the test publishes,
newest first, honouring `since_id`/`until_id` (exclusive, taking precedence over `start_time`/`end_time`),
`start_time` (inclusive, to the second), `max_results` (5-100 on mentions, 10-100 on search),
`pagination_token`/`next_token`, `expansions` and the `*.fields` lists (a field not asked for is not
sent, as X does). Accepts `POST /2/tweets` with OAuth 1.0a user context and records the body. Serves
media files under `/media/`. Every request is recorded; the peer answers 429 with `x-rate-limit-reset`
until a given time, 503 on demand, or slowly.

Tweet ids are snowflakes made from the creation time, as X's are, so a tweet published "late" with an
older creation time gets an id lower than tweets already served: the late-indexing case. Search
understands a subset of X's query language: words and #hashtags (all must occur), "-word" and
"-is:retweet".
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SNOWFLAKE_EPOCH_MS = 1288834974657
#: The credentials the peer accepts unless told others; the secrets are not checked (see `_user_context`).
BEARER_TOKEN = "peer-bearer-token-0123456789"
CONSUMER_KEY = "peer-consumer-key-0123"
CONSUMER_SECRET = "peer-consumer-secret-456789"
ACCESS_TOKEN = "1501000000000000001-peer-access-token"
ACCESS_TOKEN_SECRET = "peer-access-token-secret-abcdef"
TINY_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"

# What X sends of each object when the request names no fields.
_DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
_DEFAULT_USER_FIELDS = ("id", "name", "username")
_DEFAULT_MEDIA_FIELDS = ("media_key", "type")
_DEFAULT_PLACE_FIELDS = ("id", "full_name")
# The id fields an expansion adds to the tweet, whether or not tweet.fields asked for them.
_EXPANSION_FIELDS = {
    "author_id": "author_id",
    "attachments.media_keys": "attachments",
    "geo.place_id": "geo",
    "referenced_tweets.id": "referenced_tweets",
}


@dataclass(frozen=True)
class Recorded:
    """One request as the peer saw it."""

    at: float  # time.time() on arrival
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int
    body: Any = None


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: until cleared
    reset_at: int | None = None
    #: A rate limit that starts at the first request it refuses and lasts this long (then sets reset_at).
    window_seconds: int | None = None


@dataclass
class _State:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    tweets: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    places: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class XApiPeer:
    """Use as a context manager; `base_url` is what the channel's `api_base_url` is set to."""

    def __init__(
        self,
        *,
        user_id: str = "1501000000000000001",
        username: str = "DKIJakarta",
        name: str = "Pemprov DKI Jakarta",
        bearer_token: str = BEARER_TOKEN,
        consumer_key: str = CONSUMER_KEY,
        access_token: str = ACCESS_TOKEN,
    ) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        #: Ids minted per millisecond, so two tweets of one millisecond get distinct, ordered ids.
        self._sequences: dict[int, int] = {}
        self.user_id = user_id
        self.username = username
        self.bearer_token = bearer_token
        self.consumer_key = consumer_key
        self.access_token = access_token
        self._state.users[user_id] = {"id": user_id, "username": username, "name": name}
        self.requests: list[Recorded] = []
        #: JSON bodies of accepted POST /2/tweets.
        self.posted: list[dict[str, Any]] = []
        self._failure: _Failure | None = None
        self._last_reset: int | None = None
        #: Seconds to wait before answering any request.
        self.delay = 0.0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                peer._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                peer._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="x-api-peer", daemon=True)

    def __enter__(self) -> XApiPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------------ publishing

    def user(self, username: str, name: str | None = None) -> str:
        """The id of the account @username, created on first use."""
        with self._lock:
            return self._user(username, name)

    def photo(self, name: str = "foto.jpg", data: bytes = TINY_JPEG, *, kind: str = "photo") -> str:
        """Publish an image on the peer's media host; returns its media_key for `tweet(media=...)`."""
        with self._lock:
            key = f"3_{self._mint(datetime.now(UTC))}"
            url = f"{self.base_url}/media/{name}"
            self._state.files[f"/media/{name}"] = ("image/png" if name.endswith(".png") else "image/jpeg", data)
            entry: dict[str, Any] = {"media_key": key, "type": kind, "width": 1, "height": 1}
            entry["url" if kind == "photo" else "preview_image_url"] = url
            self._state.media[key] = entry
            return key

    def place(self, full_name: str, bbox: list[float], *, place_type: str = "city", country_code: str = "ID") -> str:
        """A place (bbox is [west, south, east, north]); returns its id for `tweet(place=...)`."""
        with self._lock:
            place_id = f"{len(self._state.places) + 1:016x}"
            self._state.places[place_id] = {
                "id": place_id,
                "full_name": full_name,
                "name": full_name.split(",")[0],
                "place_type": place_type,
                "country": "Indonesia",
                "country_code": country_code,
                "geo": {"type": "Feature", "bbox": bbox, "properties": {}},
            }
            return place_id

    def tweet(
        self,
        text: str,
        *,
        author: str = "wargajkt",
        created_at: datetime | None = None,
        media: list[str] | None = None,
        place: str | None = None,
        coordinates: tuple[float, float] | None = None,
        reply_to: str | None = None,
        retweet_of: str | None = None,
    ) -> str:
        """Publish a tweet by @author; @handles in the text become mentions. Returns its id.

        `created_at` in the past publishes a tweet X indexed late: its id is lower than newer ones'.
        `coordinates` is (lat, lng).
        """
        with self._lock:
            author_id = self._user(author, None)
            created = created_at or datetime.now(UTC)
            tweet_id = self._mint(created)
            tweet: dict[str, Any] = {
                "id": tweet_id,
                "text": text,
                "edit_history_tweet_ids": [tweet_id],
                "author_id": author_id,
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
                "conversation_id": tweet_id,
                "entities": self._entities(text),
            }
            if reply_to is not None:
                parent = self._state.tweets[reply_to]
                tweet["conversation_id"] = parent["conversation_id"]
                tweet["in_reply_to_user_id"] = parent["author_id"]
                tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            if retweet_of is not None:
                tweet["referenced_tweets"] = [{"type": "retweeted", "id": retweet_of}]
            if media:
                tweet["attachments"] = {"media_keys": list(media)}
                link = f"https://t.co/{tweet_id[-10:]}"
                tweet["text"] = f"{text} {link}"
                tweet["entities"].setdefault("urls", []).append(
                    {
                        "start": len(text) + 1,
                        "end": len(text) + 1 + len(link),
                        "url": link,
                        "expanded_url": f"https://x.com/{author}/status/{tweet_id}/photo/1",
                        "display_url": "pic.x.com/" + tweet_id[-10:],
                        "media_key": media[0],
                    }
                )
            if place is not None or coordinates is not None:
                tweet["geo"] = {}
                if place is not None:
                    tweet["geo"]["place_id"] = place
                if coordinates is not None:
                    tweet["geo"]["coordinates"] = {"type": "Point", "coordinates": [coordinates[1], coordinates[0]]}
            self._state.tweets[tweet_id] = tweet
            return tweet_id

    def publish(self, document: dict[str, Any]) -> list[str]:
        """Publish the tweets of an X API response (a fixture) with fresh ids and creation times, keeping the
        rest (text, entities, expansions); returns the new ids in the order of `document["data"]`."""
        with self._lock:
            includes = document.get("includes", {})
            for user in includes.get("users", []):
                self._state.users[user["id"]] = copy.deepcopy(user)
            for item in includes.get("media", []):
                self._state.media[item["media_key"]] = copy.deepcopy(item)
            for place in includes.get("places", []):
                self._state.places[place["id"]] = copy.deepcopy(place)
            renamed: dict[str, str] = {}
            for tweet in includes.get("tweets", []):
                self._state.tweets.setdefault(tweet["id"], copy.deepcopy(tweet))
            for original in reversed(document.get("data", [])):  # oldest first, as they were posted
                tweet = copy.deepcopy(original)
                new_id = self._mint(datetime.now(UTC))
                renamed[tweet["id"]] = new_id
                if tweet.get("conversation_id") in renamed:
                    tweet["conversation_id"] = renamed[tweet["conversation_id"]]
                elif tweet.get("conversation_id") == tweet["id"]:
                    tweet["conversation_id"] = new_id
                tweet["id"] = new_id
                tweet["edit_history_tweet_ids"] = [new_id]
                tweet["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                self._state.tweets[new_id] = tweet
            return [renamed[t["id"]] for t in document.get("data", [])]

    def publish_fixture(self, path: Path) -> list[str]:
        return self.publish(json.loads(path.read_text(encoding="utf-8")))

    # -------------------------------------------------------------------------------- failures

    def fail(self, status: int, *, times: int | None = None) -> None:
        """Answer `status` to the next `times` requests (None: until `recover`)."""
        with self._lock:
            self._failure = _Failure(status, times)

    def rate_limit_until(self, reset_at: int) -> None:
        """Answer 429 with `x-rate-limit-reset: reset_at` (Unix seconds) to every request until then."""
        with self._lock:
            self._failure = _Failure(429, None, reset_at)

    def rate_limit_for(self, seconds: int) -> None:
        """Answer 429 from the next request on, for `seconds` counted from that request (its reset time is
        then in `rate_limit_reset`): a test does not depend on how long Kanal takes to start."""
        with self._lock:
            self._failure = _Failure(429, None, None, seconds)

    @property
    def rate_limit_reset(self) -> int | None:
        """The reset time (Unix seconds) the current or last rate limit announced."""
        with self._lock:
            return self._last_reset

    def recover(self) -> None:
        with self._lock:
            self._failure = None

    # ------------------------------------------------------------------------------- inspection

    def api_requests(self, method: str = "GET") -> list[Recorded]:
        """Requests to the API (not the media host), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith("/2/")]

    # ---------------------------------------------------------------------------------- serving

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.time()
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(handler.path)
        params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {key.lower(): value for key, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body
        with self._lock:
            status, payload, extra = self._answer(method, parts.path, params, headers, body)
            self.requests.append(Recorded(arrived, method, parts.path, params, headers, status, body))
        if isinstance(payload, tuple):
            content_type, data = payload
        else:
            content_type, data = "application/json", json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path.startswith("/media/"):
            served = self._state.files.get(path)
            return (200, served, {}) if served else (404, _problem(404, "Not Found"), {})
        failure = self._failure
        if failure is not None and failure.window_seconds is not None and failure.reset_at is None:
            failure.reset_at = int(time.time()) + 1 + failure.window_seconds
        if failure is not None and failure.reset_at is not None and time.time() >= failure.reset_at:
            self._failure = failure = None
        if failure is not None:
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            extra = {}
            if failure.status == 429:
                extra = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0"}
                extra["x-rate-limit-reset"] = str(failure.reset_at or int(time.time()) + 900)
                self._last_reset = int(extra["x-rate-limit-reset"])
            return failure.status, _problem(failure.status, _REASONS.get(failure.status, "Error")), extra
        limits = {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "449",
            "x-rate-limit-reset": str(int(time.time()) + 900),
        }
        if method == "POST" and path == "/2/tweets":
            if not self._user_context(headers.get("authorization", "")):
                return 401, _problem(401, "Unauthorized"), {}
            status, payload = self._create(body)
            return status, payload, limits
        if method != "GET":
            return 404, _problem(404, "Not Found"), {}
        if headers.get("authorization") != f"Bearer {self.bearer_token}":
            return 401, _problem(401, "Unauthorized"), {}
        segments = path.strip("/").split("/")
        if len(segments) == 4 and segments[:2] == ["2", "users"] and segments[3] == "mentions":
            user_id = segments[2]
            if user_id not in self._state.users:
                return 404, _problem(404, "Not Found Error", detail=f"Could not find user with id: [{user_id}]."), {}
            candidates = [t for t in self._state.tweets.values() if _mentions(t, user_id)]
            status, payload = self._page(candidates, params, low=5, token_name="pagination_token")
            return status, payload, limits
        if path == "/2/tweets/search/recent":
            query = params.get("query", "")
            if not query:
                return 400, _invalid("query", "The `query` query parameter can not be empty"), {}
            candidates = [t for t in self._state.tweets.values() if _matches(t, query)]
            status, payload = self._page(candidates, params, low=10, token_name="next_token")
            return status, payload, limits
        return 404, _problem(404, "Not Found"), {}

    def _page(
        self, candidates: list[dict[str, Any]], params: dict[str, str], *, low: int, token_name: str
    ) -> tuple[int, Any]:
        try:
            limit = int(params.get("max_results", "10"))
        except ValueError:
            return 400, _invalid("max_results", "max_results must be a number")
        if not low <= limit <= 100:
            return 400, _invalid(
                "max_results", f"The `max_results` query parameter value [{limit}] is not between {low} and 100"
            )
        chosen = sorted(candidates, key=lambda t: int(t["id"]), reverse=True)
        if "since_id" in params:
            chosen = [t for t in chosen if int(t["id"]) > int(params["since_id"])]
        elif "start_time" in params:
            start = _time(params["start_time"]).replace(microsecond=0)
            chosen = [t for t in chosen if _time(t["created_at"]).replace(microsecond=0) >= start]
        if "until_id" in params:
            chosen = [t for t in chosen if int(t["id"]) < int(params["until_id"])]
        elif "end_time" in params:
            end = _time(params["end_time"])
            chosen = [t for t in chosen if _time(t["created_at"]) < end]
        token = params.get(token_name)
        if token:
            if not token.startswith("pg") or not token[2:].isdigit():
                return 400, _invalid(token_name, "Invalid pagination token")
            chosen = [t for t in chosen if int(t["id"]) < int(token[2:])]
        page, rest = chosen[:limit], chosen[limit:]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if rest:
            meta["next_token"] = f"pg{page[-1]['id']}"
        if not page:
            return 200, {"meta": meta}
        return 200, {**self._expand(page, params), "meta": meta}

    def _expand(self, page: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        expansions = _listed(params.get("expansions"))
        tweet_fields = set(_DEFAULT_TWEET_FIELDS) | _listed(params.get("tweet.fields"))
        tweet_fields |= {_EXPANSION_FIELDS[e] for e in expansions if e in _EXPANSION_FIELDS}
        user_ids: list[str] = []
        media_keys: list[str] = []
        place_ids: list[str] = []
        referenced: list[str] = []
        for tweet in page:
            if "author_id" in expansions and tweet.get("author_id"):
                user_ids.append(tweet["author_id"])
            if "entities.mentions.username" in expansions:
                user_ids += [m["id"] for m in tweet.get("entities", {}).get("mentions", []) if m.get("id")]
            if "attachments.media_keys" in expansions:
                media_keys += tweet.get("attachments", {}).get("media_keys", [])
            if "geo.place_id" in expansions and tweet.get("geo", {}).get("place_id"):
                place_ids.append(tweet["geo"]["place_id"])
            if "referenced_tweets.id" in expansions:
                referenced += [r["id"] for r in tweet.get("referenced_tweets", [])]
        includes: dict[str, list[dict[str, Any]]] = {}
        users = _pick(self._state.users, user_ids, _DEFAULT_USER_FIELDS, params.get("user.fields"))
        media = _pick(self._state.media, media_keys, _DEFAULT_MEDIA_FIELDS, params.get("media.fields"))
        places = _pick(self._state.places, place_ids, _DEFAULT_PLACE_FIELDS, params.get("place.fields"))
        tweets = [
            _only(self._state.tweets[i], tweet_fields) for i in dict.fromkeys(referenced) if i in self._state.tweets
        ]
        for key, items in (("users", users), ("media", media), ("places", places), ("tweets", tweets)):
            if items:
                includes[key] = items
        document: dict[str, Any] = {"data": [_only(t, tweet_fields) for t in page]}
        if includes:
            document["includes"] = includes
        return document

    def _create(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return 400, _invalid("text", "A tweet needs text")
        if _weight(body["text"]) > 280:
            return 400, _invalid("text", "Your Tweet text is too long.")
        reply = body.get("reply") or {}
        parent_id = reply.get("in_reply_to_tweet_id")
        parent = self._state.tweets.get(parent_id) if parent_id else None
        if parent_id is not None and parent is None:
            return 400, _invalid("reply.in_reply_to_tweet_id", "The Tweet you are replying to does not exist.")
        self.posted.append(body)
        now = datetime.now(UTC)
        tweet_id = self._mint(now)
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": body["text"],
            "edit_history_tweet_ids": [tweet_id],
            "author_id": self.user_id,
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": parent["conversation_id"] if parent else tweet_id,
            "entities": self._entities(body["text"]),
        }
        if parent is not None:
            tweet["in_reply_to_user_id"] = parent["author_id"]
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent_id}]
        self._state.tweets[tweet_id] = tweet
        return 201, {"data": {"id": tweet_id, "text": body["text"], "edit_history_tweet_ids": [tweet_id]}}

    def _user_context(self, authorization: str) -> bool:
        # The signature itself is not checked (it is made over api.twitter.com URLs); the key and token are.
        return (
            authorization.startswith("OAuth ")
            and f'oauth_consumer_key="{self.consumer_key}"' in authorization
            and f'oauth_token="{self.access_token}"' in authorization
            and "oauth_signature=" in authorization
        )

    def _user(self, username: str, name: str | None) -> str:
        for user in self._state.users.values():
            if user["username"].lower() == username.lower():
                return str(user["id"])
        user_id = str(1_300_000_000_000_000_000 + len(self._state.users))
        self._state.users[user_id] = {"id": user_id, "username": username, "name": name or username.title()}
        return user_id

    def _entities(self, text: str) -> dict[str, Any]:
        mentions = []
        for token in _tokens(text):
            start, word = token
            if word.startswith("@") and len(word) > 1:
                handle = word[1:].rstrip(".,:;!?")
                mentions.append(
                    {"start": start, "end": start + 1 + len(handle), "username": handle, "id": self._user(handle, None)}
                )
        return {"mentions": mentions} if mentions else {}

    def _mint(self, created: datetime) -> str:
        """A snowflake id for a tweet created at `created`, unique even within one millisecond."""
        ms = int(created.timestamp() * 1000)
        sequence = self._sequences.get(ms, 0)
        self._sequences[ms] = sequence + 1
        return str(((ms - SNOWFLAKE_EPOCH_MS) << 22) | sequence)


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _problem(status: int, title: str, *, detail: str | None = None) -> dict[str, Any]:
    """X's error shape (RFC 7807 problem details)."""
    return {"title": title, "detail": detail or title, "type": "about:blank", "status": status}


def _invalid(parameter: str, message: str) -> dict[str, Any]:
    return {
        "errors": [{"parameters": {parameter: []}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _listed(value: str | None) -> set[str]:
    return {item for item in (value or "").split(",") if item}


def _only(item: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {key: copy.deepcopy(value) for key, value in item.items() if key in fields}


def _pick(
    store: dict[str, dict[str, Any]], keys: list[str], defaults: tuple[str, ...], asked: str | None
) -> list[dict[str, Any]]:
    fields = set(defaults) | _listed(asked)
    return [_only(store[key], fields) for key in dict.fromkeys(keys) if key in store]


def _mentions(tweet: dict[str, Any], user_id: str) -> bool:
    return any(m.get("id") == user_id for m in tweet.get("entities", {}).get("mentions", []))


def _matches(tweet: dict[str, Any], query: str) -> bool:
    text = tweet.get("text", "").lower()
    retweet = any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets", []))
    for term in query.lower().split():
        if term == "-is:retweet":
            if retweet:
                return False
        elif term.startswith("-"):
            if term[1:] in text:
                return False
        elif term not in text:
            return False
    return True


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    for word in text.split(" "):
        yield position, word
        position += len(word) + 1


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _weight(text: str) -> int:
    """X's count, roughly: links 23, Latin text 1 per character, the rest 2."""
    weight = 0
    rest = re.sub(r"https?://\S+", lambda _: "\x00" * 23, text)
    for ch in rest:
        weight += 1 if ch == "\x00" or ord(ch) <= 4351 else 2
    return weight
