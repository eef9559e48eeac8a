"""`web_form`: the public complaint form Kanal serves itself (Jakarta's "Balai Warga" channel).

`GET` on the channel's inbound route answers the form page; `POST` receives it as
`multipart/form-data` (what the page sends) or `application/x-www-form-urlencoded`. One submission
becomes one `InboundMessage`; a photo, when given, stays in the stored raw body and is referenced as
`MediaRef(url="inline:photo")`.

Cross-site protection, no JavaScript needed: every rendered form carries a hidden
`form_token = "<issued unix>.<nonce>.<hex HMAC-SHA256(instance_secret, "<issued>.<nonce>")>"` and the
same response sets the nonce in an HttpOnly, SameSite=Strict cookie scoped to the inbound route. A
`POST` passes `verify` only with an authentic token, aged between `min_fill_seconds` and
`token_max_age_seconds`, whose nonce equals the cookie's; an `Origin` header, when sent, must be the
origin of `public_base_url`, and `Sec-Fetch-Site: cross-site` is refused. The nonce is the message's
`external_id`, so a double click or a browser re-POST is recognised as the same complaint.

Flood protection: a sliding window per client address (IPv6 by /64) kept in this adapter instance's
memory, so it is per process: with N workers a client may get up to N times the limit.

Honeypot: the visually hidden `website` field; a filled one is dropped with `PayloadIgnored` and
answered with the same thank-you page (without a ticket code).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP
from email.utils import collapse_rfc2231_value
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import Field, ValidationError, model_validator

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    AdapterContext,
    AdapterResponse,
    ChannelSettings,
    InboundMessage,
    Location,
    MediaRef,
    RawRequest,
    Sender,
    StoredOutcome,
)
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid, Throttled

KIB = 1024
MIB = 1024 * KIB
DEFAULT_MAX_PHOTO_BYTES = 5 * MIB
#: Room for the text fields and multipart framing around the largest photo.
FORM_OVERHEAD_BYTES = 512 * KIB

# Field names the form posts; anything else in a body is ignored.
TOKEN_FIELD = "form_token"  # noqa: S105 (a field name, not a secret)
HONEYPOT_FIELD = "website"
PHOTO_FIELD = "photo"
#: How a stored submission refers to its photo; served back by `inline_attachment`.
PHOTO_REF = "inline:photo"
TEXT_FIELDS = ("description", "address", "kelurahan", "kecamatan", "lat", "lng", "name", "phone", "email")
#: Fields given back to the citizen when the form is shown again after a problem.
PRESERVED_FIELDS = TEXT_FIELDS
KNOWN_FIELDS = frozenset({TOKEN_FIELD, HONEYPOT_FIELD, *TEXT_FIELDS})

MAX_DESCRIPTION_CHARS = 5000
MAX_ADDRESS_CHARS = 500
MAX_AREA_CHARS = 100
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
MAX_PHONE_CHARS = 25
#: A real form has about a dozen parts; more is a bot, and parsing them costs memory.
MAX_PARTS = 40
#: Distinct client addresses remembered by the rate limiter before the least recently seen is forgotten.
MAX_TRACKED_CLIENTS = 10_000

_TOKEN_RE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{16,64})\.([0-9a-f]{64})")
_EMAIL_RE = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]{2,}")
_PHONE_RE = re.compile(r"\+?\(?[0-9][0-9 ().-]*")
# C0 controls other than tab and newline (and DEL): never meant by a citizen, and NUL breaks PostgreSQL text.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UNSAFE_FILENAME_RE = re.compile(r"[^\w-]+")  # keeps letters of any script, drops the rest

RELOAD_HINT = "Muat ulang formulir, lalu kirim lagi."

_templates = Environment(
    loader=PackageLoader("adapters", "templates/web_form"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class WebFormSettings(ChannelSettings):
    """Settings of one `web_form` channel instance."""

    title: str = Field(default="Balai Warga: Laporkan Masalah di Sekitar Anda", min_length=1, max_length=200)
    #: Submissions (POSTs) accepted per client address within `rate_limit_window_seconds`.
    rate_limit_count: int = Field(default=5, ge=1, le=10_000)
    rate_limit_window_seconds: int = Field(default=600, ge=1, le=86_400)
    #: Can be lowered, not raised: the route reads at most `WebFormAdapter.max_body_bytes`.
    max_photo_bytes: int = Field(default=DEFAULT_MAX_PHOTO_BYTES, ge=16 * KIB, le=DEFAULT_MAX_PHOTO_BYTES)
    #: A form posted sooner than this after it was served was filled by a bot, not typed by a person.
    min_fill_seconds: int = Field(default=3, ge=0, le=600)
    token_max_age_seconds: int = Field(default=7200, ge=60, le=7 * 86_400)

    @model_validator(mode="after")
    def _fill_window_is_open(self) -> WebFormSettings:
        if self.min_fill_seconds >= self.token_max_age_seconds:
            raise ValueError("min_fill_seconds must be smaller than token_max_age_seconds")
        return self


# ---------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class FormToken:
    """A parsed `form_token`; `mac` is as sent and still has to be checked."""

    issued: int
    nonce: str
    mac: str


def token_mac(secret: bytes, issued: int, nonce: str) -> str:
    """Hex HMAC-SHA256 of `"<issued>.<nonce>"`."""
    return hmac.new(secret, f"{issued}.{nonce}".encode(), hashlib.sha256).hexdigest()


def issue_token(secret: bytes, issued: int, nonce: str) -> str:
    """The hidden `form_token` value for a form served at `issued` (unix seconds)."""
    return f"{issued}.{nonce}.{token_mac(secret, issued, nonce)}"


def parse_token(value: str | None) -> FormToken | None:
    """The token's parts, or None when it is absent or not of the issued shape."""
    if not value:
        return None
    match = _TOKEN_RE.fullmatch(value.strip())
    if match is None:
        return None
    return FormToken(int(match.group(1)), match.group(2), match.group(3))


