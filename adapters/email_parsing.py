"""Reading one e-mail: raw RFC 5322 bytes in, an `InboundMessage` out, or the reason it is ignored or refused.

Pure: no I/O, so it is tested alone (and with arbitrary bytes). `parse_mail` returns a message, raises
`PayloadIgnored` for mail nobody should answer (auto-replies, bounces, list mail, our own mail) and
`MailRejected` for bytes that are not a readable mail (quarantined once, never fetched again).

Photos are not copied into the message: each becomes a `MediaRef` whose url names the part in the
mailbox (`imap:<uidvalidity>/<uid>/<IMAP section>/<transfer encoding>`), fetched later by the adapter's
`download_media`. The section numbers follow RFC 3501 6.4.5, so the server can send that part alone.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import errors, policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from pydantic import ValidationError

from adapters.contract import InboundMessage, MediaRef, Sender
from adapters.errors import PayloadIgnored, PayloadRejected

#: Images smaller than this are spacers, icons and signature logos, not a citizen's photo.
MIN_IMAGE_BYTES = 1024
MAX_TEXT_CHARS = 20_000
MAX_MEDIA = 20
_MAX_ID_CHARS = 200
#: What RFC 3834 and common practice mark as mail from a robot.
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-reply")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_LIST_HEADERS = ("list-id", "list-unsubscribe")
_BROKEN_STRUCTURE = (
    errors.NoBoundaryInMultipartDefect,
    errors.StartBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect,
)
_ANGLE_ID = re.compile(r"<([\x21-\x3b\x3d\x3f-\x7e]+)>")  # printable ASCII except < and >
_BARE_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")
_SPACES = re.compile(r"\s+")
_MEDIA_URL = re.compile(r"imap:(\d+)/(\d+)/([0-9]+(?:\.[0-9]+)*)/([a-z0-9-]+)")
_NO_MESSAGE_ID = "no-message-id-"


@dataclass(frozen=True)
class MailSource:
    """Where a mail was read: its mailbox's UIDVALIDITY, its UID there, and when the server received it."""

    uidvalidity: int
    uid: int
    received_at: datetime


@dataclass(frozen=True)
class PartAddress:
    """A media ref's url, read back: which part of which mail, and how its bytes are encoded."""

    uidvalidity: int
    uid: int
    section: str
    transfer_encoding: str

    @property
    def url(self) -> str:
        return f"imap:{self.uidvalidity}/{self.uid}/{self.section}/{self.transfer_encoding}"

    @classmethod
    def from_url(cls, url: str) -> PartAddress | None:
        found = _MEDIA_URL.fullmatch(url)
        if found is None:
            return None
        return cls(int(found[1]), int(found[2]), found[3], found[4])


class MailRejected(PayloadRejected):
    """Bytes that are not a mail Kanal can read; `external_id` names it where it could be told."""

    def __init__(self, message: str, *, external_id: str | None) -> None:
        super().__init__(message, status_code=422)
        self.external_id = external_id


def parse_mail(raw: bytes, *, source: MailSource, own_addresses: Collection[str]) -> InboundMessage:
    """One mail as Kanal stores it. Raises `PayloadIgnored` or `MailRejected`, and nothing else."""
    if not raw.strip():
        raise MailRejected("the mail is empty; nothing to read", external_id=None)
    try:
        mail = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it still raises makes the mail unreadable
        problem = f"not readable as e-mail ({type(exc).__name__}); see the raw mail in quarantine"
        raise MailRejected(problem, external_id=None) from None
    external_id = _safe_external_id(mail, raw)
    if not mail.keys():
        raise MailRejected("no mail headers found: these bytes are not an RFC 5322 message", external_id=external_id)
    try:
        reason = ignore_reason(mail, own_addresses)
        if reason is not None:
            raise PayloadIgnored(reason)
        broken = _broken_structure(mail)
        if broken is not None:
            raise MailRejected(broken, external_id=external_id)
        return _message(mail, external_id, source)
    except (PayloadIgnored, MailRejected):
        raise
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MailRejected(f"mail read but not storable: {problems}", external_id=external_id) from None
    except Exception as exc:  # a header or part the email package cannot decode
        problem = f"mail could not be read ({type(exc).__name__}: {str(exc)[:200]}); see the raw mail in quarantine"
        raise MailRejected(problem, external_id=external_id) from None


def mail_external_id(raw: bytes) -> str | None:
    """The external id of a mail (its Message-ID, or a hash), without reading more; None if unreadable."""
    try:
        return _safe_external_id(BytesParser(policy=policy.default).parsebytes(raw, headersonly=True), raw)
    except Exception:
        return None


# --- identity and threading ---------------------------------------------------------------------


def normalize_message_id(value: str | None) -> str | None:
    """`abc@host` from `<abc@host>` (the first of several), or None when there is no usable id."""
    if not value:
        return None
    found = _ANGLE_ID.search(value)
    if found is not None:
        candidate = found[1]
    else:
        stripped = value.strip()
        if not _BARE_ID.fullmatch(stripped):
            return None
        candidate = stripped
    if len(candidate) > _MAX_ID_CHARS:
        return "long-message-id-" + hashlib.sha256(candidate.encode()).hexdigest()[:40]
    return candidate


