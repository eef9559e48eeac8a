"""Polling the mailbox and fetching photos, against a real IMAP server (pymap) on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from adapters.contract import FetchResult, MediaRef
from adapters.email import EmailAdapter
from adapters.errors import ChannelUnavailable, MediaUnavailable
from kanal_testing import build_adapter, run_fetch
from tests.peers.mail import FIXTURES, MAILBOX_PASSWORD, MailPeer, fixture_mail

PLAIN_ID = "20240603101500.4821@mail.example.co.id"
PHOTO_ID = "9f1c2b.andi@example.org"
HTML_ID = "CAF=html.8811@mail.example.net"


@pytest.fixture
def peer() -> Iterator[MailPeer]:
    with MailPeer() as running:
        yield running


def fetch(peer: MailPeer, cursor: str | None = None, **settings: Any) -> FetchResult:
    return run_fetch(EmailAdapter, peer.settings(**settings), cursor, channel_id="email:dki")


def ids(result: FetchResult) -> list[str]:
    return [m.external_id for m in result.messages]


def cursor_of(result: FetchResult) -> dict[str, Any]:
    assert result.cursor is not None
    parsed: dict[str, Any] = json.loads(result.cursor)
    return parsed


def numbered(n: int, *, subject: str = "Laporan") -> bytes:
    message = EmailMessage()
    message["From"] = f"Warga {n} <warga{n}@example.com>"
    message["To"] = "dki@jakarta.go.id"
    message["Subject"] = f"{subject} {n}"
    message["Message-ID"] = f"<warga.{n}@example.com>"
    message.set_content(f"Keluhan nomor {n}: saluran air tersumbat di RT {n:02d}.")
    return message.as_bytes()


def png_in(name: str) -> bytes:
    block = re.search(r"\n\n(iVBOR[A-Za-z0-9+/=\n]+)\n--", (FIXTURES / name).read_text())
    assert block is not None
    return base64.b64decode(block[1])


# --- polling --------------------------------------------------------------------------------------


def test_new_mail_is_read_once_and_the_next_poll_reads_only_what_came_after(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain.eml"))
    first = fetch(peer)
    assert ids(first) == [PLAIN_ID]
    # "UID n+1:*" also names the newest mail when nothing is newer: it must not come back.
    again = fetch(peer, first.cursor)
    assert ids(again) == [] and cursor_of(again)["last_uid"] == cursor_of(first)["last_uid"]
    peer.deliver(fixture_mail("plain_with_photo.eml"))
    later = fetch(peer, again.cursor)
    assert ids(later) == [PHOTO_ID]
    assert cursor_of(later)["uidvalidity"] == peer.uidvalidity()


def test_reading_leaves_the_mail_unread_for_staff(peer: MailPeer) -> None:
    uid = peer.deliver(fixture_mail("plain.eml"))
    fetch(peer)
    with peer.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Seen" not in client.get_flags([uid])[uid]


def test_auto_replies_and_bounces_are_skipped_and_the_cursor_moves_past_them(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("auto_reply.eml"))
    last = peer.deliver(fixture_mail("bounce.eml"))
    result = fetch(peer)
    assert result.messages == [] and result.rejected == []
    assert cursor_of(result)["last_uid"] == last


def test_a_malformed_mail_is_handed_over_for_quarantine_once(peer: MailPeer) -> None:
    raw = fixture_mail("malformed.eml")
    peer.deliver(raw)
    peer.deliver(fixture_mail("plain.eml"))
    first = fetch(peer)
    assert ids(first) == [PLAIN_ID]
    [rejected] = first.rejected
    assert rejected.external_id == "broken.mime.0608@example.com"
    assert rejected.body == raw and rejected.content_type == "message/rfc822"
    assert "malformed MIME" in rejected.reason
    again = fetch(peer, first.cursor)
    assert again.rejected == [] and again.messages == []


def test_a_mail_over_the_size_limit_is_quarantined_by_its_header(peer: MailPeer) -> None:
    big = EmailMessage()
    big["From"] = "ani@example.com"
    big["Message-ID"] = "<big.1@example.com>"
    big["Subject"] = "Video banjir"
    big.set_content("Video terlampir")
    big.add_attachment(b"\x00" * 200_000, "video", "mp4", filename="banjir.mp4")
    peer.deliver(big.as_bytes())
    result = fetch(peer, max_message_bytes=64 * 1024)
    [rejected] = result.rejected
    assert rejected.external_id == "big.1@example.com" and "max_message_bytes" in rejected.reason
    assert rejected.body.startswith(b"From: ani@example.com") and len(rejected.body) < 1000
    assert fetch(peer, result.cursor, max_message_bytes=64 * 1024).rejected == []


def test_a_large_backlog_is_read_a_share_per_poll_in_order(peer: MailPeer) -> None:
    for n in range(1, 6):
        peer.deliver(numbered(n))
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        result = fetch(peer, cursor, max_messages_per_poll=2)
        assert len(result.messages) <= 2
        seen += ids(result)
        cursor = result.cursor
    assert seen == [f"warga.{n}@example.com" for n in range(1, 6)]
    assert ids(fetch(peer, cursor, max_messages_per_poll=2)) == []


def test_the_first_poll_reads_only_the_recent_mail(peer: MailPeer) -> None:
    peer.deliver(numbered(1), received_at=datetime.now(UTC) - timedelta(days=40))
    peer.deliver(numbered(2))
    first = fetch(peer, rescan_days=7)
    assert ids(first) == ["warga.2@example.com"]
    assert "rescan_since" not in cursor_of(first)


def test_a_rebuilt_mailbox_loses_nothing_and_repeats_only_what_kanal_recognises(peer: MailPeer) -> None:
    peer.deliver(numbered(1))
    peer.deliver(numbered(2))
    before = fetch(peer)
    assert ids(before) == ["warga.1@example.com", "warga.2@example.com"]
    old_validity = cursor_of(before)["uidvalidity"]

    # The provider rebuilds the mailbox: the same mails come back under new UIDs, an old one among them,
    # and a new mail arrives in the meantime. The old cursor's UIDs mean nothing any more.
    archive = peer.rebuild_inbox()
    for raw in peer.raw_mails(archive):
        peer.deliver(raw)
    peer.deliver(numbered(3))
    peer.deliver(numbered(99), received_at=datetime.now(UTC) - timedelta(days=400))

    after = fetch(peer, before.cursor, rescan_days=7)
    assert cursor_of(after)["uidvalidity"] != old_validity
    # The first two are read again and left to the inbox to recognise by Message-ID; the year-old one,
    # never seen before but long handled by staff, is not taken for a new complaint.
    assert ids(after) == ["warga.1@example.com", "warga.2@example.com", "warga.3@example.com"]
    assert ids(fetch(peer, after.cursor)) == []
    peer.deliver(numbered(4))
    assert ids(fetch(peer, after.cursor)) == ["warga.4@example.com"]


def test_a_rescan_larger_than_one_poll_goes_on_until_done(peer: MailPeer) -> None:
    for n in range(1, 5):
        peer.deliver(numbered(n))
    peer.rebuild_inbox()
    for n in range(1, 5):
        peer.deliver(numbered(n))
    stale = json.dumps({"uidvalidity": 1, "last_uid": 4, "checked_on": datetime.now(UTC).date().isoformat()})
    seen: list[str] = []
    cursor: str | None = stale
    for _ in range(2):
        result = fetch(peer, cursor, max_messages_per_poll=3)
        seen += ids(result)
        cursor = result.cursor
    assert seen == [f"warga.{n}@example.com" for n in range(1, 5)]
    assert "rescan_since" not in cursor_of(result)
    assert ids(fetch(peer, cursor, max_messages_per_poll=3)) == []


def test_a_cursor_it_cannot_read_means_a_rescan_not_a_crash(peer: MailPeer) -> None:
    peer.deliver(numbered(1))
    assert ids(fetch(peer, "not json")) == ["warga.1@example.com"]


# --- failures -------------------------------------------------------------------------------------


def test_an_unreachable_server_is_a_retryable_failure(peer: MailPeer) -> None:
    peer.failing = True
    with pytest.raises(ChannelUnavailable) as failed:
        fetch(peer)
    assert failed.value.retryable
    peer.failing = False
    peer.deliver(numbered(1))
    assert ids(fetch(peer)) == ["warga.1@example.com"]


def test_a_wrong_password_is_not_retried_and_not_shown(peer: MailPeer) -> None:
    with pytest.raises(ChannelUnavailable) as failed:
        fetch(peer, password="salah-kata-sandi-0123")
    assert not failed.value.retryable
    assert "check username and password" in str(failed.value)
    assert "salah-kata-sandi" not in str(failed.value) and MAILBOX_PASSWORD not in str(failed.value)


def test_a_missing_mailbox_is_named_in_the_error(peer: MailPeer) -> None:
    with pytest.raises(ChannelUnavailable) as failed:
        fetch(peer, mailbox="Pengaduan")
    assert not failed.value.retryable and "'Pengaduan'" in str(failed.value)


def test_plain_imap_off_this_machine_is_refused_at_start(peer: MailPeer) -> None:
    with pytest.raises(ValueError, match="imap_ssl"):
        build_adapter(EmailAdapter, peer.settings(imap_host="imap.jakarta.go.id"))


# --- photos ---------------------------------------------------------------------------------------


def download(peer: MailPeer, ref: MediaRef, max_bytes: int = 1_000_000, **settings: Any) -> bytes:
    adapter = build_adapter(EmailAdapter, peer.settings(**settings), channel_id="email:dki")
    content = asyncio.run(adapter.download_media(ref, max_bytes=max_bytes))
    assert content.content_type == ref.content_type
    return content.data


@pytest.mark.parametrize(
    "fixture", ["plain_with_photo.eml", "html_inline_photo.eml", "forwarded_with_photo.eml"], ids=str
)
def test_a_photo_is_downloaded_from_its_mail_as_attached(peer: MailPeer, fixture: str) -> None:
    peer.deliver(fixture_mail(fixture))
    [message] = fetch(peer).messages
    [photo] = message.media
    assert download(peer, photo) == png_in(fixture)


def test_a_photo_over_the_limit_is_not_downloaded(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain_with_photo.eml"))
    [photo] = fetch(peer).messages[0].media
    with pytest.raises(MediaUnavailable, match="too large"):
        download(peer, photo, max_bytes=1000)
    unsized = photo.model_copy(update={"size": None})
    with pytest.raises(MediaUnavailable, match="too large"):
        download(peer, unsized, max_bytes=1000)


def test_a_ref_that_names_no_part_of_this_mailbox_is_not_fetched(peer: MailPeer) -> None:
    foreign = MediaRef(url="https://evil.example/foto.jpg", content_type="image/jpeg")
    with pytest.raises(MediaUnavailable, match="not a part of this channel's mailbox"):
        download(peer, foreign)
    assert peer.imap_connections == 0


def test_a_photo_is_found_again_after_the_mailbox_was_rebuilt(peer: MailPeer) -> None:
    peer.deliver(numbered(1))
    peer.deliver(fixture_mail("plain_with_photo.eml"))
    [_, message] = fetch(peer).messages
    archive = peer.rebuild_inbox()
    peer.deliver(peer.raw_mails(archive)[1])  # only the mail with the photo comes back, at another UID
    assert download(peer, message.media[0]) == png_in("plain_with_photo.eml")


def test_a_photo_whose_mail_was_deleted_is_unavailable(peer: MailPeer) -> None:
    uid = peer.deliver(fixture_mail("plain_with_photo.eml"))
    [photo] = fetch(peer).messages[0].media
    peer.expunge(uid)
    with pytest.raises(MediaUnavailable, match="no longer in mailbox"):
        download(peer, photo)
