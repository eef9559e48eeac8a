"""Acceptance 2: "ask for info" sends the citizen a message on their channel; their answer reopens the report.

The web form has no reply path (adapters/web_form.py cannot send: a citizen who used it gets no message
from Kanal, and the message is recorded as undeliverable). The test therefore uses the `api` channel, whose
reply path is the partner's signed `reply_url` (a peer on loopback here), with a sender that gave an e-mail
address; the citizen's answer comes back through the same channel, quoting the ticket code.
"""

from __future__ import annotations

from typing import Any

import httpx

from review_queue.tables import ReportState
from tests.conftest import TEST_API_SECRET
from tests.e2e.conftest import API, GAMBIR, Kanal, ReplyPeer
from tests.support.api_client import post_api
from tests.support.servers import wait_until

CITIZEN = {"id": "warga-42", "name": "Siti Aminah", "email": "siti.aminah@example.org"}


def test_asking_for_info_messages_the_citizen_and_their_answer_brings_the_report_back(
    make_kanal: Any, reply_peer: ReplyPeer
) -> None:
    partner = {"type": "api", "settings": {"secret": TEST_API_SECRET, "reply_url": reply_peer.url}}
    kanal: Kanal = make_kanal(channels={API: partner})
    report = kanal.report(
        channel_id=API,
        kelurahan=GAMBIR,
        text="Ada lubang besar di jalan, bahaya untuk motor",
        sender=CITIZEN,
        completeness=40,
        completeness_missing=["no_street"],
    )
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))

    assert tab.goto(f"/admin/reports/{report.ticket_code}") == 200
    ask = tab.page.locator("form[action$='/ask-info']")
    question = "Di jalan apa tepatnya, dan dekat bangunan apa?"
    ask.locator("[name=note]").fill(question)
    with tab.page.expect_navigation():
        ask.locator("button[type=submit]").first.click()
    assert kanal.stored(report.ticket_code).state == ReportState.NEEDS_INFO, tab.body_text()

    def question_sent() -> dict[str, Any] | None:
        return next((m for m in reply_peer.received if question in m["text"]), None)

    message = wait_until(question_sent, timeout=30, what="the question at the partner's reply_url")
    assert message is not None
    assert report.ticket_code in message["text"]
    assert message["recipient"]["id"] == CITIZEN["id"]

    # The citizen answers on the same channel, quoting the ticket as the message asked.
    answer = f"Jawaban untuk {report.ticket_code}: di Jl. Medan Merdeka Barat, depan Gedung Sapta Pesona"
    with httpx.Client(base_url=kanal.url, timeout=30) as http:
        sent = post_api(http, {"external_id": "answer-1", "text": answer, "sender": CITIZEN})
        assert sent.status_code in (200, 202), sent.text
    wait_until(
        lambda: kanal.stored(report.ticket_code).state == ReportState.PENDING_REVIEW,
        timeout=30,
        what="the report back in review after the answer",
    )

    assert tab.goto("/admin/queue") == 200
    assert report.ticket_code in tab.body_text()
    assert tab.goto(f"/admin/reports/{report.ticket_code}") == 200
    assert "Gedung Sapta Pesona" in tab.body_text(), "the answer is on the decision screen"
