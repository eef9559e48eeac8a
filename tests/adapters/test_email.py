"""The `email` channel type through the adapter kit: a real Kanal polling a real IMAP server (pymap) on loopback.

The other files test the rest: `test_email_parsing.py` (one mail's bytes -> message, pure),
`test_email_mailbox.py` (fetch and media against pymap), `test_email_replies.py` (SMTP) and
`test_email_in_kanal.py` (threads, quarantine and a rebuilt mailbox in a running Kanal).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from kanal_testing import PullChannelProfile, PullContractSuite
from tests.peers.mail import MailPeer, fixture_mail

PLAIN_TEXT = (
    "Jalan berlubang di Jl. Kramat Raya\n\n"
    "Selamat pagi,\n\n"
    "Jalan berlubang besar di Jl. Kramat Raya depan halte Senen, RT 03 RW 05,\n"
    "Kelurahan Kramat, Kecamatan Senen. Sudah dua minggu belum diperbaiki dan\n"
    "motor sering jatuh di malam hari.\n\n"
    "Mohon segera ditindaklanjuti.\n\n"
    "Salam,\n"
    "Budi"
)
ITEMS = {
    "valid": ("plain.eml", "20240603101500.4821@mail.example.co.id"),
    "another": ("plain_with_photo.eml", "9f1c2b.andi@example.org"),
}


class EmailProfile(PullChannelProfile):
    channel_type = "email"
    channel_id = "email:dki"
    expected_text = PLAIN_TEXT

    def start_peer(self) -> contextlib.AbstractContextManager[Any]:
        return _peer()

    def channel_settings(self, peer: MailPeer) -> dict[str, Any]:
        return peer.settings()

    def add_item(self, peer: MailPeer, name: str) -> str:
        fixture, message_id = ITEMS[name]
        peer.deliver(fixture_mail(fixture))
        return message_id

    def set_failing(self, peer: MailPeer, failing: bool) -> None:
        peer.failing = failing


@contextlib.contextmanager
def _peer() -> Iterator[MailPeer]:
    with MailPeer() as peer:
        yield peer


class TestEmailContract(PullContractSuite):
    profile = EmailProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        # Kanal's own suite runs the contract on both engines (the conftest's `database_url`).
        return database_url
