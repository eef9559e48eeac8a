"""Answering a citizen by mail: the reply composed as a threaded, robot-marked mail, and sent over SMTP.

The reply quotes the citizen's Message-ID in In-Reply-To and References, so their mail program shows it in
the same conversation, and carries `Auto-Submitted: auto-replied` (RFC 3834) so that an out-of-office
robot at the other end does not answer it, and two robots never loop.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import unicodedata
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from adapters.contract import OutboundReply
from adapters.email_parsing import is_real_message_id, normalize_message_id
from adapters.email_settings import EmailSettings
from adapters.errors import ChannelUnavailable

_REPLY_PREFIX = re.compile(r"(?:re|aw|bls|balas)\s*:", re.IGNORECASE)
_MAX_SUBJECT_CHARS = 250


def reply_subject(original: str | None, ticket: str | None) -> str:
    """`Re: <the citizen's subject>` (mail programs thread by it too), else one naming the ticket."""
    if original:
        subject = original if _REPLY_PREFIX.match(original) else f"Re: {original}"
    elif ticket:
        subject = f"Laporan {ticket}"
    else:
        subject = "Tanggapan atas pengaduan Anda"
    return _printable(subject)[:_MAX_SUBJECT_CHARS]


def compose_reply(
    settings: EmailSettings,
    reply: OutboundReply,
    *,
    original_subject: str | None = None,
    original_references: list[str] | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The reply as a mail; raises `ChannelUnavailable(retryable=False)` when the citizen has no usable address."""
    recipient = _recipient(reply)
    sender = settings.sender_address
    if sender is None:
        raise NotImplementedError("this channel has no from_address to send replies from")
    domain = sender.rpartition("@")[2]
    message = EmailMessage()
    try:
        message["From"] = Address(display_name=_printable(settings.from_name or ""), addr_spec=sender)
        message["To"] = Address(display_name=_printable(reply.recipient.name or ""), addr_spec=recipient)
    except (ValueError, IndexError) as exc:
        raise ChannelUnavailable(
            f"cannot address the reply ({exc}); check the citizen's address", retryable=False
        ) from None
    message["Subject"] = reply_subject(original_subject, reply.ticket)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    parent = normalize_message_id(reply.in_reply_to) if is_real_message_id(reply.in_reply_to) else None
    if parent is not None:
        message["In-Reply-To"] = f"<{parent}>"
    # RFC 5322 3.6.4: the parent's References followed by the parent; without them, the thread's root first.
    chain = list(original_references or [])
    if not chain and reply.thread_id and is_real_message_id(reply.thread_id):
        chain.append(reply.thread_id)
    if parent is not None:
        chain.append(parent)
    chain = list(dict.fromkeys(i for i in (normalize_message_id(f"<{c}>") for c in chain) if i))
    if chain:
        message["References"] = " ".join(f"<{c}>" for c in chain)
    message["Auto-Submitted"] = "auto-replied"
    # Outlook and Exchange honour this one instead: no out-of-office answer to this mail.
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(reply.text)
    return message


def message_id_of(message: EmailMessage) -> str:
    return normalize_message_id(str(message["Message-ID"])) or str(message["Message-ID"])


def send(settings: EmailSettings, message: EmailMessage) -> None:
    """Hand the reply to the SMTP server. Blocking; raises `ChannelUnavailable`."""
    assert settings.smtp_host is not None and settings.sender_address is not None
    host, port = settings.smtp_host, settings.smtp_port_or_default
    where = f"{host}:{port}"
    recipient = parseaddr(str(message["To"]))[1]
    helo = settings.sender_address.rpartition("@")[2]
    context = ssl.create_default_context()
    try:
        if settings.smtp_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, local_hostname=helo, timeout=settings.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(host, port, local_hostname=helo, timeout=settings.timeout_seconds)
        with client:
            if settings.smtp_starttls:
                client.starttls(context=context)
            if settings.smtp_username and settings.smtp_password:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.send_message(message, from_addr=settings.sender_address, to_addrs=[recipient])
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelUnavailable(
            f"the SMTP server {where} refused the login ({exc.smtp_code}): check smtp_username and smtp_password",
            retryable=False,
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise ChannelUnavailable(
            f"the SMTP server {where} does not offer STARTTLS or AUTH; check smtp_port, smtp_ssl and smtp_starttls",
            retryable=False,
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        code, answer = next(iter(exc.recipients.values()), (0, b""))
        raise ChannelUnavailable(
            f"the SMTP server {where} refused the address {recipient} ({code} {_text(answer)})",
            retryable=400 <= code < 500,
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelUnavailable(
            f"the SMTP server {where} refused the reply ({exc.smtp_code} {_text(exc.smtp_error)})",
            retryable=exc.smtp_code < 500,
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise ChannelUnavailable(
            f"the SMTP server {where} presented a certificate we cannot verify ({exc.verify_message})",
            retryable=False,
        ) from None
    except TimeoutError:
        raise ChannelUnavailable(f"the SMTP server {where} did not answer in time") from None
    except OSError as exc:  # SMTPServerDisconnected and the other SMTPExceptions are OSErrors too
        raise ChannelUnavailable(f"SMTP connection to {where} failed ({type(exc).__name__})") from None


def _recipient(reply: OutboundReply) -> str:
    address = (reply.recipient.email or "").strip()
    parsed = parseaddr(address)[1]
    if not address or "@" not in parsed or parsed != address:
        raise ChannelUnavailable(
            "this citizen has no usable e-mail address to answer; reply on another channel or by phone",
            retryable=False,
        )
    return address


def _printable(text: str) -> str:
    """One line of visible text: header values cannot carry line breaks or control characters."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(cleaned.split())


def _text(answer: bytes | str) -> str:
    value = answer.decode("utf-8", errors="replace") if isinstance(answer, bytes) else str(answer)
    return " ".join(value.split())[:300]
