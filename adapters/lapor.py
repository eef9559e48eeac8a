"""`lapor`: complaints addressed to the city on SP4N-LAPOR! 1708, pulled from its REST API; status changes pushed back.

LAPOR!'s integration API is documented only to registered agency developers, so nothing here is
hard-wired to one response shape: the channel's settings name the list endpoint, the credential
header, the cursor parameter and where each field sits in an answer (dotted paths, checked at start).

Pulling: `GET endpoint?<cursor_param>=<cursor>` with the credential header, following next-page links
up to `page_limit` pages. The cursor is the largest `cursor_field` value seen (an id or an update
time) and is sent back as it was received, so LAPOR! is asked from the cursor *inclusive*: an item
updated in the same second as the last one seen is never skipped, and the items at the cursor that
come again are recognised by the inbox as redeliveries. Items that are not addressed to the city
(`filter`) are passed over; items missing an id or a description are quarantined once.

Replying: a status change of the report goes to `status_url` (with the complaint id in it) as JSON
carrying LAPOR!'s own word for the state (`status_labels`) and the message for the citizen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    ChannelSettings,
    FetchResult,
    InboundMessage,
    Location,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
    RejectedItem,
    Sender,
)
from adapters.errors import ChannelUnavailable, PayloadRejected
from adapters.field_mapping import MISSING, DottedPath, get_path, scalar_text, set_path
from adapters.http_helpers import retry_after_seconds, tls
from adapters.media_download import download, hosts_of

log = logging.getLogger(__name__)

USER_AGENT = "Kanal (complaint gateway; LAPOR! integration)"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
_PARAM_NAME = r"^[A-Za-z0-9_.\-\[\]]+$"
#: Kanal states -> LAPOR!'s status words; a deployment changes them in `status_labels`.
DEFAULT_STATUS_LABELS = {
    "received": "Diterima",
    "in_progress": "Diproses",
    "resolved": "Selesai",
    "rejected": "Ditolak",
}
_MAX_MEDIA = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaporFields(_Strict):
    """Where each field of a complaint sits in one item of LAPOR!'s list (dotted paths; None: not mapped)."""

    external_id: DottedPath = "id"
    text: DottedPath = "content"
    title: DottedPath | None = "title"
    sender_id: DottedPath | None = "reporter.id"
    sender_name: DottedPath | None = "reporter.name"
    sender_phone: DottedPath | None = "reporter.phone"
    sender_email: DottedPath | None = "reporter.email"
    lat: DottedPath | None = "location.latitude"
    lng: DottedPath | None = "location.longitude"
    address: DottedPath | None = "location.address"
    created_at: DottedPath | None = "created_at"
    #: The list of attachments; each entry is a URL string or an object holding `photo_url`.
    photos: DottedPath | None = "attachments"
    photo_url: DottedPath = "url"
    photo_content_type: DottedPath | None = "mime_type"


class LaporFilter(_Strict):
    """Keep only items whose value at `field` (or one of its values, for a list) is one of `values`."""

    field: DottedPath
    values: list[str] = Field(min_length=1)


class LaporStatusBody(_Strict):
    """The names (dotted paths, to nest) of the fields of a status push; None leaves a field out."""

    status: DottedPath | None = "status"
    message: DottedPath | None = "message"
    note: DottedPath | None = "note"
    agency: DottedPath | None = "agency"
    changed_at: DottedPath | None = "changed_at"
    ticket: DottedPath | None = "ticket"