def message_ids(value: str | None) -> list[str]:
    """Every id of a References or In-Reply-To header, in order."""
    if not value:
        return []
    found = [normalize_message_id(f"<{m}>") for m in _ANGLE_ID.findall(value)]
    return [m for m in found if m]


def is_real_message_id(external_id: str | None) -> bool:
    """Whether an external id is a mail's own Message-ID (and so can be quoted in In-Reply-To)."""
    return bool(external_id) and not str(external_id).startswith((_NO_MESSAGE_ID, "long-message-id-"))


def _safe_external_id(mail: Message, raw: bytes) -> str:
    own = normalize_message_id(_header(mail, "message-id"))
    if own:
        return own
    # No Message-ID: the same mail read twice (even after the mailbox was rebuilt) must get the same id.
    # Trace headers are added on every redelivery, so only the author's headers and the body count.
    digest = hashlib.sha256()
    for name in ("from", "to", "date", "subject"):
        digest.update((_header(mail, name) or "").encode("utf-8", "surrogateescape") + b"\x00")
    digest.update(_raw_body(raw))
    return _NO_MESSAGE_ID + digest.hexdigest()[:40]


def _raw_body(raw: bytes) -> bytes:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return raw[min(ends) :] if ends else b""


def _thread_id(mail: Message, external_id: str) -> str:
    references = message_ids(_header(mail, "references"))
    if references:
        return references[0]
    replied = message_ids(_header(mail, "in-reply-to"))
    return replied[0] if replied else external_id


# --- what is not a citizen's mail ---------------------------------------------------------------


