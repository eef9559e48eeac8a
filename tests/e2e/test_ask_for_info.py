"""Acceptance 2: "ask for info" on a web-form report with an e-mail contact sends the citizen a message;
their answer brings the item back to the queue with the new information.

The public form cannot write back to the citizen, so the form channel names the mailbox channel in
`reply_via` (docs/adapters.md, "reply_via"): the question goes out over SMTP (a real aiosmtpd server on
loopback) to the address the citizen typed in the form, and their answer is a reply to that mail, fetched
by the mailbox channel from a real IMAP server (pymap). Nothing here is seeded: the report comes from the
form the citizen fills in the same browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from review_queue.tables import ReportState
from tests.e2e.conftest import GAMBIR, WEB_FORM, Kanal
from tests.peers.mail import MAILBOX_USER, MailPeer, SentMail
from tests.support.servers import wait_until

EMAIL = "email:dki"
CITIZEN_ADDRESS = "siti.aminah@example.org"
QUESTION = "Di jalan apa tepatnya, dan dekat bangunan apa?"


@pytest.fixture
def mail() -> Iterator[MailPeer]:
    with MailPeer() as running:
        yield running


def test_asking_a_web_form_citizen_for_info_mails_them_and_their_reply_brings_the_report_back(
    make_kanal: Any, mail: MailPeer
) -> None:
    channels = {
        WEB_FORM: {"type": "web_form", "reply_via": [EMAIL], "settings": {"min_fill_seconds": 0}},
        EMAIL: {
            "type": "email",
            "poll_interval_seconds": 0.5,
            "poll_backoff_cap_seconds": 1.0,
            "settings": mail.settings(),
        },
    }
    kanal: Kanal = make_kanal(channels=channels)

    # The citizen fills in the public form, giving an e-mail address and only a vague landmark.
    citizen = kanal.tab()
    assert citizen.goto(f"/channels/{WEB_FORM}/inbound") == 200
    citizen.page.fill("[name=description]", "Ada lubang besar di jalan dekat kantor kelurahan, bahaya untuk motor")
    citizen.page.fill("[name=address]", "dekat kantor kelurahan")
    citizen.page.fill("[name=kelurahan]", "Gambir")
    citizen.page.fill("[name=name]", "Siti Aminah")
    citizen.page.fill("[name=email]", CITIZEN_ADDRESS)
    with citizen.page.expect_navigation():
        citizen.page.locator("form button[type=submit]").first.click()
    assert citizen.page.locator(".ticket").count() == 1, citizen.body_text()
    ticket = citizen.page.locator(".ticket").inner_text().strip()
    report = wait_until(lambda: kanal.stored_or_none(ticket), timeout=30, what=f"report {ticket} from the form")
    assert report.channel_id == WEB_FORM and report.kelurahan_code == GAMBIR

    # The kelurahan's admin asks where exactly.
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))
    assert tab.goto(f"/admin/reports/{ticket}") == 200
    ask = tab.page.locator("form[action$='/ask-info']")
    ask.locator("[name=note]").fill(QUESTION)
    with tab.page.expect_navigation():
        ask.locator("button[type=submit]").first.click()
    assert kanal.stored(ticket).state == ReportState.NEEDS_INFO, tab.body_text()
    assert tab.goto("/admin/queue?state=pending_review") == 200
    assert ticket not in tab.body_text(), "a report waiting for the citizen is off the review list"

    def question_mailed() -> SentMail | None:
        return next((m for m in mail.sent_mails() if QUESTION in _text(m.message)), None)

    sent = wait_until(question_mailed, timeout=30, what="the question at the SMTP server")
    question = sent.message
    assert sent.rcpt_tos == [CITIZEN_ADDRESS]
    assert question["To"] is not None and CITIZEN_ADDRESS in str(question["To"])
    assert ticket in str(question["Subject"]) and ticket in _text(question)
    assert question["Auto-Submitted"] == "auto-replied", "a robot must not answer it"
    assert question["Message-ID"]

    # The citizen answers with their mail program's Reply: same subject, threaded on Kanal's mail.
    answer = EmailMessage()
    answer["From"] = f"Siti Aminah <{CITIZEN_ADDRESS}>"
    answer["To"] = MAILBOX_USER
    answer["Subject"] = f"Re: {question['Subject']}"
    answer["Message-ID"] = make_msgid(domain="example.org")
    answer["In-Reply-To"] = question["Message-ID"]
    answer["References"] = question["Message-ID"]
    answer.set_content(f"Di Jl. Medan Merdeka Barat, depan Gedung Sapta Pesona.\n\n> {QUESTION}\n")
    mail.deliver(answer)

    wait_until(
        lambda: kanal.stored(ticket).state == ReportState.PENDING_REVIEW,
        timeout=30,
        what="the report back in review after the citizen's mail",
    )
    assert tab.goto("/admin/queue") == 200
    assert ticket in tab.body_text(), "the answered report is back in the queue"
    assert tab.goto(f"/admin/reports/{ticket}") == 200
    screen = tab.body_text()
    assert "Gedung Sapta Pesona" in screen, "the answer is on the decision screen"
    assert f"> {QUESTION}" not in screen, "the quoted question is cut from the answer"


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""