class LaporSettings(ChannelSettings):
    #: GET URL listing the complaints (LAPOR!'s integration API, as given to the city's developer account).
    endpoint: HttpUrl
    auth_header: str = Field(default="Authorization", pattern=_HEADER_NAME)
    auth_value: SecretStr = Field(min_length=1)
    cursor_param: str = Field(default="updated_since", pattern=_PARAM_NAME)
    cursor_field: DottedPath = "updated_at"
    #: Where the list of complaints is in an answer; None: the answer itself is the list.
    items_path: DottedPath | None = "data"
    #: Where an answer names the next page: a URL (absolute or relative), or a token for `next_page_param`.
    next_page_path: DottedPath | None = None
    next_page_param: str | None = Field(default=None, pattern=_PARAM_NAME)
    #: Fixed query parameters sent with every list request (e.g. the city's institution id, a page size).
    query: dict[str, str] = Field(default_factory=dict)
    fields: LaporFields = Field(default_factory=LaporFields)
    filter: LaporFilter | None = None
    #: Where a status change goes, e.g. "https://.../complaints/{external_id}/status"; None: no reply path.
    status_url: str | None = None
    status_method: Literal["POST", "PUT", "PATCH"] = "POST"
    status_body: LaporStatusBody = Field(default_factory=LaporStatusBody)
    status_labels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATUS_LABELS))
    #: Where LAPOR!'s answer to a status push holds its id for the update (kept as the sent message's id).
    status_id_path: DottedPath | None = "id"
    #: Time zone of timestamps written without an offset (LAPOR! writes WIB).
    timezone: str = "Asia/Jakarta"
    #: Extra hosts attachments may be downloaded from (the endpoint's host always may).
    media_hosts: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    #: Most pages read in one poll; the rest is read on the next poll, from the cursor reached.
    page_limit: int = Field(default=10, ge=1, le=1000)

    @field_validator("status_url")
    @classmethod
    def _status_url_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(
                f"status_url is not a valid template ({exc}); write e.g. https://.../{{external_id}}"
            ) from None
        if names - {"external_id"}:
            raise ValueError(
                f"status_url may only use the placeholder {{external_id}}, found {sorted(names - {'external_id'})}"
            )
        example = urlsplit(value.replace("{external_id}", "1"))
        if example.scheme not in ("http", "https") or not example.hostname:
            raise ValueError("status_url must be an http(s) URL, e.g. https://lapor.example/api/{external_id}/status")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Jakarta") from None
        return value

    @model_validator(mode="after")
    def _cursor_param_is_ours(self) -> LaporSettings:
        clashes = {self.cursor_param, self.next_page_param} & set(self.query)
        if clashes:
            raise ValueError(f"query must not set {sorted(p for p in clashes if p)}: Kanal sets that parameter itself")
        return self


# ------------------------------------------------------------------------------------------- mapping


@dataclass
class MappedItems:
    """What one list of LAPOR! items holds for Kanal."""

    messages: list[InboundMessage] = field(default_factory=list)
    #: (identity, RejectedItem): items that can never become a message.
    rejected: list[tuple[str, RejectedItem]] = field(default_factory=list)
    #: Items passed over because they are not addressed to the city.
    skipped: int = 0
    #: The `cursor_field` value of each item that has one, in the order returned: (as sent, sort key).
    cursor_values: list[tuple[str, tuple[int, Any]]] = field(default_factory=list)
    #: identity -> cursor value as sent, for the rejected items.
    rejected_at: dict[str, str] = field(default_factory=dict)


class _Unusable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def map_items(items: Any, settings: LaporSettings) -> MappedItems:
    """Turn the list found at `items_path` into messages and rejected items. Pure; never raises."""
    mapped = MappedItems()
    if not isinstance(items, list):
        return mapped
    zone = ZoneInfo(settings.timezone)
    for item in items:
        cursor_text = scalar_text(get_path(item, settings.cursor_field), max_length=200)
        if cursor_text is not None:
            mapped.cursor_values.append((cursor_text, order_key(cursor_text)))
        try:
            if settings.filter is not None and not _addressed_to_us(item, settings.filter):
                mapped.skipped += 1
                continue
            mapped.messages.append(map_item(item, settings, zone))
        except _Unusable as exc:
            identity = item_identity(item, settings)
            raw_id = scalar_text(get_path(item, settings.fields.external_id), max_length=200)
            body = json.dumps(item, ensure_ascii=False, default=str).encode()
            rejected = RejectedItem(
                external_id=raw_id, reason=exc.reason[:2000], body=body, content_type="application/json"
            )
            mapped.rejected.append((identity, rejected))
            if cursor_text is not None:
                mapped.rejected_at[identity] = cursor_text
    return mapped


