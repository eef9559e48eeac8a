"""Reading the mailbox over IMAP (imapclient, blocking: the adapter runs these in a thread).

Polling keeps a cursor `{"uidvalidity": V, "last_uid": U}`: the mails with a UID above U are new, as long
as the mailbox's UIDVALIDITY is still V (RFC 3501 2.3.1.1: UIDs only grow within one UIDVALIDITY). When
UIDVALIDITY changes (the mailbox was deleted and recreated, restored, migrated) no UID can be trusted, so
the mails received since the last poll (and at least `rescan_days` back) are read again and Kanal's inbox
drops those it already has by Message-ID. The first poll is such a rescan too. A rescan larger than one
poll's share goes on from poll to poll (`rescan_since` in the cursor marks it) and only at its end does
the cursor jump to the top of the mailbox, so an old mail that got a high UID in the rebuild is not taken
for a new one.

The mailbox is opened read-only and read with BODY.PEEK: Kanal never changes a flag staff may rely on.
"""

from __future__ import annotations

import imaplib
import json
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.contract import FetchResult, InboundMessage, MediaContent, RejectedItem
from adapters.email_parsing import (
    MailRejected,
    MailSource,
    PartAddress,
    decode_part,
    leaf_parts,
    mail_external_id,
    message_ids,
    parse_mail,
)
from adapters.email_settings import EmailSettings
from adapters.errors import ChannelUnavailable, MediaUnavailable, PayloadIgnored

log = logging.getLogger(__name__)

#: Mails fetched per FETCH command, and their total size at most, so a poll holds little in memory at once.
_CHUNK_MESSAGES = 10
_CHUNK_BYTES = 16 * 1024 * 1024


class MailCursor(BaseModel):
    """Where polling resumes. `last_uid` is the highest UID read (during a rescan: read of the rescan)."""

    model_config = ConfigDict(extra="ignore")

    uidvalidity: int = Field(ge=0)
    last_uid: int = Field(default=0, ge=0)
    #: Set while a rescan (after a UIDVALIDITY change, or the first poll) is under way: its first day.
    rescan_since: date | None = None
    #: The day of the last successful poll: a rescan reaches back at least to the day before it.
    checked_on: date | None = None

    @classmethod
    def load(cls, cursor: str | None) -> MailCursor | None:
        if cursor is None:
            return None
        try:
            return cls.model_validate_json(cursor)
        except ValidationError:
            # Not ours (an older format, an edited row): rescanning is safe, losing mail is not.
            log.warning("email: cursor %r not understood; rescanning the recent mail instead", cursor[:200])
            return None

    def dump(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True)


# --- connection -----------------------------------------------------------------------------------


