"""The mailbox channel in a running Kanal: mails become reports, replies join their report, robots are left
out, a broken mail is quarantined once, and a rebuilt mailbox neither loses nor repeats anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from gateway import cursors
from gateway.db import read_session
from kanal_testing import KanalUnderTest, inbound_messages, kanal_settings, quarantine_rows, reports, wait_until
from review_queue.tables import ReportFollowUp
from tests.peers.mail import MailPeer, fixture_mail

CHANNEL = "email:dki"
TIMEOUT = 30.0
FIRST_ID = "20240603101500.4821@mail.example.co.id"
THREAD_REPLY_ID = "20240606083000.1177@mail.example.co.id"


@pytest.fixture
def peer() -> Iterator[MailPeer]:
    with MailPeer() as running:
        yield running


def config(database_url: str, peer: MailPeer, **settings: Any) -> dict[str, Any]:
    channel = {
        "type": "email",
        "poll_interval_seconds": 0.3,
        "poll_backoff_cap_seconds": 1.0,
        "settings": peer.settings(**settings),
    }
    return kanal_settings(database_url, {CHANNEL: channel})


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kanal.sqlite3'}"


def stored(gateway: KanalUnderTest) -> dict[str, int]:
    """External id -> how often it was delivered."""
    return {row.external_id: row.delivery_count for row in inbound_messages(gateway.runtime.engine)}


def cursor(gateway: KanalUnderTest) -> dict[str, Any]:
    with read_session(gateway.runtime.engine) as session:
        state = cursors.read_state(session.connection(), CHANNEL)
    parsed: dict[str, Any] = json.loads(state.cursor) if state.cursor else {}
    return parsed


def polls_after(gateway: KanalUnderTest, count: int = 2) -> None:
    for _ in range(count):
        with read_session(gateway.runtime.engine) as session:
            before = cursors.read_state(session.connection(), CHANNEL).last_success_at

        def moved(before: Any = before) -> bool:
            with read_session(gateway.runtime.engine) as session:
                after = cursors.read_state(session.connection(), CHANNEL).last_success_at
            return after is not None and after != before

        wait_until(moved, timeout=TIMEOUT, what="another successful poll")


def follow_ups(gateway: KanalUnderTest) -> list[ReportFollowUp]:
    with read_session(gateway.runtime.engine) as session:
        return list(session.execute(select(ReportFollowUp)).scalars())


def numbered(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Warga {n} <warga{n}@example.com>"
    message["To"] = "dki@jakarta.go.id"
    message["Subject"] = f"Saluran air tersumbat {n}"
    message["Message-ID"] = f"<warga.{n}@example.com>"
    message.set_content(f"Saluran air tersumbat di RT {n:02d} RW 01 Kelurahan Cikini, air meluap ke jalan.")
    return message.as_bytes()


def test_a_reply_in_the_thread_becomes_a_follow_up_of_the_first_report(database_url: str, peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain.eml"))
    with KanalUnderTest(config(database_url, peer)) as gateway:
        engine = gateway.runtime.engine
        [first] = wait_until(lambda: reports(engine), timeout=TIMEOUT, what="the first report")
        peer.deliver(fixture_mail("reply_in_thread.eml"))
        [follow_up] = wait_until(lambda: follow_ups(gateway), timeout=TIMEOUT, what="the reply attached to it")
        assert follow_up.report_id == first.id
        assert "thread" in follow_up.reason
        assert "makin lebar" in follow_up.text_original
        assert [r.id for r in reports(engine)] == [first.id], "the reply must not open a second report"
        assert set(stored(gateway)) == {FIRST_ID, THREAD_REPLY_ID}


def test_mails_become_reports_with_their_photos_and_robots_are_left_out(tmp_path: Path, peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain.eml"))
    peer.deliver(fixture_mail("html_inline_photo.eml"))
    peer.deliver(fixture_mail("auto_reply.eml"))
    last = peer.deliver(fixture_mail("bounce.eml"))
    with KanalUnderTest(config(sqlite(tmp_path), peer)) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: len(reports(engine)) == 2, timeout=TIMEOUT, what="two reports")
        wait_until(lambda: cursor(gateway).get("last_uid") == last, timeout=TIMEOUT, what="the cursor past the bounce")
        polls_after(gateway)
        rows = {row.external_id: row.message for row in inbound_messages(engine)}
        assert set(rows) == {FIRST_ID, "CAF=html.8811@mail.example.net"}, "auto-reply and bounce are not stored"
        [photo] = rows["CAF=html.8811@mail.example.net"]["media"]
        assert photo["url"].startswith(f"imap:{peer.uidvalidity()}/") and photo["content_type"] == "image/png"
        assert quarantine_rows(engine) == []


def test_a_malformed_mail_is_quarantined_once_however_often_kanal_polls(tmp_path: Path, peer: MailPeer) -> None:
    raw = fixture_mail("malformed.eml")
    peer.deliver(raw)
    with KanalUnderTest(config(sqlite(tmp_path), peer)) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: quarantine_rows(engine), timeout=TIMEOUT, what="the mail in quarantine")
        polls_after(gateway, 3)
        [kept] = quarantine_rows(engine)
        assert kept.channel_id == CHANNEL and kept.body == raw and kept.body_size == len(raw)
        assert "broken.mime.0608@example.com" in kept.reason and "malformed MIME" in kept.reason
        assert inbound_messages(engine) == []
        peer.deliver(fixture_mail("plain.eml"))
        wait_until(lambda: FIRST_ID in stored(gateway), timeout=TIMEOUT, what="the next mail, past the broken one")
        assert len(quarantine_rows(engine)) == 1


def test_a_rebuilt_mailbox_neither_loses_nor_repeats_a_complaint(database_url: str, peer: MailPeer) -> None:
    peer.deliver(numbered(1))
    peer.deliver(numbered(2))
    settings = config(database_url, peer)
    with KanalUnderTest(settings) as gateway:
        wait_until(lambda: len(reports(gateway.runtime.engine)) == 2, timeout=TIMEOUT, what="two reports")
        before = cursor(gateway)["uidvalidity"]
        # The provider moves the mailbox: the two mails come back under new UIDs, and a third arrives.
        archive = peer.rebuild_inbox()
        for raw in peer.raw_mails(archive):
            peer.deliver(raw)
        peer.deliver(numbered(3))
        wait_until(lambda: "warga.3@example.com" in stored(gateway), timeout=TIMEOUT, what="the new mail")
        polls_after(gateway)
        assert cursor(gateway)["uidvalidity"] != before
        assert stored(gateway) == {"warga.1@example.com": 2, "warga.2@example.com": 2, "warga.3@example.com": 1}
        wait_until(lambda: len(reports(gateway.runtime.engine)) == 3, timeout=TIMEOUT, what="the third report")
        polls_after(gateway)
        assert len(reports(gateway.runtime.engine)) == 3, "a mail read again must not become a second report"