def read_page(document: Any, settings: LaporSettings) -> MappedItems:
    """One answer of the list endpoint, mapped. Raises `ChannelUnavailable` when it holds no list at all."""
    items = document if settings.items_path is None else get_path(document, settings.items_path)
    if not isinstance(items, list):
        found = "nothing" if items is MISSING else type(items).__name__
        raise ChannelUnavailable(
            f"LAPOR!'s answer has no list at items_path {settings.items_path!r} (found {found}); check items_path",
            retryable=False,
        )
    return map_items(items, settings)


def item_identity(item: Any, settings: LaporSettings) -> str:
    """A stable name for an item: its id when it has one, else a hash of its content."""
    raw_id = scalar_text(get_path(item, settings.fields.external_id), max_length=200)
    if raw_id is not None:
        return f"id:{raw_id}"
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _addressed_to_us(item: Any, rule: LaporFilter) -> bool:
    """Whether the item is for the city. An item without the field at all is unusable, not someone else's:
    a renamed field must not make every complaint silently pass by."""
    if not isinstance(item, dict):
        raise _Unusable(f"a complaint must be a JSON object, got {type(item).__name__}")
    value = get_path(item, rule.field)
    if value is MISSING:
        raise _Unusable(f"no value at filter.field {rule.field!r}, so it cannot tell whom the complaint is for")
    candidates = value if isinstance(value, list) else [value]
    return any(scalar_text(c) in rule.values for c in candidates)