def read_cookie(header: str | None, name: str) -> list[str]:
    """Every value of cookie `name` in a `Cookie` header (a browser may send one per matching path)."""
    if not header:
        return []
    values = []
    for pair in header.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key == name:
            values.append(value.strip().strip('"'))
    return values


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with the default port folded in, or None for "null" and garbage."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, parts.hostname.lower(), None if port == default else port


# ------------------------------------------------------------------------------------------ rate limit


class SlidingWindowLimiter:
    """At most `limit` hits per key in any `window_seconds`, in this process's memory only.

    Memory is bounded: keys idle for a whole window are dropped, and beyond `max_keys` the least
    recently hit key is forgotten (which can only let that client in early, never lock anyone out).
    Thread-safe, since the gateway may call adapters from several threads.
    """

    def __init__(self, limit: int, window_seconds: float, *, max_keys: int = MAX_TRACKED_CLIENTS) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float) -> int | None:
        """Record a hit and return None, or return the seconds to wait (the hit is then not recorded)."""
        with self._lock:
            self._forget_idle(now)
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque(maxlen=self.limit)
            self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return None

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until `key` may hit again; 0 when it may now. Records nothing."""
        with self._lock:
            hits = [t for t in self._hits.get(key, ()) if t > now - self.window]
        if len(hits) < self.limit:
            return 0
        return max(1, math.ceil(hits[0] + self.window - now))

    def _forget_idle(self, now: float) -> None:
        # Keys are ordered by last hit, so idle ones are at the front; each is dropped once, so this is cheap.
        while self._hits:
            oldest_key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > now - self.window:
                break
            del self._hits[oldest_key]


def client_key(client_ip: str) -> str:
    """Rate-limit key for an address: IPv4 as is, IPv6 by its /64 (one household or phone gets a /64)."""
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return client_ip.strip()[:100] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


# -------------------------------------------------------------------------------------- reading a form


@dataclass(frozen=True)
class Upload:
    """An uploaded file as sent: the browser's file name and the bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class FormData:
    """The known fields of a posted form (first value of each wins) and the photo, if one was chosen."""

    fields: Mapping[str, str]
    photo: Upload | None = None

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def read_form(request: RawRequest, *, strict: bool = True) -> FormData:
    """Parse the body as multipart or urlencoded form data; raise `PayloadRejected` on anything else.

    With `strict=False` a truncated multipart body yields whatever fields arrived whole (used to give
    the citizen their input back), instead of being refused.
    """
    if not request.body.strip():
        raise PayloadRejected("Kiriman kosong: tidak ada isian yang kami terima. " + RELOAD_HINT)
    content_type = request.header("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return _read_multipart(content_type, request.body, strict=strict)
    if media_type == "application/x-www-form-urlencoded":
        return _read_urlencoded(request.body)
    raise PayloadRejected(
        "Jenis kiriman tidak didukung: laporan harus dikirim dari halaman formulir. " + RELOAD_HINT,
        status_code=415,
    )


def _read_multipart(content_type: str, body: bytes, *, strict: bool) -> FormData:
    """Split the body on its boundary with `bytes.find`, parsing only each part's header block.

    The parts are cut out by hand rather than with `email.parser` over the whole body: the feed
    parser works line by line, and a 5 MB "photo" of newlines costs it seconds of CPU per parse.
    Header blocks (quoting, RFC 2231 file names) are still read by the stdlib email package.
    """
    unreadable = PayloadRejected("Kiriman formulir rusak atau tidak lengkap. " + RELOAD_HINT)
    try:
        boundary = _boundary(content_type)
        if boundary is None:
            raise unreadable
        raw_parts, closed = _split_parts(body, b"--" + boundary.encode("latin-1"))
        if strict and not closed:
            raise unreadable
        parts = [_split_part(raw, strict=strict) for raw in raw_parts]
        return _collect_parts([part for part in parts if part is not None])
    except PayloadRejected:
        raise
    except Exception:
        # The stdlib email package's failures on hostile headers are not a documented set of
        # exceptions; whatever it raises, the sender gets a 400 and never a 500.
        raise unreadable from None


def _boundary(content_type: str) -> str | None:
    if "\r" in content_type or "\n" in content_type:
        return None
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_boundary()
    # RFC 2046: 1 to 70 characters; anything else is not from a browser.
    if not boundary or len(boundary) > 70 or not boundary.isascii():
        return None
    return boundary


def _split_parts(body: bytes, delimiter: bytes) -> tuple[list[bytes], bool]:
    """The raw parts (headers and content) between delimiters, and whether the close delimiter came.

    A part cut off by the end of the body is left out.
    """
    if body.startswith(delimiter):
        position = len(delimiter)
    else:
        found = body.find(b"\r\n" + delimiter)  # a preamble is allowed, though browsers send none
        if found < 0:
            raise PayloadRejected("Kiriman formulir rusak atau tidak lengkap. " + RELOAD_HINT)
        position = found + 2 + len(delimiter)
    parts: list[bytes] = []
    while True:
        if body.startswith(b"--", position):
            return parts, True
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            return parts, False
        next_delimiter = body.find(b"\r\n" + delimiter, line_end)
        if next_delimiter < 0:
            return parts, False
        parts.append(body[line_end + 2 : next_delimiter])
        if len(parts) > MAX_PARTS:
            raise PayloadRejected("Kiriman berisi terlalu banyak bagian. " + RELOAD_HINT)
        position = next_delimiter + 2 + len(delimiter)


def _split_part(raw: bytes, *, strict: bool) -> tuple[Message, bytes] | None:
    """(headers, content) of one part; a part without a header block is refused (or skipped)."""
    if raw.startswith(b"\r\n"):
        return BytesHeaderParser(policy=HTTP).parsebytes(b""), raw[2:]
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        if strict:
            raise PayloadRejected("Kiriman formulir rusak atau tidak lengkap. " + RELOAD_HINT)
        return None
    headers = BytesHeaderParser(policy=HTTP).parsebytes(raw[: header_end + 4])
    return headers, raw[header_end + 4 :]


def _collect_parts(parts: list[tuple[Message, bytes]]) -> FormData:
    fields: dict[str, str] = {}
    photo: Upload | None = None
    for headers, data in parts:
        if headers.get_content_maintype() == "multipart":
            # Nested multipart (RFC 2388's old multi-file form) is something no current browser sends.
            raise PayloadRejected("Kiriman formulir tidak dikenali. " + RELOAD_HINT)
        name = _param(headers.get_param("name", header="content-disposition"))
        if name == PHOTO_FIELD:
            # A file input left empty still sends a part, with an empty file name and no bytes.
            if photo is None and data:
                photo = Upload(headers.get_filename() or "", data)
        elif name in KNOWN_FIELDS and name not in fields:
            fields[name] = _decode_text(data)
    return FormData(fields, photo)


def _param(value: object) -> str:
    if isinstance(value, tuple):  # RFC 2231 encoded parameter
        value = collapse_rfc2231_value(value)
    return value if isinstance(value, str) else ""


def _read_urlencoded(body: bytes) -> FormData:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_PARTS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PayloadRejected("Kiriman formulir tidak dapat dibaca. " + RELOAD_HINT) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in KNOWN_FIELDS and name not in fields:
            fields[name] = _clean_text(value)
    return FormData(fields)


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadRejected("Isian tidak dapat dibaca (bukan teks UTF-8). " + RELOAD_HINT) from None
    return _clean_text(text)


def _clean_text(text: str) -> str:
    return _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


# ------------------------------------------------------------------------------------------ the photo


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the file's magic bytes, or None when it is not JPEG, PNG or WebP."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def safe_filename(name: str, extension: str) -> str:
    """The browser's file name reduced to letters, digits, `_` and `-`, plus the sniffed type's extension.

    Path parts, dots, spaces and control or direction-override characters are dropped, and the
    extension always matches the content, never what was declared.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = _UNSAFE_FILENAME_RE.sub("_", stem).strip("_-")[:80]
    return f"{stem or 'foto'}.{extension}"


def format_size(size: int) -> str:
    """`5 MB`, `2,5 MB`, `512 KB`: sizes as an Indonesian reader writes them."""
    if size >= MIB:
        value, unit = size / MIB, "MB"
    else:
        value, unit = size / KIB, "KB"
    text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")
    return f"{text} {unit}"


# ------------------------------------------------------------------------------------------- adapter


_ERROR_HEADINGS = {
    400: "Laporan belum terkirim: isian tidak dapat dibaca.",
    401: "Laporan belum terkirim: formulir perlu dikirim ulang.",
    413: "Laporan belum terkirim: ukuran kiriman terlalu besar.",
    415: "Laporan belum terkirim: jenis berkas tidak didukung.",
    422: "Laporan belum terkirim: ada isian yang perlu diperbaiki.",
}


class WebFormAdapter(Adapter[WebFormSettings]):
    """The `web_form` channel: serves the form on GET and turns each POST into one message.

    `verify` is not pure: it counts the submission against the client's rate limit (in this
    process's memory). `parse` is pure. Every HTML answer carries a CSP with a fresh nonce and
    `Cache-Control: no-store` (pages hold tokens, ticket codes or the citizen's own words).
    """

    channel_type: ClassVar[str] = "web_form"
    settings_model = WebFormSettings
    description = "Public complaint form served by Kanal (HTML, photo upload, no JavaScript needed)"
    max_body_bytes: ClassVar[int] = DEFAULT_MAX_PHOTO_BYTES + FORM_OVERHEAD_BYTES

    def __init__(self, *, settings: WebFormSettings, context: AdapterContext) -> None:
        super().__init__(settings=settings, context=context)
        self.limiter = SlidingWindowLimiter(settings.rate_limit_count, settings.rate_limit_window_seconds)
        self.form_path = urlsplit(context.inbound_url()).path
        self.cookie_name = "kanal_form_" + re.sub(r"[^A-Za-z0-9_]", "_", context.channel_id)[:60]
        self._origin = _origin_of(context.public_base_url)
        self._secure_cookie = context.public_base_url.lower().startswith("https://")

    # -- POST ---------------------------------------------------------------------------------------

    def verify(self, request: RawRequest) -> None:
        """Count the submission, then require a same-site POST with a valid token matching the cookie.

        Raises `Throttled` over the rate limit, else `SignatureInvalid` (message for the citizen).
        """
        # Every POST counts, before any other check, so that a flood is cut off before we parse
        # multipart bodies or compute HMACs, and before anything reaches quarantine (bodies failing
        # the token check are quarantined; throttled ones are not). The cost is that a citizen's own
        # failed tries count too, which the default of 5 per 10 minutes comfortably absorbs.
        wait = self.limiter.hit(client_key(request.client_ip), request.received_at.timestamp())
        if wait is not None:
            raise Throttled(
                f"Terlalu banyak laporan dari jaringan Anda. Coba lagi dalam {math.ceil(wait / 60)} menit.",
                retry_after=wait,
            )
        problem = self._cross_site_problem(request)
        if problem is not None:
            raise SignatureInvalid(problem)
        try:
            form = read_form(request, strict=False)
        except PayloadRejected:
            form = FormData({})
        self._check_token(request, parse_token(form.get(TOKEN_FIELD)))

    def _cross_site_problem(self, request: RawRequest) -> str | None:
        """Why the request plainly came from another site's page, or None."""
        message = "Laporan harus dikirim dari halaman formulir resmi. " + RELOAD_HINT + " (kode: cross-site)"
        if (request.header("sec-fetch-site") or "").strip().lower() == "cross-site":
            return message
        origin = request.header("origin")
        if origin is not None and (self._origin is None or _origin_of(origin) != self._origin):
            return message
        return None

    def _check_token(self, request: RawRequest, token: FormToken | None) -> None:
        secret = self.context.instance_secret
        if token is None or not hmac.compare_digest(
            token_mac(secret, token.issued, token.nonce).encode(), token.mac.encode()
        ):
            raise SignatureInvalid("Formulir tidak dapat diverifikasi. " + RELOAD_HINT + " (kode: token)")
        age = request.received_at.timestamp() - token.issued
        if age < self.settings.min_fill_seconds:
            raise SignatureInvalid(
                "Formulir terkirim terlalu cepat. Periksa isian Anda, lalu kirim lagi. (kode: too-fast)"
            )
        if age > self.settings.token_max_age_seconds:
            hours = max(1, round(self.settings.token_max_age_seconds / 3600))
            raise SignatureInvalid(
                f"Formulir sudah kedaluwarsa (dibuka lebih dari {hours} jam). {RELOAD_HINT} (kode: expired)"
            )
        cookies = read_cookie(request.header("cookie"), self.cookie_name)
        if not cookies:
            raise SignatureInvalid(
                "Formulir tidak dapat diverifikasi karena cookie tidak terkirim. Pastikan browser Anda "
                "mengizinkan cookie untuk situs ini. " + RELOAD_HINT + " (kode: no-cookie)"
            )
        matched = False
        for value in cookies:
            matched |= hmac.compare_digest(value.encode(), token.nonce.encode())
        if not matched:
            # Usually the form was opened again in another tab, which replaced the cookie.
            raise SignatureInvalid(
                "Formulir ini sudah diganti oleh formulir yang dibuka kemudian (mungkin di tab lain). "
                + RELOAD_HINT
                + " (kode: cookie-mismatch)"
            )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        """One message from a verified submission. Pure; raises only `PayloadRejected`/`PayloadIgnored`.

        `external_id` is the token's nonce; `sent_at` is `received_at`; a photo becomes
        `MediaRef(url="inline:photo")` with the type sniffed from its bytes.
        """
        if len(request.body) > self.max_body_bytes:
            raise PayloadRejected(self._too_large_message(), status_code=413)
        form = read_form(request)
        # Before any validation: a bot must get the same answer whatever else it filled in.
        if form.get(HONEYPOT_FIELD).strip():
            raise PayloadIgnored("honeypot field filled")
        token = parse_token(form.get(TOKEN_FIELD))
        if token is None:
            raise PayloadRejected("Formulir tidak dapat diverifikasi. " + RELOAD_HINT)
        media = self._photo_media(form.photo)
        problems: list[str] = []
        try:
            description = self._description(form, problems)
            sender = self._sender(form, problems)
            location = self._location(form, problems)
            if problems:
                raise PayloadRejected(" ".join(problems), status_code=422)
            message = InboundMessage(
                external_id=token.nonce,
                text=description,
                sender=sender,
                location=location,
                media=media,
                sent_at=request.received_at,
            )
        except ValidationError:
            # Our own checks run first and name the field; this is only a backstop.
            problem = "Ada isian yang tidak dapat kami terima. Periksa lagi isian Anda."
            raise PayloadRejected(problem, status_code=422) from None
        return [message]

    def inline_attachment(self, request: RawRequest, url: str) -> tuple[str, bytes]:
        """The uploaded photo of a stored submission, as its sniffed type and bytes."""
        if url != PHOTO_REF:
            raise LookupError(url)
        try:
            photo = read_form(request).photo
        except PayloadRejected:
            raise LookupError(url) from None
        sniffed = sniff_image(photo.data) if photo is not None else None
        if photo is None or sniffed is None:
            raise LookupError(url)
        return sniffed[0], photo.data

    def _too_large_message(self) -> str:
        return (
            f"Foto terlalu besar (maksimal {format_size(self.settings.max_photo_bytes)}). "
            "Kecilkan ukuran foto atau kirim tanpa foto."
        )

    def _photo_media(self, photo: Upload | None) -> list[MediaRef]:
        if photo is None:
            return []
        if len(photo.data) > self.settings.max_photo_bytes:
            raise PayloadRejected(self._too_large_message(), status_code=413)
        sniffed = sniff_image(photo.data)
        if sniffed is None:
            raise PayloadRejected(
                "Berkas yang dilampirkan bukan foto JPEG, PNG, atau WebP. Pilih foto lain atau kirim tanpa foto.",
                status_code=415,
            )
        content_type, extension = sniffed
        filename = safe_filename(photo.filename, extension)
        return [MediaRef(url=PHOTO_REF, content_type=content_type, filename=filename)]

    @staticmethod
    def _description(form: FormData, problems: list[str]) -> str:
        text = form.get("description").strip()
        if not text:
            problems.append("Uraian masalah wajib diisi.")
        elif len(text) > MAX_DESCRIPTION_CHARS:
            problems.append(f"Uraian masalah terlalu panjang ({len(text)} karakter; maksimal {MAX_DESCRIPTION_CHARS}).")
        return text

    @staticmethod
    def _sender(form: FormData, problems: list[str]) -> Sender | None:
        """The contact given, or None; appends to `problems` (and returns None) when it is unusable."""
        known_problems = len(problems)
        name = " ".join(form.get("name").split())
        phone = " ".join(form.get("phone").split())
        email = form.get("email").strip()
        if len(name) > MAX_NAME_CHARS:
            problems.append(f"Nama terlalu panjang (maksimal {MAX_NAME_CHARS} karakter).")
        if phone and not _looks_like_phone(phone):
            problems.append("Nomor telepon tidak valid. Tulis angka saja, misalnya 0812 3456 7890.")
        if email and (len(email) > MAX_EMAIL_CHARS or not _EMAIL_RE.fullmatch(email)):
            problems.append("Alamat email tidak valid. Contoh yang benar: nama@contoh.id.")
        if len(problems) > known_problems or not (name or phone or email):
            return None
        return Sender(name=name or None, phone=phone or None, email=email or None)

    @staticmethod
    def _location(form: FormData, problems: list[str]) -> Location | None:
        """Address text and/or coordinates; appends to `problems` (and returns None) when unusable."""
        known_problems = len(problems)
        address = " ".join(form.get("address").split())
        kelurahan = " ".join(form.get("kelurahan").split())
        kecamatan = " ".join(form.get("kecamatan").split())
        if len(address) > MAX_ADDRESS_CHARS:
            problems.append(f"Alamat terlalu panjang (maksimal {MAX_ADDRESS_CHARS} karakter).")
        if len(kelurahan) > MAX_AREA_CHARS or len(kecamatan) > MAX_AREA_CHARS:
            problems.append(f"Nama kelurahan/kecamatan terlalu panjang (maksimal {MAX_AREA_CHARS} karakter).")
        coordinates = _coordinates(form.get("lat"), form.get("lng"))
        if not address and coordinates is None:
            problems.append("Lokasi wajib diisi: tulis alamat atau patokan, atau pakai tombol lokasi saya.")
        if len(problems) > known_problems:
            return None
        parts = [address] if address else []
        if kelurahan:
            parts.append(_with_prefix("Kelurahan", kelurahan))
        if kecamatan:
            parts.append(_with_prefix("Kecamatan", kecamatan))
        lat, lng = coordinates if coordinates is not None else (None, None)
        return Location(lat=lat, lng=lng, address=", ".join(parts)[:1000] or None)

    # -- answers ------------------------------------------------------------------------------------

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        """The empty form with a fresh token, its cookie and `Cache-Control: no-store`."""
        return self._form_page(request, status_code=200)

    def acknowledge(self, request: RawRequest, outcomes: list[StoredOutcome]) -> AdapterResponse:
        """The thank-you page with the ticket code to keep (noting when it was already received)."""
        first = outcomes[0] if outcomes else None
        return self._thanks(first.ticket_code if first else None, duplicate=bool(first and first.duplicate))

    def ignored(self, request: RawRequest, reason: str) -> AdapterResponse:
        """The thank-you page without a ticket code, so a bot cannot tell its submission was dropped."""
        return self._thanks(None, duplicate=False)

    def reject(self, request: RawRequest, status_code: int, message: str) -> AdapterResponse:
        """429: a "try again in N minutes" page. Otherwise the form again, with the citizen's input
        and a fresh token, and `message` explained above it; a cross-site POST gets a plain error
        page instead, so another site cannot have us pre-fill a form in the citizen's browser."""
        if status_code == 429:
            return self._throttled_page(request)
        if status_code == 401 and self._cross_site_problem(request) is not None:
            return self._error_page(status_code, message)
        if status_code == 413:
            # Only size gets a 413 here; the gateway's own oversize message is technical English.
            message = self._too_large_message()
        form = _prefill(request)
        return self._form_page(
            request,
            status_code=status_code,
            values={name: form.get(name) for name in PRESERVED_FIELDS},
            error=message,
            had_photo=form.photo is not None,
        )

    def _form_page(
        self,
        request: RawRequest,
        *,
        status_code: int,
        values: Mapping[str, str] | None = None,
        error: str | None = None,
        had_photo: bool = False,
    ) -> AdapterResponse:
        nonce = secrets.token_urlsafe(16)
        token = issue_token(self.context.instance_secret, int(request.received_at.timestamp()), nonce)
        cookie = (
            f"{self.cookie_name}={nonce}; Path={self.form_path}; "
            f"Max-Age={self.settings.token_max_age_seconds}; HttpOnly; SameSite=Strict"
            + ("; Secure" if self._secure_cookie else "")
        )
        filled = {name: "" for name in PRESERVED_FIELDS}
        filled.update(values or {})
        return self._render(
            "form.html",
            status_code,
            extra_headers={"Set-Cookie": cookie},
            form_token=token,
            values=filled,
            error=error,
            error_heading=_ERROR_HEADINGS.get(status_code, "Laporan belum terkirim."),
            had_photo=had_photo,
            max_photo=format_size(self.settings.max_photo_bytes),
            max_description=MAX_DESCRIPTION_CHARS,
        )

    def _thanks(self, ticket_code: str | None, *, duplicate: bool) -> AdapterResponse:
        return self._render("thanks.html", 200, ticket_code=ticket_code, duplicate=duplicate)

    def _error_page(self, status_code: int, message: str) -> AdapterResponse:
        heading = _ERROR_HEADINGS.get(status_code, "Laporan belum terkirim.")
        return self._render("error.html", status_code, heading=heading, message=message)

    def _throttled_page(self, request: RawRequest) -> AdapterResponse:
        wait = self.limiter.retry_after(client_key(request.client_ip), request.received_at.timestamp())
        # Another worker process may have done the counting; then the whole window is the safe answer.
        wait = wait or self.settings.rate_limit_window_seconds
        return self._render(
            "throttled.html", 429, extra_headers={"Retry-After": str(wait)}, minutes=math.ceil(wait / 60)
        )

    def _render(
        self,
        template: str,
        status_code: int,
        *,
        extra_headers: Mapping[str, str] | None = None,
        **values: object,
    ) -> AdapterResponse:
        csp_nonce = secrets.token_urlsafe(16)
        page = _templates.get_template(template).render(
            title=self.settings.title, form_path=self.form_path, csp_nonce=csp_nonce, **values
        )
        headers = {**security_headers(csp_nonce), **(extra_headers or {})}
        return AdapterResponse(status_code, page.encode(), "text/html; charset=utf-8", headers)


def security_headers(csp_nonce: str) -> dict[str, str]:
    """Headers every HTML page gets: a strict CSP (inline style/script only with `csp_nonce`) and friends."""
    policy = (
        "default-src 'none'; "
        f"style-src 'nonce-{csp_nonce}'; script-src 'nonce-{csp_nonce}'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _prefill(request: RawRequest) -> FormData:
    """Whatever fields can be read back from a rejected body, for showing the form again; never raises."""
    try:
        return read_form(request, strict=False)
    except Exception:
        # An error page must always render; a body we cannot read just means an empty form.
        return FormData({})


def _looks_like_phone(phone: str) -> bool:
    digits = sum(c.isdigit() for c in phone)
    return len(phone) <= MAX_PHONE_CHARS and _PHONE_RE.fullmatch(phone) is not None and 8 <= digits <= 15


def _coordinates(lat_text: str, lng_text: str) -> tuple[float, float] | None:
    """Both coordinates when both are numbers in range; otherwise None.

    These are hidden fields the page's script fills, so the citizen cannot correct them: bad values
    are dropped rather than refused (the address, if given, still locates the complaint).
    """
    try:
        lat, lng = float(lat_text.strip()), float(lng_text.strip())
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    if lat == 0 and lng == 0:  # what a failed geolocation reports, never a real place in a city
        return None
    return lat, lng


def _with_prefix(label: str, value: str) -> str:
    """`Kelurahan Menteng` from `Menteng`, left alone when the citizen already wrote `Kel. Menteng`."""
    if value.lower().startswith(label.lower()[:3]):
        return value
    return f"{label} {value}"


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [WebFormAdapter]


__all__ = [
    "FormData",
    "FormToken",
    "SlidingWindowLimiter",
    "WebFormAdapter",
    "WebFormSettings",
    "client_key",
    "issue_token",
    "parse_token",
    "read_form",
    "sniff_image",
]