@contextmanager
def imap_errors(settings: EmailSettings, doing: str) -> Iterator[None]:
    """Turn what imapclient and sockets raise into `ChannelUnavailable`, retryable where waiting may help."""
    where = f"{settings.imap_host}:{settings.imap_port_or_default}"
    try:
        yield
    except LoginError:
        raise ChannelUnavailable(
            f"the IMAP server {where} refused the login of {settings.username!r}: check username and password",
            retryable=False,
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise ChannelUnavailable(
            f"the IMAP server {where} presented a certificate we cannot verify ({exc.verify_message}); "
            "fix the server's certificate or imap_host",
            retryable=False,
        ) from None
    except TimeoutError:
        raise ChannelUnavailable(f"the IMAP server {where} did not answer in time while {doing}") from None
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise ChannelUnavailable(f"IMAP connection to {where} failed while {doing} ({type(exc).__name__})") from None
    except IMAPClientError as exc:
        raise ChannelUnavailable(f"the IMAP server {where} refused a command while {doing}: {str(exc)[:200]}") from None


@contextmanager
def open_mailbox(settings: EmailSettings, doing: str) -> Iterator[tuple[IMAPClient, dict[bytes, Any]]]:
    """A logged-in client with the mailbox selected read-only, and the SELECT response."""
    with imap_errors(settings, doing):
        context = ssl.create_default_context()
        client = IMAPClient(
            settings.imap_host,
            port=settings.imap_port_or_default,
            ssl=settings.imap_ssl,
            ssl_context=context if settings.imap_ssl else None,
            timeout=settings.timeout_seconds,
        )
        # Aware INTERNALDATEs, in the server's zone, instead of naive local times.
        client.normalise_times = False
        try:
            if settings.imap_starttls:
                client.starttls(context)
            client.login(settings.username, settings.password.get_secret_value())
            try:
                selected = client.select_folder(settings.mailbox, readonly=True)
            except IMAPClientError as exc:
                raise ChannelUnavailable(
                    f"mailbox {settings.mailbox!r} cannot be opened ({str(exc)[:200]}); check the `mailbox` setting",
                    retryable=False,
                ) from None
            yield client, selected
        finally:
            try:
                client.logout()
            except Exception:  # the connection is going away either way
                with suppress(Exception):
                    client.shutdown()


# --- polling --------------------------------------------------------------------------------------


def poll(settings: EmailSettings, cursor: str | None, *, today: date | None = None) -> FetchResult:
    """One poll: the mails after the cursor (or the rescan's next share), parsed, and the cursor after them."""
    today = today or datetime.now(UTC).date()
    state = MailCursor.load(cursor)
    with open_mailbox(settings, "polling") as (client, selected):
        if selected.get(b"UIDVALIDITY") is None:
            raise ChannelUnavailable(
                f"the IMAP server gives no UIDVALIDITY for {settings.mailbox!r}, so no mail can be told apart "
                "from the next; use another server or mailbox",
                retryable=False,
            )
        validity = int(selected[b"UIDVALIDITY"])
        with imap_errors(settings, "polling"):
            top = _top_uid(client, selected)
            if state is None or state.uidvalidity != validity:
                if state is not None:
                    log.warning(
                        "email: UIDVALIDITY of %r changed (%d -> %d): the mailbox was rebuilt; rescanning",
                        settings.mailbox,
                        state.uidvalidity,
                        validity,
                    )
                state = MailCursor(uidvalidity=validity, rescan_since=_rescan_start(settings, state, today))
            if state.rescan_since is not None:
                found = client.search(["SINCE", state.rescan_since])
            else:
                # "U+1:*" names the last mail even when no UID is above U (RFC 3501 6.4.8): filter.
                found = client.search(["UID", f"{state.last_uid + 1}:*"])
            pending = sorted(uid for uid in found if uid > state.last_uid)
            batch = pending[: settings.max_messages_per_poll]
            messages, rejected = _read(client, batch, validity, settings)
        last_uid = max([state.last_uid, *batch])
        rescan_since = state.rescan_since
        if rescan_since is not None and len(pending) <= len(batch):
            # The rescan is done: anything up to the top of the mailbox is either read or older than it.
            last_uid, rescan_since = max(last_uid, top), None
        new_state = MailCursor(uidvalidity=validity, last_uid=last_uid, rescan_since=rescan_since, checked_on=today)
    return FetchResult(messages=messages, cursor=new_state.dump(), rejected=rejected)


def _rescan_start(settings: EmailSettings, previous: MailCursor | None, today: date) -> date:
    start = today - timedelta(days=settings.rescan_days)
    if previous is not None and previous.checked_on is not None:
        # SINCE compares dates in the server's zone: a day's margin covers the offset.
        start = min(start, previous.checked_on - timedelta(days=1))
    return start


def _top_uid(client: IMAPClient, selected: dict[bytes, Any]) -> int:
    uidnext = selected.get(b"UIDNEXT")
    if uidnext is not None:
        return max(int(uidnext) - 1, 0)
    return max(client.search(["ALL"]), default=0)


def _read(
    client: IMAPClient, uids: list[int], validity: int, settings: EmailSettings
) -> tuple[list[InboundMessage], list[RejectedItem]]:
    messages: list[InboundMessage] = []
    rejected: list[RejectedItem] = []
    if not uids:
        return messages, rejected
    facts = client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
    readable: list[int] = []
    for uid in uids:
        if uid not in facts:
            continue  # expunged since the search: nothing left to read
        size = int(facts[uid].get(b"RFC822.SIZE") or 0)
        if size > settings.max_message_bytes:
            header = _fetch_section(client, uid, "HEADER")
            rejected.append(
                RejectedItem(
                    external_id=mail_external_id(header),
                    reason=(
                        f"mail of {size} bytes is larger than max_message_bytes ({settings.max_message_bytes}); "
                        "only its header is kept here: read it in the mailbox"
                    ),
                    body=header,
                    content_type="message/rfc822",
                )
            )
        else:
            readable.append(uid)
    for chunk in _chunks(readable, facts):
        bodies = client.fetch(chunk, ["BODY.PEEK[]"])
        for uid in chunk:
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if not isinstance(raw, bytes):
                continue
            source = MailSource(validity, uid, _received_at(facts[uid].get(b"INTERNALDATE")))
            try:
                messages.append(parse_mail(raw, source=source, own_addresses=settings.own_addresses))
            except PayloadIgnored as ignored:
                log.info("email: UID %d ignored: %s", uid, ignored.reason)
            except MailRejected as exc:
                log.warning("email: UID %d quarantined: %s", uid, exc.message)
                rejected.append(
                    RejectedItem(
                        external_id=exc.external_id, reason=exc.message[:2000], body=raw, content_type="message/rfc822"
                    )
                )
    return messages, rejected


def _chunks(uids: list[int], facts: dict[int, dict[bytes, Any]]) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for uid in uids:
        mail_size = int(facts[uid].get(b"RFC822.SIZE") or 0)
        if chunk and (len(chunk) >= _CHUNK_MESSAGES or size + mail_size > _CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(uid)
        size += mail_size
    if chunk:
        yield chunk


def _received_at(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _fetch_section(client: IMAPClient, uid: int, section: str, partial: int | None = None) -> bytes:
    """BODY.PEEK[section] (its first `partial` bytes when given) of one mail; b"" when the mail is gone."""
    item = f"BODY.PEEK[{section}]" + (f"<0.{partial}>" if partial is not None else "")
    answer = client.fetch([uid], [item]).get(uid, {})
    # One section was asked for; the key spells it the server's way (reordered fields, an <origin>).
    for key, value in answer.items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY[") and isinstance(value, bytes):
            return value
    return b""


# --- media ----------------------------------------------------------------------------------------


def download_part(
    settings: EmailSettings,
    address: PartAddress,
    *,
    message_id: str | None,
    expected_size: int | None,
    content_type: str,
    max_bytes: int,
) -> MediaContent:
    """The bytes of one attached photo, decoded, at most `max_bytes`."""
    # A base64 part is 4/3 of its content, a quoted-printable one at most 3 times: read no more than that.
    limit = 3 * max_bytes + 4096
    gone = f"the mail is no longer in mailbox {settings.mailbox!r} (moved or deleted)"
    with open_mailbox(settings, "downloading a photo") as (client, selected), imap_errors(settings, "downloading"):
        uid = address.uid
        if int(selected[b"UIDVALIDITY"]) != address.uidvalidity:
            # The mailbox was rebuilt since the mail was read: find the mail again by its Message-ID.
            if not message_id:
                raise MediaUnavailable(f"mailbox {settings.mailbox!r} was rebuilt and the mail has no Message-ID")
            found = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
            if not found:
                raise MediaUnavailable(gone)
            uid = max(found)
        facts = client.fetch([uid], ["RFC822.SIZE"]).get(uid)
        if facts is None:
            raise MediaUnavailable(gone)
        encoded = _fetch_section(client, uid, address.section, partial=limit)
        if len(encoded) >= limit:
            raise MediaUnavailable(f"too large: more than {max_bytes} bytes")
        data = decode_part(encoded, address.transfer_encoding)
        if not _as_announced(data, expected_size):
            # Some servers number the parts inside a forwarded mail otherwise than RFC 3501 6.4.5 (pymap
            # does): read the whole mail and find the part as `parse_mail` numbered it.
            size = int(facts.get(b"RFC822.SIZE") or 0)
            if size > settings.max_message_bytes:
                raise MediaUnavailable(f"the mail ({size} bytes) is larger than max_message_bytes; not read")
            data = _part_of(_fetch_section(client, uid, ""), address.section)
    if len(data) > max_bytes:
        raise MediaUnavailable(f"too large: {len(data)} bytes, limit {max_bytes}")
    if not _as_announced(data, expected_size):
        raise MediaUnavailable(
            f"part {address.section} of the mail is not the photo that was announced ({len(data)} bytes, "
            f"expected {expected_size}); the mail was changed on the server"
        )
    return MediaContent(content_type=content_type, data=data)


def _as_announced(data: bytes, expected_size: int | None) -> bool:
    return bool(data) and (expected_size is None or len(data) == expected_size)


def _part_of(raw: bytes, section: str) -> bytes:
    """The decoded bytes of the part at `section` of a whole mail; b"" when it has none there."""
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    for found, part in leaf_parts(mail):
        if found == section:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return b""


# --- the mail a reply answers ---------------------------------------------------------------------


def original_headers(settings: EmailSettings, message_id: str) -> tuple[str | None, list[str]]:
    """The Subject and References of the citizen's mail, to thread a reply; (None, []) when not found."""
    with open_mailbox(settings, "looking up the mail replied to") as (client, _), imap_errors(settings, "looking up"):
        found = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
        if not found:
            return None, []
        header = _fetch_section(client, max(found), "HEADER.FIELDS (SUBJECT REFERENCES)")
    parsed = BytesParser(policy=policy.default).parsebytes(header, headersonly=True)
    subject = " ".join(str(parsed.get("subject") or "").split()) or None
    return subject, message_ids(str(parsed.get("references") or ""))