def map_item(item: Any, settings: LaporSettings, zone: ZoneInfo | None = None) -> InboundMessage:
    """One complaint as an inbound message; raises `_Unusable` with the reason when it cannot be one."""
    if not isinstance(item, dict):
        raise _Unusable(f"a complaint must be a JSON object, got {type(item).__name__}")
    paths = settings.fields
    external_id = scalar_text(get_path(item, paths.external_id), max_length=10_000)
    if external_id is None:
        raise _Unusable(f"no complaint id at {paths.external_id!r}; check fields.external_id")
    if len(external_id) > 200:
        raise _Unusable(f"the complaint id at {paths.external_id!r} is longer than 200 characters")
    description = scalar_text(get_path(item, paths.text))
    if description is None:
        raise _Unusable(f"complaint {external_id} has no description at {paths.text!r}; check fields.text")
    title = scalar_text(get_path(item, paths.title)) if paths.title else None
    text = f"{title}\n\n{description}" if title and not description.startswith(title) else description
    try:
        return InboundMessage(
            external_id=external_id,
            text=text[:20_000],
            sender=_sender(item, paths),
            location=_location(item, paths),
            media=_media(item, paths, str(settings.endpoint)),
            sent_at=_timestamp(get_path(item, paths.created_at), zone or ZoneInfo(settings.timezone))
            if paths.created_at
            else None,
            thread_id=external_id,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise _Unusable(f"complaint {external_id} does not fit a message: {problems}") from None


def _optional(item: dict[str, Any], path: str | None, max_length: int) -> str | None:
    return scalar_text(get_path(item, path), max_length=max_length) if path else None


def _sender(item: dict[str, Any], paths: LaporFields) -> Sender | None:
    values = {
        "id": _optional(item, paths.sender_id, 200),
        "name": _optional(item, paths.sender_name, 200),
        "phone": _optional(item, paths.sender_phone, 40),
        "email": _optional(item, paths.sender_email, 320),
    }
    present = {k: v for k, v in values.items() if v is not None}
    return Sender(**present) if present else None


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and -limit <= number <= limit else None


def _location(item: dict[str, Any], paths: LaporFields) -> Location | None:
    lat = _coordinate(get_path(item, paths.lat), 90) if paths.lat else None
    lng = _coordinate(get_path(item, paths.lng), 180) if paths.lng else None
    if lat is None or lng is None:
        lat = lng = None  # half a coordinate places nothing
    address = _optional(item, paths.address, 1000)
    if lat is None and address is None:
        return None
    return Location(lat=lat, lng=lng, address=address)


def _media(item: dict[str, Any], paths: LaporFields, endpoint: str) -> list[MediaRef]:
    if not paths.photos:
        return []
    entries = get_path(item, paths.photos)
    if not isinstance(entries, list):
        entries = [entries] if isinstance(entries, dict | str) else []
    refs: list[MediaRef] = []
    for entry in entries:
        if len(refs) >= _MAX_MEDIA:
            break
        if isinstance(entry, str):
            url, content_type = scalar_text(entry), None
        else:
            url = scalar_text(get_path(entry, paths.photo_url))
            content_type = _optional(entry, paths.photo_content_type, 200) if isinstance(entry, dict) else None
        if url is None:
            continue
        absolute = urljoin(endpoint, url)
        if urlsplit(absolute).scheme not in ("http", "https") or len(absolute) > 2000:
            continue
        refs.append(MediaRef(url=absolute, content_type=content_type))
    return refs


def _timestamp(value: Any, zone: ZoneInfo) -> datetime | None:
    """An ISO 8601 text or a Unix time (seconds or milliseconds) as an aware datetime; None otherwise."""
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    try:
        if isinstance(value, int | float):
            seconds = float(value) / 1000 if abs(value) > 100_000_000_000 else float(value)
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"\d{9,13}", text):
                return _timestamp(int(text), zone)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def order_key(value: str) -> tuple[int, Any]:
    """How cursor values compare: numbers as numbers, timestamps as instants, anything else as text."""
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return (0, float(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (2, text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (1, parsed.timestamp())


# -------------------------------------------------------------------------------------------- cursor


@dataclass(frozen=True)
class LaporCursor:
    """Where the next poll starts (`since`, inclusive) and the unusable items already quarantined there."""

    since: str | None = None
    rejected: tuple[str, ...] = ()

    def encode(self) -> str | None:
        if self.since is None and not self.rejected:
            return None
        return json.dumps({"since": self.since, "rejected": list(self.rejected)}, ensure_ascii=False)

    @classmethod
    def decode(cls, cursor: str | None) -> LaporCursor:
        """A stored cursor; a bare value (typed in by an operator to start elsewhere) is taken as `since`."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(since=scalar_text(cursor, max_length=200))
        since = data.get("since")
        rejected = data.get("rejected")
        return cls(
            since=scalar_text(since, max_length=200),
            rejected=tuple(r for r in rejected if isinstance(r, str)) if isinstance(rejected, list) else (),
        )


# ------------------------------------------------------------------------------------------- adapter


class LaporAdapter(Adapter[LaporSettings]):
    channel_type: ClassVar[str] = "lapor"
    settings_model: ClassVar[type[ChannelSettings]] = LaporSettings
    description: ClassVar[str] = "SP4N-LAPOR! 1708: the city's complaints pulled, status changes pushed back"
    pulls = True
    media_hosts: ClassVar[frozenset[str]] = frozenset({"lapor.go.id"})
    trusted_by_default: ClassVar[bool] = False
    #: LAPOR! expects the agency to confirm receipt ("Diterima"); Kanal's acknowledgement does that.
    acknowledge_receipt: ClassVar[bool] = True

    # Nothing is pushed to a LAPOR! channel: its route refuses whatever arrives.
    def verify(self, request: RawRequest) -> None:
        """Nothing to check: `parse` refuses every push."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        raise PayloadRejected(
            "this channel pulls complaints from LAPOR!; nothing may be pushed to it (configure the endpoint instead)",
            status_code=405,
        )

    # -- pulling ---------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            self.settings.auth_header: self.settings.auth_value.get_secret_value(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    async def fetch(self, cursor: str | None) -> FetchResult:
        state = LaporCursor.decode(cursor)
        settings = self.settings
        endpoint = str(settings.endpoint)
        base_params = dict(settings.query)
        if state.since is not None:
            base_params[settings.cursor_param] = state.since
        url: str = endpoint
        params: dict[str, str] | None = base_params
        seen_urls: set[str] = set()
        messages: dict[str, InboundMessage] = {}
        rejected: dict[str, RejectedItem] = {}
        rejected_at: dict[str, str] = {}
        cursor_values: list[tuple[str, tuple[int, Any]]] = []
        truncated = False
        async with httpx.AsyncClient(timeout=settings.timeout_seconds, verify=tls(), follow_redirects=False) as http:
            for page in range(1, settings.page_limit + 1):
                seen_urls.add(_full_url(url, params))
                document = await self._get_json(http, url, params)
                mapped = read_page(document, settings)
                for message in mapped.messages:
                    messages.setdefault(message.external_id, message)
                for identity, item in mapped.rejected:
                    rejected.setdefault(identity, item)
                rejected_at.update(mapped.rejected_at)
                cursor_values += mapped.cursor_values
                following = self._next_page(document, url, base_params)
                if following is None or _full_url(*following) in seen_urls:
                    break
                if page == settings.page_limit:
                    truncated = True
                    break
                url, params = following
        since = _next_since(state.since, cursor_values, truncated=truncated)
        # Items at the boundary come again on the next poll (asked inclusive): remember which of them were
        # already quarantined, so a poison item is quarantined once, not once per poll.
        fresh = {identity: item for identity, item in rejected.items() if identity not in state.rejected}
        at_boundary = {identity for identity, value in rejected_at.items() if value == since}
        if since == state.since:
            at_boundary |= set(state.rejected)
        if truncated:
            log.info("lapor %s: read %d pages, the page limit; the rest comes next poll", self.channel_id, page)
        return FetchResult(
            messages=list(messages.values()),
            cursor=LaporCursor(since=since, rejected=tuple(sorted(at_boundary))).encode(),
            rejected=list(fresh.values()),
        )

    def _next_page(
        self, document: Any, current_url: str, base_params: dict[str, str]
    ) -> tuple[str, dict[str, str] | None] | None:
        settings = self.settings
        if settings.next_page_path is None:
            return None
        value = scalar_text(get_path(document, settings.next_page_path))
        if value is None:
            return None
        if settings.next_page_param is not None:
            return str(settings.endpoint), {**base_params, settings.next_page_param: value}
        following = urljoin(current_url, value)
        if not _same_origin(following, str(settings.endpoint)):
            raise ChannelUnavailable(
                f"LAPOR!'s next-page link leads to {urlsplit(following).hostname or following!r}, not the endpoint's "
                "host; the credential is only sent to the endpoint. Check next_page_path, or set next_page_param "
                "if the value is a page token",
                retryable=False,
            )
        return following, None

    async def _get_json(self, http: httpx.AsyncClient, url: str, params: dict[str, str] | None) -> Any:
        try:
            response = await http.get(url, params=params, headers=self._headers())
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"LAPOR! unreachable ({type(exc).__name__}); will retry") from None
        status = response.status_code
        if status in (401, 403):
            raise ChannelUnavailable(
                f"LAPOR! refused the credentials ({status}); renew auth_value (and check auth_header)", retryable=False
            )
        if status == 429:
            raise ChannelUnavailable(
                "LAPOR! asks us to slow down (429); will retry",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise ChannelUnavailable(f"LAPOR! answered {status}; will retry")
        if status != 200:
            raise ChannelUnavailable(
                f"LAPOR! answered {status} to the complaint list; check endpoint, cursor_param and query",
                retryable=False,
            )
        try:
            return json.loads(response.content)
        except (UnicodeDecodeError, ValueError):
            raise ChannelUnavailable("LAPOR! answered something that is not JSON (a proxy page?); will retry") from None

    # -- replying --------------------------------------------------------------------------------

    async def send(self, reply: OutboundReply) -> str:
        """Push the status change (and the message for the citizen) to the complaint on LAPOR!."""
        settings = self.settings
        if settings.status_url is None:
            raise NotImplementedError(
                f"channel {self.channel_id} has no status_url: set it so LAPOR! hears status changes"
            )
        complaint_id = reply.in_reply_to or reply.thread_id
        if not complaint_id:
            raise ChannelUnavailable(
                "no LAPOR! complaint id to update (the reply has neither in_reply_to nor thread_id)", retryable=False
            )
        url = settings.status_url.replace("{external_id}", quote(complaint_id, safe=""))
        body = self.status_body(reply)
        try:
            async with httpx.AsyncClient(
                timeout=settings.timeout_seconds, verify=tls(), follow_redirects=False
            ) as http:
                response = await http.request(
                    settings.status_method,
                    url,
                    content=json.dumps(body, ensure_ascii=False).encode(),
                    headers={**self._headers(), "Content-Type": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(
                f"LAPOR! unreachable for the status push ({type(exc).__name__}); will retry"
            ) from None
        status = response.status_code
        if status == 429:
            raise ChannelUnavailable(
                "LAPOR! asks us to slow down (429); will retry",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise ChannelUnavailable(f"LAPOR! answered {status} to the status push; will retry")
        if status in (401, 403):
            raise ChannelUnavailable(
                f"LAPOR! refused the credentials for the status push ({status}); renew auth_value", retryable=False
            )
        if status == 404:
            raise ChannelUnavailable(
                f"LAPOR! does not know complaint {complaint_id} (404); check status_url", retryable=False
            )
        if not 200 <= status < 300:
            raise ChannelUnavailable(
                f"LAPOR! refused the status push ({status}): {response.text[:300]}", retryable=False
            )
        if settings.status_id_path is None:
            return ""
        try:
            answer = json.loads(response.content)
        except (UnicodeDecodeError, ValueError):
            return ""
        return scalar_text(get_path(answer, settings.status_id_path), max_length=200) or ""

    def status_body(self, reply: OutboundReply) -> dict[str, Any]:
        """The JSON sent to `status_url` for `reply`, with the field names of `status_body`."""
        names = self.settings.status_body
        body: dict[str, Any] = {}

        def put(name: str | None, value: Any) -> None:
            if name is not None and value is not None:
                set_path(body, name, value)

        put(names.message, reply.text)
        put(names.ticket, reply.ticket or (reply.status.ticket if reply.status else None))
        if reply.status is not None:
            label = self.settings.status_labels.get(reply.status.state)
            if label is None:
                # Better the citizen's message arrives as a note than not at all; the admin fixes the map.
                log.warning(
                    "lapor %s: no LAPOR! status for Kanal state %r; sent as a note only (add it to status_labels)",
                    self.channel_id,
                    reply.status.state,
                )
            put(names.status, label)
            put(names.note, reply.status.note)
            put(names.agency, reply.status.agency_unit)
            put(names.changed_at, reply.status.changed_at.isoformat())
        return body

    # -- media -----------------------------------------------------------------------------------

    def allowed_media_hosts(self) -> frozenset[str]:
        return self.media_hosts | hosts_of(str(self.settings.endpoint)) | frozenset(self.settings.media_hosts)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Attachments on LAPOR!'s own host may need the credential; it is never sent to any other host."""
        headers = self._headers() if _same_origin(ref.url, str(self.settings.endpoint)) else None
        return await download(
            ref.url,
            allowed_hosts=self.allowed_media_hosts(),
            max_bytes=max_bytes,
            headers=headers,
            timeout=self.settings.timeout_seconds,
        )


def _full_url(url: str, params: dict[str, str] | None) -> str:
    """The URL a request goes to: its own query with `params` merged in."""
    return str(httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url))


def _same_origin(url: str, other: str) -> bool:
    try:
        a, b = urlsplit(url), urlsplit(other)
        return (a.scheme, (a.hostname or "").lower(), a.port) == (b.scheme, (b.hostname or "").lower(), b.port)
    except ValueError:  # a malformed port or host in a link from the far end
        return False


def _next_since(previous: str | None, values: list[tuple[str, tuple[int, Any]]], *, truncated: bool) -> str | None:
    """The cursor after a poll: never behind `previous`, never past an item that was not returned.

    A complete window (every page read) holds every item at or after `previous`, so its largest value is
    safe whatever order LAPOR! lists in. A window cut at `page_limit` is only safe up to its last item,
    which assumes the ascending order cursor APIs list in (docs/channels/lapor.md says so).
    """
    if not values:
        return previous
    candidate = values[-1] if truncated else max(values, key=lambda v: v[1])
    if previous is not None and candidate[1] < order_key(previous):
        return previous
    return candidate[0]


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [LaporAdapter]