def ignore_reason(mail: Message, own_addresses: Collection[str]) -> str | None:
    """Why this mail is not a citizen writing to us (and must not be answered), or None."""
    auto = (_header(mail, "auto-submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"automatic mail (Auto-Submitted: {auto})"
    for name in _AUTO_REPLY_HEADERS:
        if _header(mail, name) is not None:
            return f"automatic reply ({name} header)"
    precedence = (_header(mail, "precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"bulk or list mail (Precedence: {precedence})"
    for name in _LIST_HEADERS:
        if _header(mail, name) is not None:
            return f"mailing-list mail ({name} header)"
    content_type = (_header(mail, "content-type") or "").lower()
    if content_type.startswith(("multipart/report", "message/delivery-status", "message/disposition-notification")):
        return "delivery or read report (bounce, DSN or MDN)"
    return_path = _header(mail, "return-path")
    if return_path is not None and not return_path.strip().strip("<>").strip():
        return "mail with an empty Return-Path (a bounce or other notification)"
    sender = _from_address(mail)
    if sender and sender.split("@")[0].lower() == "mailer-daemon":
        return "bounce from MAILER-DAEMON"
    own = {a.strip().lower() for a in own_addresses if a}
    if sender and sender.lower() in own:
        return "our own mail"
    return None


def _broken_structure(mail: Message) -> str | None:
    for part in mail.walk():
        for defect in part.defects:
            if isinstance(defect, _BROKEN_STRUCTURE):
                return (
                    f"malformed MIME ({type(defect).__name__} in a {part.get_content_type()} part): the text "
                    "cannot be told apart from the structure; read the raw mail in quarantine"
                )
    return None


# --- building the message -----------------------------------------------------------------------


def _message(mail: Message, external_id: str, source: MailSource) -> InboundMessage:
    subject = _SPACES.sub(" ", _header(mail, "subject") or "").strip()
    body = _tidy(_text_of(mail))
    text = "\n\n".join(t for t in (subject, body) if t)[:MAX_TEXT_CHARS]
    media = list(_images(mail, source, external_id))[:MAX_MEDIA]
    if not text.strip() and not media:
        raise PayloadIgnored("an empty mail: no subject, no text and no photo")
    return InboundMessage(
        external_id=external_id,
        text=text,
        sender=_sender(mail),
        media=media,
        sent_at=_sent_at(mail, source.received_at),
        thread_id=_thread_id(mail, external_id),
    )


def _sender(mail: Message) -> Sender | None:
    """Who to answer: the single Reply-To address where the mail names one, else From."""
    for name in ("reply-to", "from"):
        pairs = _addresses(mail, name)
        if len(pairs) == 1 or (pairs and name == "from"):
            display, address = pairs[0]
            return Sender(email=address if len(address) <= 320 else None, name=display[:200] or None)
    return None


def _addresses(mail: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) of an address header, decoded; only entries that hold an address."""
    try:
        # policy.default parses address headers into objects (typeshed says str, hence getattr).
        addresses = getattr(mail.get(name), "addresses", None) or ()
        pairs = [(a.display_name, a.addr_spec) for a in addresses]
    except Exception:  # a header the parser could not structure: read it the old way
        pairs = getaddresses([_header(mail, name) or ""])
    cleaned = [(_SPACES.sub(" ", n).strip(), a.strip()) for n, a in pairs]
    return [(n, a) for n, a in cleaned if "@" in a and not _SPACES.search(a)]


def _from_address(mail: Message) -> str | None:
    pairs = _addresses(mail, "from")
    return pairs[0][1] if pairs else None


def _sent_at(mail: Message, received_at: datetime) -> datetime:
    """The Date header, unless missing, unreadable or in the future of when the server received the mail."""
    received = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    value = _header(mail, "date")
    if not value:
        return received
    try:
        written = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return received
    if written.tzinfo is None:
        written = written.replace(tzinfo=UTC)  # "-0000": UTC, the zone of origin unknown (RFC 5322 3.3)
    return received if written > received + timedelta(days=1) else written


def _header(mail: Message, name: str) -> str | None:
    """A header as text (RFC 2047 decoded), or its raw source where decoding fails; None if absent."""
    try:
        value = mail.get(name)
    except Exception:
        value = None
        for key, raw in mail.raw_items():
            if key.lower() == name:
                value = raw
                break
    if value is None:
        return None
    return str(value).replace("\x00", "")


# --- text -----------------------------------------------------------------------------------------


def _text_of(part: Message) -> str:
    """The readable text of a part: text/plain preferred over HTML, attachments left out."""
    content_type = part.get_content_type()
    if part.get_content_maintype() == "multipart":
        children = _children(part)
        if content_type == "multipart/alternative":
            return _best_alternative(children)
        texts = [_text_of(c) for c in children if c.get_content_disposition() != "attachment" or _is_mail(c)]
        return "\n\n".join(t for t in texts if t.strip())
    if _is_mail(part):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            # A forwarded mail: its subject and words are the complaint as much as the forwarder's.
            subject = _SPACES.sub(" ", _header(inner[0], "subject") or "").strip()
            return "\n\n".join(t for t in (subject, _text_of(inner[0])) if t.strip())
        return ""
    if part.get_content_disposition() == "attachment":
        return ""
    if content_type == "text/plain":
        return _decoded_text(part)
    if content_type == "text/html":
        return html_to_text(_decoded_text(part))
    return ""


def _best_alternative(children: list[Message]) -> str:
    texts = [(c.get_content_type(), _text_of(c)) for c in children]
    for content_type, text in texts:
        if content_type == "text/plain" and text.strip():
            return text
    # Otherwise the richest version that says something: alternatives are ordered plainest first.
    return next((text for _, text in reversed(texts) if text.strip()), "")


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _is_mail(part: Message) -> bool:
    return part.get_content_type() == "message/rfc822"


def _decoded_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know: UTF-8 reads ASCII and most of the rest
        return data.decode("utf-8", errors="replace")


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _HtmlText(HTMLParser):
    """Text of an HTML body: no markup, no scripts or styles, line breaks where blocks end. Fetches nothing."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient; should it give up, the words are still better than nothing
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    text = "".join(parser.parts).replace("\u00a0", " ")
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


# --- photos ---------------------------------------------------------------------------------------


def _images(mail: Message, source: MailSource, external_id: str) -> Iterator[MediaRef]:
    for section, part in leaf_parts(mail):
        if part.get_content_maintype() != "image":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or len(data) < MIN_IMAGE_BYTES:
            continue
        encoding = (_header(part, "content-transfer-encoding") or "7bit").strip().lower()
        if not re.fullmatch(r"[a-z0-9-]{1,30}", encoding):
            encoding = "7bit"
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        yield MediaRef(
            url=PartAddress(source.uidvalidity, source.uid, section, encoding).url,
            content_type=part.get_content_type(),
            filename=filename[:300] if filename else None,
            # Finds the mail again should the mailbox be rebuilt (new UIDVALIDITY) before the download.
            platform_id=external_id if is_real_message_id(external_id) else None,
            size=len(data),
        )


def leaf_parts(mail: Message) -> Iterator[tuple[str, Message]]:
    """(IMAP section, part) of every non-multipart part, in order, forwarded mails included (RFC 3501 6.4.5)."""
    yield from _leaves(mail, "")


def _leaves(part: Message, section: str) -> Iterator[tuple[str, Message]]:
    if part.get_content_maintype() == "multipart":
        for number, child in enumerate(_children(part), start=1):
            yield from _leaves(child, f"{section}.{number}" if section else str(number))
        return
    if _is_mail(part) and section:
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            # An encapsulated mail's parts are numbered under it; a single-part one's body is "<section>.1".
            if inner[0].get_content_maintype() == "multipart":
                yield from _leaves(inner[0], section)
            else:
                yield f"{section}.1", inner[0]
            return
    yield section or "1", part


def decode_part(data: bytes, transfer_encoding: str) -> bytes:
    """A part's bytes as the sender attached them: decoded exactly as `parse_mail` decoded them to count them."""
    carrier = Message()
    carrier["Content-Transfer-Encoding"] = transfer_encoding
    carrier.set_payload(data.decode("ascii", errors="surrogateescape"))
    decoded = carrier.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""
