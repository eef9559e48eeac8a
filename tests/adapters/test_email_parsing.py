"""One mail's bytes -> what Kanal stores, ignores or quarantines (`adapters.email_parsing`, pure, no server)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract import InboundMessage
from adapters.email_parsing import (
    MIN_IMAGE_BYTES,
    MailRejected,
    MailSource,
    PartAddress,
    decode_part,
    leaf_parts,
    message_ids,
    normalize_message_id,
    parse_mail,
)
from adapters.errors import PayloadIgnored, PayloadRejected
from tests.peers.mail import FIXTURES, fixture_mail

OURS = frozenset({"dki@jakarta.go.id"})
RECEIVED = datetime(2024, 6, 10, 4, 0, tzinfo=UTC)
SOURCE = MailSource(uidvalidity=777, uid=4321, received_at=RECEIVED)


def read(raw: bytes, *, source: MailSource = SOURCE) -> InboundMessage:
    return parse_mail(raw, source=source, own_addresses=OURS)


def png_in(name: str) -> bytes:
    """The first base64 PNG of a fixture, decoded: what the citizen attached."""
    text = (FIXTURES / name).read_text()
    block = re.search(r"\n\n(iVBOR[A-Za-z0-9+/=\n]+)\n--", text)
    assert block is not None
    return base64.b64decode(block[1])


def mail(body: str = "Trotoar rusak di Jl. Sabang", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ani <ani@example.com>"
    message["To"] = "dki@jakarta.go.id"
    message["Subject"] = "Trotoar rusak"
    message["Message-ID"] = "<ani.1@example.com>"
    message["Date"] = "Mon, 10 Jun 2024 09:00:00 +0700"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        if value:
            message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


# --- what a citizen wrote --------------------------------------------------------------------------


def test_a_plain_mail_keeps_subject_text_sender_thread_and_date() -> None:
    message = read(fixture_mail("plain.eml"))
    assert message.external_id == "20240603101500.4821@mail.example.co.id"
    assert message.text.startswith("Jalan berlubang di Jl. Kramat Raya\n\nSelamat pagi,\n\nJalan berlubang besar")
    assert message.text.endswith("Salam,\nBudi"), "quoting and signatures are the normalizer's to remove"
    assert message.sender is not None
    assert (message.sender.email, message.sender.name) == ("budi.santoso@example.co.id", "Budi Santoso")
    assert message.thread_id == message.external_id, "a new mail starts its own thread"
    assert message.sent_at == datetime(2024, 6, 3, 10, 15, tzinfo=timezone(timedelta(hours=7)))
    assert message.media == []


def test_an_html_mail_becomes_text_without_markup_scripts_or_styles_and_keeps_its_inline_photo() -> None:
    message = read(fixture_mail("html_inline_photo.eml"))
    assert message.text == (
        "Sampah menumpuk di kali – Cideng\n\n"
        "Yth. Pemprov DKI,\n\n"
        "Sampah menumpuk di kali Cideng dekat jembatan Jl. Tanah Abang II, bau menyengat & banyak lalat.\n\n"
        "Terima kasih."
    )
    [photo] = message.media  # the 4x4 logo is too small to be a photo
    assert photo.content_type == "image/png" and photo.filename == "kali-cideng.png"
    assert photo.url == "imap:777/4321/2/base64"
    assert photo.size == len(png_in("html_inline_photo.eml"))
    assert photo.platform_id == message.external_id


def test_plain_text_is_preferred_and_only_image_attachments_are_kept() -> None:
    message = read(fixture_mail("plain_with_photo.eml"))
    assert "<div>" not in message.text and "Foto terlampir." in message.text
    assert message.text.count("Lampu penerangan") == 1, "one alternative, not both"
    assert [(m.filename, m.url) for m in message.media] == [("lampu-mati.png", "imap:777/4321/2/base64")]


def test_a_forwarded_mail_contributes_its_words_and_photo() -> None:
    message = read(fixture_mail("forwarded_with_photo.eml"))
    assert "Mohon ditindaklanjuti" in message.text
    assert "Pohon besar tumbang menutup Jl. Kenari II" in message.text
    assert "Café di pojok" in message.text, "the inner mail's ISO-8859-1 text is decoded"
    [photo] = message.media
    assert photo.url == "imap:777/4321/2.2/base64" and photo.filename == "pohon.png"


def test_the_imap_sections_follow_rfc_3501() -> None:
    sections = [(s, p.get_content_type()) for s, p in leaf_parts(_parsed(fixture_mail("forwarded_with_photo.eml")))]
    assert sections == [("1", "text/plain"), ("2.1", "text/plain"), ("2.2", "image/png")]
    single = [s for s, _ in leaf_parts(_parsed(fixture_mail("plain.eml")))]
    assert single == ["1"]


def _parsed(raw: bytes) -> EmailMessage:
    from email import policy
    from email.parser import BytesParser

    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_photo_decodes_back_to_the_bytes_the_citizen_attached() -> None:
    raw = fixture_mail("plain_with_photo.eml")
    encoded = raw.split(b'filename="lampu-mati.png"\r\n\r\n')[1].split(b"\r\n--")[0]
    assert decode_part(encoded, "base64") == png_in("plain_with_photo.eml")


def test_a_reply_joins_the_thread_of_the_first_mail_it_references() -> None:
    message = read(fixture_mail("reply_in_thread.eml"))
    assert message.thread_id == "20240603101500.4821@mail.example.co.id"
    assert message.external_id == "20240606083000.1177@mail.example.co.id"


def test_without_references_the_thread_is_the_mail_replied_to() -> None:
    message = read(mail(In_Reply_To="<first.1@example.com>"))
    assert message.thread_id == "first.1@example.com"


def test_reply_to_is_who_gets_the_answer() -> None:
    message = read(mail(Reply_To="Ani Warga <ani.pribadi@example.net>", From="Formulir <noreply@form.example.com>"))
    assert message.sender is not None
    assert (message.sender.email, message.sender.name) == ("ani.pribadi@example.net", "Ani Warga")


def test_an_encoded_subject_is_decoded() -> None:
    message = read(mail(Subject="=?UTF-8?B?R290IG1hbXBldCDigJMgUHJhbXVrYQ==?="))
    assert message.text.startswith("Got mampet – Pramuka\n\n")


def test_a_mail_without_message_id_gets_the_same_id_each_time_it_is_read() -> None:
    raw = fixture_mail("no_message_id.eml")
    relayed = b"Received: from relay.example.com by mx.jakarta.go.id; Mon, 10 Jun 2024 11:12:00 +0700\r\n" + raw
    first, again = read(raw), read(relayed, source=MailSource(778, 1, RECEIVED))
    assert first.external_id.startswith("no-message-id-")
    assert first.external_id == again.external_id == first.thread_id
    other = read(raw.replace(b"depan pasar", b"depan stasiun"))
    assert other.external_id != first.external_id


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 10 Jun 2024 09:00:00 +0700", datetime(2024, 6, 10, 2, 0, tzinfo=UTC)),
        ("Mon, 10 Jun 2024 09:00:00 -0000", datetime(2024, 6, 10, 9, 0, tzinfo=UTC)),
        ("kemarin sore", RECEIVED),
        ("", RECEIVED),
        ("Sun, 1 Jan 2034 00:00:00 +0000", RECEIVED),  # a sender's clock years ahead
    ],
    ids=["with offset", "unknown zone", "unreadable", "missing", "in the future"],
)
def test_sent_at_is_timezone_aware_and_never_in_the_future(date: str, expected: datetime) -> None:
    sent_at = read(mail(Date=date)).sent_at
    assert sent_at is not None and sent_at.tzinfo is not None
    assert sent_at == expected


def test_an_unknown_charset_is_read_as_utf8() -> None:
    raw = mail().replace(b'charset="utf-8"', b'charset="x-unknown-charset"')
    assert "Trotoar rusak di Jl. Sabang" in read(raw).text


def test_a_very_long_mail_is_cut_and_at_most_twenty_photos_are_kept() -> None:
    message = EmailMessage()
    message["From"] = "ani@example.com"
    message["Message-ID"] = "<many@example.com>"
    message.set_content("Genangan air " * 5000)
    for n in range(25):
        message.add_attachment(bytes([n]) * MIN_IMAGE_BYTES, "image", "jpeg", filename=f"foto{n}.jpg")
    parsed = read(message.as_bytes())
    assert len(parsed.text) == 20_000
    assert len(parsed.media) == 20 and parsed.media[0].filename == "foto0.jpg"


# --- what is not a citizen's mail ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (fixture_mail("auto_reply.eml"), "Auto-Submitted: auto-replied"),
        (fixture_mail("bounce.eml"), "Auto-Submitted"),
        (mail(Return_Path="<>"), "empty Return-Path"),
        (
            fixture_mail("bounce.eml").replace(b"Auto-Submitted: auto-replied\r\n", b"").replace(b"<>", b"<x@y.z>"),
            "bounce, DSN or MDN",
        ),
        (mail(From="MAILER-DAEMON@mx.example.com"), "MAILER-DAEMON"),
        (fixture_mail("list_mail.eml"), "Precedence: list"),
        (mail(List_Id="<warga.lists.example.org>"), "list-id"),
        (mail(List_Unsubscribe="<mailto:leave@example.org>"), "list-unsubscribe"),
        (mail(Precedence="bulk"), "Precedence: bulk"),
        (mail(X_Autorespond="yes"), "x-autorespond"),
        (mail(Auto_Submitted="auto-generated"), "auto-generated"),
        (mail(From="Pengaduan <DKI@jakarta.go.id>"), "our own mail"),
        (mail(body="", Subject=""), "empty mail"),
    ],
    ids=[
        "out of office",
        "bounce",
        "empty Return-Path",
        "delivery report",
        "mailer daemon",
        "list precedence",
        "list id",
        "list unsubscribe",
        "bulk",
        "x-autorespond",
        "auto-generated",
        "our own reply",
        "empty",
    ],
)
def test_mail_nobody_should_answer_is_ignored(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadIgnored) as ignored:
        read(raw)
    assert reason in ignored.value.reason


def test_auto_submitted_no_is_a_person_writing() -> None:
    assert read(mail(Auto_Submitted="no")).external_id == "ani.1@example.com"


# --- what cannot be read ---------------------------------------------------------------------------


def test_malformed_mime_is_refused_with_its_message_id() -> None:
    with pytest.raises(MailRejected) as refused:
        read(fixture_mail("malformed.eml"))
    assert refused.value.external_id == "broken.mime.0608@example.com"
    assert "malformed MIME" in refused.value.message and "quarantine" in refused.value.message


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"just some words, no headers", b"\x00\xff\xfe" * 50])
def test_bytes_that_are_no_mail_are_refused(raw: bytes) -> None:
    with pytest.raises(MailRejected):
        read(raw)


# --- ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@host.example>", "abc@host.example"),
        ("  <abc@host.example> (comment)", "abc@host.example"),
        ("<first@x> <second@x>", "first@x"),
        ("bare-id@host", "bare-id@host"),
        ("two words", None),
        ("", None),
        (None, None),
    ],
)
def test_message_ids_are_normalised(value: str | None, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


def test_an_overlong_message_id_is_hashed_to_fit() -> None:
    normalized = normalize_message_id("<" + "a" * 300 + "@x>")
    assert normalized is not None and len(normalized) <= 200 and normalized.startswith("long-message-id-")


def test_references_are_read_in_order() -> None:
    assert message_ids("<a@x>\r\n <b@x> junk <c@x>") == ["a@x", "b@x", "c@x"]


def test_media_urls_read_back() -> None:
    address = PartAddress(5, 101, "2.1.3", "base64")
    assert PartAddress.from_url(address.url) == address
    assert PartAddress.from_url("https://example.com/x.png") is None
    assert PartAddress.from_url("imap:5/101/2;rm -rf/base64") is None


# --- any input -------------------------------------------------------------------------------------

ALLOWED = (InboundMessage,)


def _outcome(raw: bytes) -> str:
    try:
        result = read(raw)
    except PayloadIgnored:
        return "ignored"
    except PayloadRejected:
        return "rejected"
    assert isinstance(result, ALLOWED)
    return "message"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_give_a_message_an_ignore_or_a_rejection(raw: bytes) -> None:
    _outcome(raw)


FIXTURE_MAILS = [fixture_mail(p.name) for p in sorted(FIXTURES.glob("*.eml"))]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(FIXTURE_MAILS),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.binary(max_size=200),
)
def test_damaged_fixtures_give_a_message_an_ignore_or_a_rejection(
    raw: bytes, start: int, end: int, noise: bytes
) -> None:
    start, end = sorted((start % (len(raw) + 1), end % (len(raw) + 1)))
    _outcome(raw[:start] + noise + raw[end:])
    _outcome(raw[:start])  # a mail cut short, as a dropped connection leaves it


HEADER_NAMES = st.sampled_from(
    ["From", "Reply-To", "Subject", "Date", "Message-ID", "References", "In-Reply-To", "Content-Type",
     "Content-Transfer-Encoding", "Auto-Submitted", "Return-Path", "To"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(HEADER_NAMES, st.text(max_size=80)), max_size=8),
    st.text(max_size=500),
)
def test_any_header_values_give_a_message_an_ignore_or_a_rejection(headers: list[tuple[str, str]], body: str) -> None:
    lines = [f"{name}: {value}" for name, value in headers]
    raw = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", errors="surrogateescape")
    _outcome(raw)
