"""What the Facebook Page and Instagram adapters share beyond webhook security (that is `adapters.meta`).

Both receive Graph webhooks `{"object": ..., "entry": [{"id", "time", "changes": [...], "messaging": [...]}]}`
where `messaging[]` carries Messenger-platform chat events of one shape on both (Messenger and Instagram
Direct), and both answer through the Graph API with a Page or Instagram access token. This module holds
the parts that do not depend on which: reading the envelope, parsing a chat event, collecting the
messages of a batch, posting to the Graph API and telling retryable failures from final ones, the
24-hour messaging window, and where media may be downloaded from.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from adapters.contract import Assembly, InboundMessage, Location, MediaRef, RawRequest, Sender
from adapters.errors import ChannelUnavailable, PayloadIgnored, PayloadRejected
from adapters.media_download import host_allowed, hosts_of
from adapters.meta import MEDIA_HOSTS, MetaSettings

#: Meta lets a business answer a chat freely for 24 hours after the person's latest message.
MESSAGING_WINDOW = timedelta(hours=24)
#: A burst of chat messages within this many seconds of each other is one complaint.
CHAT_ASSEMBLY_SECONDS = 120.0
#: The longest text `InboundMessage` holds; longer posts are cut (the raw delivery keeps all of it).
MAX_TEXT = 20_000
#: Graph error codes that mean "slow down" or "try again", even when answered with HTTP 400.
RETRYABLE_GRAPH_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80001, 80002, 80004, 80006})
#: Graph ids we put into a request path: digits, letters and underscores, so a payload can never choose the path.
_GRAPH_ID = re.compile(r"^[0-9A-Za-z_]{1,100}$")
#: Messaging events that carry nothing to store; named in the ignore reason.
_NON_MESSAGE_EVENTS = (
    "delivery",
    "read",
    "reaction",
    "postback",
    "message_edit",
    "optin",
    "referral",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "policy_enforcement",
    "game_play",
)
#: Attachment types whose `payload.url` is a file the citizen sent (or shared) worth keeping.
_MEDIA_ATTACHMENTS = frozenset(
    {"image", "video", "audio", "file", "story_mention", "share", "ig_reel", "reel", "ig_post", "animated_image"}
)


class Skip(Exception):
    """One event has nothing to store (an echo, a receipt, an edit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(Exception):
    """One event does not have the shape Meta documents."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------------------- envelope


def load_entries(request: RawRequest, expected_object: str, what: str) -> list[Any]:
    """The `entry` list of a webhook body for `expected_object`; `PayloadRejected` for anything else."""
    if not request.body.strip():
        raise PayloadRejected(f"empty body; Meta sends one JSON object per {what} webhook delivery")
    try:
        document = json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadRejected(f"body is not valid UTF-8 JSON ({exc}); expected a Meta {what} webhook") from None
    except RecursionError:
        raise PayloadRejected(f"body nests too deeply to be a Meta {what} webhook") from None
    if not isinstance(document, dict):
        raise PayloadRejected(f"body must be one JSON object with `object` and `entry`, as Meta sends {what} webhooks")
    kind = document.get("object")
    if kind != expected_object:
        raise PayloadRejected(
            f"object is {str(kind)[:60]!r}, this channel takes {what} webhooks (object {expected_object!r}); "
            "point that subscription at a channel of its own type",
            status_code=422,
        )
    entries = document.get("entry")
    if not isinstance(entries, list):
        raise PayloadRejected("`entry` must be a list of entries, as Meta sends them", status_code=422)
    return entries


class Batch:
    """The messages of one delivery, and why the rest of its events were left out.

    One bad event must not lose the good ones beside it: they are stored (and the raw delivery with
    them, so nothing is lost). Only a delivery with nothing to store is refused (when some event was
    malformed, so it is quarantined) or ignored (when every event was a receipt, an echo, an edit...).
    """

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.ignored: list[str] = []
        self.malformed: list[str] = []

    def add(self, build: Callable[..., InboundMessage], *args: Any, **kwargs: Any) -> None:
        """Collect `build(*args, **kwargs)`: a message, or why there is none."""
        try:
            self.messages.append(build(*args, **kwargs))
        except Skip as skip:
            self.ignored.append(skip.reason)
        except Malformed as bad:
            self.malformed.append(bad.reason)
        except ValidationError as exc:
            # An id or key too long for Kanal's models (Meta's are far shorter): this event cannot be kept.
            self.malformed.append(f"event has values out of range ({exc.error_count()} problem(s))")

    def skip(self, reason: str) -> None:
        self.ignored.append(reason)

    def refuse(self, reason: str) -> None:
        self.malformed.append(reason)

    def result(self) -> list[InboundMessage]:
        if self.messages:
            return self.messages
        if self.malformed:
            raise PayloadRejected("nothing stored: " + "; ".join(_unique(self.malformed))[:1500], status_code=422)
        if self.ignored:
            raise PayloadIgnored("; ".join(_unique(self.ignored))[:1000])
        raise PayloadIgnored("the delivery has no entries")


def _unique(reasons: list[str]) -> list[str]:
    return list(dict.fromkeys(reasons))


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects of a list, skipping anything else."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def dig(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]...`, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def graph_id(value: Any) -> str | None:
    """A Graph id as text: Meta sends strings, some tools numbers; anything else is no id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 0 < len(value.strip()) <= 200:
        return value.strip()
    return None


def text_of(value: Any) -> str:
    """A text field, or "" when missing; cut to what a message holds."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 6] + " [...]"


def short(value: Any, limit: int = 200) -> str | None:
    """A name or handle, cut to what `Sender` holds; None when missing."""
    return value[:limit] if isinstance(value, str) and value.strip() else None


def epoch(value: Any) -> datetime | None:
    """A Unix time in seconds or milliseconds (Meta uses both, some test events as text) as an aware UTC
    datetime, or None."""
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    seconds = value / 1000 if value > 100_000_000_000 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def media_ref(url: Any) -> MediaRef | None:
    """A media ref for an http(s) URL, or None for anything that is not one.

    No content type: Meta does not say one, and the download finds the real one."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2000:
        return None
    return MediaRef(url=url)


def is_meta_media(url: str) -> bool:
    """Whether `url` is on one of Meta's media hosts (a photo on its CDN, not a link elsewhere)."""
    return host_allowed(url, MEDIA_HOSTS)


def build_message(**fields: Any) -> InboundMessage:
    """`InboundMessage(**fields)`, with a value the model refuses reported as a malformed event."""
    try:
        return InboundMessage(**fields)
    except ValidationError as exc:
        problems = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise Malformed(f"event has values out of range ({problems})") from None


# --------------------------------------------------------------------------------------- chat events


def own_entries(
    request: RawRequest, batch: Batch, *, expected_object: str, label: str, own_id: str, what: str
) -> Iterator[dict[str, Any]]:
    """The delivery's entries for this channel's Page or account (`own_id`): one Meta app may serve several,
    so entries for another are skipped; an entry that is not an object is refused."""
    for entry in load_entries(request, expected_object, label):
        if not isinstance(entry, dict):
            batch.refuse("an entry is not an object")
            continue
        entry_id = graph_id(entry.get("id"))
        if entry_id != own_id:
            batch.skip(f"entry for {what} {str(entry_id)[:40]}, not this channel's {what} {own_id}")
            continue
        yield entry


def entry_changes(entry: dict[str, Any], batch: Batch) -> list[Any]:
    """An entry's `changes` list (feed, comments, mentions); refused when it is not a list."""
    changes = entry.get("changes", [])
    if not isinstance(changes, list):
        batch.refuse("`changes` is not a list")
        return []
    return changes


def messaging_events(entry: dict[str, Any]) -> Iterator[Any]:
    """The chat events of an entry: `messaging[]`, and `standby[]` (messages seen while another app,
    such as the Page inbox, holds the conversation: still a citizen writing to us)."""
    for key in ("messaging", "standby"):
        events = entry.get(key)
        if isinstance(events, list):
            yield from events


def chat_message(event: Any, *, own_id: str, thread_prefix: str, assembly_prefix: str) -> InboundMessage:
    """One Messenger-platform chat event (Messenger or Instagram Direct) as a message.

    `thread_id` is `thread_prefix + sender id`, which is how `send` knows to answer by chat; a burst of
    messages from one person is one complaint (`Assembly` keyed `assembly_prefix + sender id`).
    Raises `Skip` for what is not a citizen's message and `Malformed` for what lacks its ids.
    """
    if not isinstance(event, dict):
        raise Malformed("a messaging event is not an object")
    message = event.get("message")
    if message is None:
        kind = next((key for key in _NON_MESSAGE_EVENTS if key in event), "non-message")
        raise Skip(f"{kind} event")
    if not isinstance(message, dict):
        raise Malformed("`message` is not an object")
    sender_id = graph_id(dig(event, "sender", "id"))
    if message.get("is_echo") is True or (sender_id is not None and sender_id == own_id):
        raise Skip("echo of our own message")
    if message.get("is_deleted") is True:
        raise Skip("the sender deleted a message")
    if message.get("is_unsupported") is True:
        raise Skip("a message type the API does not show (see the inbox in Meta's app)")
    mid = graph_id(message.get("mid"))
    if mid is None:
        raise Malformed("a message without `mid`")
    if sender_id is None:
        raise Malformed(f"message {mid[:60]} has no sender.id")

    text = text_of(message.get("text"))
    if not text.strip():
        # A quick reply's payload stands in for a missing text (the text is usually the button's title).
        text = text_of(dig(message, "quick_reply", "payload"))
    media, location, links = _attachments(message.get("attachments"))
    # Say what a story event is: the text alone ("di sini juga") means little to an admin.
    if any(attachment.get("type") == "story_mention" for attachment in dicts(message.get("attachments"))):
        text = f"[Mention di story] {text}".strip()
    if dig(message, "reply_to", "story") is not None:
        # The story is ours, not the citizen's photo: named, not attached.
        text = f"[Balasan story] {text}".strip()
    if links:
        text = "\n".join([text, *links]) if text else "\n".join(links)
    if not text.strip() and not media and location is None:
        raise Skip("a message with nothing to store (a sticker, a reaction or an empty message)")
    return build_message(
        external_id=mid,
        text=text_of(text),
        sender=Sender(id=sender_id),
        location=location,
        media=media[:20],
        sent_at=epoch(event.get("timestamp")),
        thread_id=f"{thread_prefix}{sender_id}",
        assembly=Assembly(key=f"{assembly_prefix}{sender_id}", window_seconds=CHAT_ASSEMBLY_SECONDS),
    )


def _attachments(value: Any) -> tuple[list[MediaRef], Location | None, list[str]]:
    """Files, a shared location and shared links of a chat message."""
    media: list[MediaRef] = []
    location: Location | None = None
    links: list[str] = []
    for attachment in dicts(value):
        kind = attachment.get("type")
        payload = attachment.get("payload")
        if kind == "location":
            location = location or _location(attachment)
        elif isinstance(kind, str) and kind in _MEDIA_ATTACHMENTS and dig(payload, "sticker_id") is None:
            ref = media_ref(dig(payload, "url"))
            if ref is not None:
                media.append(ref)
        elif kind == "fallback":
            # A link the person shared (a news article, a map): kept for the admin to open.
            url = dig(payload, "url") or attachment.get("url")
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                title = short(attachment.get("title")) or short(dig(payload, "title"))
                links.append(f"[Tautan] {title + ' ' if title else ''}{url[:2000]}")
    return media, location, links


def _location(attachment: dict[str, Any]) -> Location | None:
    coordinates = dig(attachment, "payload", "coordinates")
    lat, lng = dig(coordinates, "lat"), dig(coordinates, "long")
    if lng is None:
        lng = dig(coordinates, "lng")
    title = short(attachment.get("title"), 1000)
    if not _finite(lat) or not _finite(lng):
        return Location(address=title) if title else None
    try:
        return Location(lat=lat, lng=lng, address=title)
    except ValidationError:
        return Location(address=title) if title else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------- replies


def within_window(last_inbound_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a chat reply is still inside Meta's 24-hour window (unknown counts as outside)."""
    if last_inbound_at is None:
        return False
    return (now or datetime.now(UTC)) - last_inbound_at < MESSAGING_WINDOW


def path_id(value: str | None, what: str) -> str:
    """A Graph id safe to put in a request path; a final `ChannelUnavailable` otherwise."""
    if value is None or not _GRAPH_ID.match(value):
        raise ChannelUnavailable(
            f"cannot reply: {what} {str(value)[:60]!r} is not a Graph id; the citizen's message has no usable "
            "reply target, answer them in Meta's app",
            retryable=False,
        )
    return quote(value, safe="")


def chunks(text: str, *, max_chars: int, max_bytes: int | None = None) -> list[str]:
    """`text` split at spaces or line breaks into parts Meta accepts (Messenger 2000 characters,
    Instagram Direct 1000 bytes), each part as long as allowed."""

    def fits(part: str) -> bool:
        return len(part) <= max_chars and (max_bytes is None or len(part.encode()) <= max_bytes)

    parts: list[str] = []
    rest = text.strip()
    while rest:
        if fits(rest):
            parts.append(rest)
            break
        cut = max_chars
        while cut > 1 and not fits(rest[:cut]):
            cut -= 1
        space = max(rest.rfind(" ", 0, cut + 1), rest.rfind("\n", 0, cut + 1))
        if space > cut // 2:
            cut = space
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts


async def graph_post(settings: MetaSettings, path: str, payload: dict[str, Any], *, channel_id: str) -> dict[str, Any]:
    """POST `payload` to `{graph_base_url}/{path}` with the channel's token; the JSON answer.

    The token travels in the Authorization header, never the URL (URLs end up in logs). Raises
    `NotImplementedError` without a token, `ChannelUnavailable` (retryable or not) when Meta fails.
    """
    if settings.access_token is None:
        raise NotImplementedError(
            f"channel {channel_id} has no access_token: set a Page access token with the messaging and "
            "engagement permissions to answer citizens"
        )
    url = f"{settings.graph_base_url.rstrip('/')}/{path}"
    headers = {"Authorization": f"Bearer {settings.access_token.get_secret_value()}"}
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as http:
            response = await http.post(url, json=payload, headers=headers)
    except httpx.TimeoutException:
        waited = f"{settings.timeout_seconds:g}"
        raise ChannelUnavailable(f"the Graph API did not answer within {waited} s; will retry") from None
    except httpx.HTTPError as exc:
        raise ChannelUnavailable(f"the Graph API could not be reached ({type(exc).__name__}); will retry") from None
    return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if status < 400 and error is None:
        # Accepted: an answer without the id is still a sent reply, and sending it again would repeat it.
        return body if isinstance(body, dict) else {}
    code = error.get("code") if isinstance(error, dict) else None
    subcode = error.get("error_subcode") if isinstance(error, dict) else None
    detail = str(error.get("message", ""))[:300] if isinstance(error, dict) else response.text[:300]
    described = f"{status}, code {code}{f'/{subcode}' if subcode else ''}: {detail}"
    if status == 429 or status >= 500 or code in RETRYABLE_GRAPH_CODES:
        raise ChannelUnavailable(f"the Graph API is busy ({described}); will retry", retry_after=_retry_after(response))
    raise ChannelUnavailable(f"the Graph API refused the reply ({described}); {_hint(code)}", retryable=False)


def _hint(code: Any) -> str:
    if code == 190:
        return "the access_token is invalid or expired: issue a new one and update the channel's settings"
    if code in (10, 200, 230):
        return "the token lacks a permission (pages_messaging, pages_manage_engagement, instagram_manage_comments, ...)"
    if code == 551:
        return "the person cannot be reached on this chat now; answer them another way"
    if code == 100:
        return "Meta refused the request's content or target (an outdated comment, a deleted post, a closed window)"
    return "this will not succeed by retrying; see Meta's error code reference"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: `Retry-After`, or Meta's usage header's estimated time to regain access (minutes)."""
    given = response.headers.get("retry-after", "").strip()
    if given.isdigit():
        return float(given)
    usage = response.headers.get("x-business-use-case-usage")
    if usage:
        try:
            buckets = json.loads(usage)
        except ValueError:
            return None
        minutes = [
            item.get("estimated_time_to_regain_access")
            for items in (buckets.values() if isinstance(buckets, dict) else [])
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]
        waits = [m for m in minutes if isinstance(m, int | float) and not isinstance(m, bool) and m > 0]
        if waits:
            return float(max(waits)) * 60
    return None


async def post_text(
    settings: MetaSettings,
    path: str,
    text: str,
    body: Callable[[str], dict[str, Any]],
    *,
    channel_id: str,
    max_chars: int,
    max_bytes: int | None = None,
) -> str:
    """POST `body(part)` for each part of `text` Meta's length limit allows; the first part's id.

    A failure after the first part is retried whole by Kanal, so a long answer may then arrive twice
    in part; Kanal's own texts are far shorter than any limit.
    """
    created = ""
    for part in chunks(text, max_chars=max_chars, max_bytes=max_bytes):
        answer = await graph_post(settings, path, body(part), channel_id=channel_id)
        created = created or _answer_id(answer)
    return created


def _answer_id(answer: dict[str, Any]) -> str:
    """The created object's id: `message_id` for chat, `id` for comments."""
    for key in ("message_id", "id"):
        value = graph_id(answer.get(key))
        if value is not None:
            return value
    return ""


# --------------------------------------------------------------------------------------------- media


def allowed_hosts(settings: MetaSettings) -> frozenset[str]:
    """Meta's media hosts, plus the configured Graph host (a loopback peer in tests, graph.instagram.com)."""
    return MEDIA_HOSTS | hosts_of(settings.graph_base_url)
