"""Answering citizens by mail: what reaches the SMTP server (aiosmtpd on loopback), and what it refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.contract import OutboundReply, Sender
from adapters.email import EmailAdapter
from adapters.email_parsing import normalize_message_id
from adapters.errors import ChannelUnavailable
from kanal_testing import build_adapter, free_port, run_fetch
from tests.peers.mail import MAILBOX_USER, SMTP_USER, MailPeer, fixture_mail

BUDI = Sender(email="budi.santoso@example.co.id", name="Budi Santoso")
FIRST_ID = "20240603101500.4821@mail.example.co.id"
THREAD_REPLY_ID = "20240606083000.1177@mail.example.co.id"
ACK_ID = "171738000012.555.1@jakarta.go.id"


@pytest.fixture
def peer() -> Iterator[MailPeer]:
    with MailPeer() as running:
        yield running


def send(peer: MailPeer, reply: OutboundReply, **settings: Any) -> str:
    adapter = build_adapter(EmailAdapter, peer.settings(**settings), channel_id="email:dki")
    return asyncio.run(adapter.send(reply))


def receipt(**fields: Any) -> OutboundReply:
    values: dict[str, Any] = {
        "recipient": BUDI,
        "text": "Laporan Anda sudah kami terima dengan nomor JK2406000123.",
        "in_reply_to": FIRST_ID,
        "thread_id": FIRST_ID,
        "ticket": "JK2406000123",
    }
    return OutboundReply(**{**values, **fields})


def test_the_acknowledgement_reaches_the_citizen_in_their_thread_marked_as_automatic(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain.eml"))
    platform_id = send(peer, receipt())
    [sent] = peer.sent_mails()
    assert sent.mail_from == MAILBOX_USER and sent.rcpt_tos == [BUDI.email]
    assert sent.authenticated_as == SMTP_USER
    message = sent.message
    assert message["To"].addresses[0].addr_spec == BUDI.email
    assert message["From"].addresses[0].addr_spec == MAILBOX_USER
    assert message["Subject"] == "Re: Jalan berlubang di Jl. Kramat Raya", "the citizen's subject, for threading"
    assert message["In-Reply-To"] == f"<{FIRST_ID}>"
    assert message["References"] == f"<{FIRST_ID}>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert normalize_message_id(message["Message-ID"]) == platform_id and platform_id.endswith("@jakarta.go.id")
    assert message.get_content().strip() == "Laporan Anda sudah kami terima dengan nomor JK2406000123."


def test_a_reply_deeper_in_a_thread_carries_the_whole_chain(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("reply_in_thread.eml"))
    send(peer, receipt(in_reply_to=THREAD_REPLY_ID, text="Terima kasih, laporan sedang diproses."))
    message = peer.sent_mails()[0].message
    assert message["In-Reply-To"] == f"<{THREAD_REPLY_ID}>"
    assert message["References"].split() == [f"<{FIRST_ID}>", f"<{ACK_ID}>", f"<{THREAD_REPLY_ID}>"]
    assert message["Subject"] == "Re: Jalan berlubang di Jl. Kramat Raya", "no second 'Re:'"


def test_when_the_mail_is_gone_from_the_mailbox_the_reply_names_the_ticket(peer: MailPeer) -> None:
    send(peer, receipt(in_reply_to=THREAD_REPLY_ID))
    message = peer.sent_mails()[0].message
    assert message["Subject"] == "Laporan JK2406000123"
    assert message["References"].split() == [f"<{FIRST_ID}>", f"<{THREAD_REPLY_ID}>"]


def test_an_unreachable_mailbox_does_not_stop_the_reply(peer: MailPeer) -> None:
    peer.deliver(fixture_mail("plain.eml"))
    peer.failing = True
    send(peer, receipt())
    [sent] = peer.sent_mails()
    assert sent.message["In-Reply-To"] == f"<{FIRST_ID}>" and sent.message["Subject"] == "Laporan JK2406000123"


def test_a_mail_without_message_id_is_answered_without_in_reply_to(peer: MailPeer) -> None:
    send(peer, receipt(in_reply_to="no-message-id-0123456789abcdef", thread_id="no-message-id-0123456789abcdef"))
    message = peer.sent_mails()[0].message
    assert message["In-Reply-To"] is None and message["References"] is None
    assert message["Auto-Submitted"] == "auto-replied"


def test_a_name_with_line_breaks_cannot_add_headers(peer: MailPeer) -> None:
    sneaky = Sender(email="budi.santoso@example.co.id", name="Budi\r\nBcc: semua@example.com")
    send(peer, receipt(recipient=sneaky))
    [sent] = peer.sent_mails()
    assert sent.rcpt_tos == ["budi.santoso@example.co.id"]
    assert sent.message["Bcc"] is None and "\n" not in str(sent.message["To"])


def test_our_own_reply_coming_back_into_the_mailbox_is_not_a_complaint(peer: MailPeer) -> None:
    send(peer, receipt())
    peer.deliver(peer.sent_mails()[0].raw)  # a copy kept in the mailbox (Bcc, a forwarding rule)
    result = run_fetch(EmailAdapter, peer.settings())
    assert result.messages == [] and result.rejected == []


def test_a_citizen_without_an_address_is_not_retried(peer: MailPeer) -> None:
    with pytest.raises(ChannelUnavailable) as refused:
        send(peer, receipt(recipient=Sender(name="Budi", phone="08111272206")))
    assert not refused.value.retryable and "no usable e-mail address" in str(refused.value)
    assert peer.sent_mails() == []


def test_a_channel_without_smtp_cannot_reply(peer: MailPeer) -> None:
    with pytest.raises(NotImplementedError, match="smtp_host"):
        send(peer, receipt(), smtp_host=None, smtp_username=None, smtp_password=None)


@pytest.mark.parametrize(("code", "retryable"), [(451, True), (554, False)], ids=["try later", "refused"])
def test_an_smtp_refusal_says_whether_to_try_again(peer: MailPeer, code: int, retryable: bool) -> None:
    peer.smtp_fail_code = code
    with pytest.raises(ChannelUnavailable) as refused:
        send(peer, receipt())
    assert refused.value.retryable is retryable and str(code) in str(refused.value)


def test_an_unknown_address_is_not_retried(peer: MailPeer) -> None:
    peer.unknown_recipients.add(BUDI.email or "")
    with pytest.raises(ChannelUnavailable) as refused:
        send(peer, receipt())
    assert not refused.value.retryable and "550" in str(refused.value)


def test_a_wrong_smtp_password_is_not_retried_and_not_shown(peer: MailPeer) -> None:
    with pytest.raises(ChannelUnavailable) as refused:
        send(peer, receipt(), smtp_password="bukan-sandinya-987")
    assert not refused.value.retryable and "smtp_password" in str(refused.value)
    assert "bukan-sandinya" not in str(refused.value)


def test_an_smtp_server_that_is_down_is_retried(peer: MailPeer) -> None:
    with pytest.raises(ChannelUnavailable) as failed:
        send(peer, receipt(), smtp_port=free_port())  # nothing listens there
    assert failed.value.retryable
