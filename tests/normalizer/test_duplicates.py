"""Duplicates and follow-ups across channels, stored through the normalizer's real path (both engines)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from adapters.contract import InboundMessage, Location, MediaRef, Sender
from gateway import migrate
from gateway.db import make_engine
from gateway.settings import ChannelConfig
from normalizer.duplicates import Candidate, judge, match_terms, sender_keys
from normalizer.pipeline import Draft, Place, Routing
from review_queue import service
from review_queue.intake import lock_match_keys
from review_queue.tables import Report, ReportEvent, ReportFollowUp
from tests.support.inbox_rows import normalize_pending, put_message

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
KENARI = Location(lat=-6.19356, lng=106.84668)  # inside kelurahan Kenari, Senen, Jakarta Pusat

POTHOLE_TWEET = (
    "@DKIJakarta jalan berlubang parah di Jl. Kramat Raya depan halte, kel. Kenari kec. Senen, "
    "bahaya bgt buat motor #JalanRusak"
)
POTHOLE_JAKI = "Jalan rusak berlubang besar di Jalan Kramat Raya, Kenari, Senen. Mohon segera diperbaiki."


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _send(engine: Engine, channel_id: str, text: str, *, at: datetime, **fields: Any) -> str:
    message = InboundMessage(external_id=f"{channel_id}-{at.timestamp()}-{len(text)}", text=text, **fields)
    return put_message(engine, channel_id, message, received_at=at)


def _report(engine: Engine, ticket: str) -> Report:
    with Session(engine) as session:
        return service.get_report(session, ticket)


def test_a_tweet_and_a_jaki_report_of_one_pothole_are_grouped(engine: Engine) -> None:
    first = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0, sender=Sender(handle="warga_senen"))
    second = _send(
        engine, "jaki:app", POTHOLE_JAKI, at=T0 + timedelta(hours=5), location=KENARI, sender=Sender(id="jaki-user-77")
    )
    assert normalize_pending(engine) == 2

    tweet, jaki = _report(engine, first), _report(engine, second)
    assert tweet.kelurahan_code == jaki.kelurahan_code == "31.71.04.1002"
    assert tweet.category_code == jaki.category_code
    assert tweet.duplicate_of is None
    assert jaki.duplicate_of == tweet.id
    reason = next(d for d in jaki.decisions if d["step"] == "duplicates")
    assert reason["value"] == tweet.ticket_code
    assert "same street" in reason["reason"]


def test_unrelated_reports_in_the_same_kelurahan_are_not_grouped(engine: Engine) -> None:
    pothole = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    rubbish = _send(
        engine,
        "jaki:app",
        "Sampah menumpuk di pinggir Jl. Kramat Raya, kel. Kenari, sudah seminggu tidak diangkut, bau sekali",
        at=T0 + timedelta(hours=1),
    )
    other_street = _send(
        engine,
        "email:dki",
        "Jalan berlubang dalam di Jl. Salemba Tengah, Kelurahan Kenari, Senen. Sudah ada pengendara jatuh.",
        at=T0 + timedelta(hours=2),
    )
    normalize_pending(engine)

    assert _report(engine, rubbish).category_code != _report(engine, pothole).category_code
    assert _report(engine, rubbish).duplicate_of is None
    assert _report(engine, other_street).kelurahan_code == _report(engine, pothole).kelurahan_code
    assert _report(engine, other_street).duplicate_of is None


def test_the_same_problem_weeks_later_is_a_new_report(engine: Engine) -> None:
    _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    later = _send(engine, "jaki:app", POTHOLE_JAKI, at=T0 + timedelta(days=30), location=KENARI)
    normalize_pending(engine)
    assert _report(engine, later).duplicate_of is None


def test_an_email_reply_in_the_thread_is_attached_to_its_report(engine: Engine) -> None:
    first = _send(
        engine,
        "email:dki",
        "Yth. Admin, lampu PJU di Jl. Cikini Raya, Kel. Cikini, Menteng mati sejak seminggu. Mohon diperbaiki.",
        at=T0,
        thread_id="<a1@warga.example>",
        sender=Sender(email="rina@example.id"),
    )
    reply = _send(
        engine,
        "email:dki",
        "Terlampir foto lampunya.\n\nPada 2 Nov 2026, Admin menulis:\n> Terima kasih, laporan diterima",
        at=T0 + timedelta(hours=3),
        thread_id="<a1@warga.example>",
        sender=Sender(email="rina@example.id"),
        media=[MediaRef(url="https://mail.example/photo.jpg", content_type="image/jpeg")],
    )
    assert normalize_pending(engine) == 1

    report = _report(engine, first)
    assert _report(engine, reply).id == report.id  # the reply's ticket finds the report it joined
    with Session(engine) as session:
        follow_ups = service.follow_ups(session, report)
        events = (
            session.execute(select(ReportEvent.action).where(col(ReportEvent.report_id) == report.id)).scalars().all()
        )
    assert [f.ticket_code for f in follow_ups] == [reply]
    assert "thread" in follow_ups[0].reason
    assert "follow_up" in events


def test_a_message_quoting_a_ticket_is_attached_from_any_channel(engine: Engine) -> None:
    first = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    normalize_pending(engine)
    typed = first.lower().replace("-", " ")  # as a citizen copies it from an SMS
    follow = _send(
        engine,
        "sms:1708",
        f"Melanjutkan laporan no {typed}, sampai sekarang jalan masih berlubang dan belum ada tindakan",
        at=T0 + timedelta(days=3),
        sender=Sender(phone="081298765432"),
    )
    assert normalize_pending(engine) == 0
    assert _report(engine, follow).id == _report(engine, first).id


def test_a_message_quoting_the_crm_ticket_is_attached(engine: Engine) -> None:
    first = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    normalize_pending(engine)
    with engine.begin() as connection:
        connection.execute(
            update(Report).where(col(Report.ticket_code) == first).values(crm_service_request_id="JK2305290094")
        )
    follow = _send(
        engine,
        "email:dki",
        "Melanjutkan laporan No. JK2305290094, mohon kabar perkembangannya.",
        at=T0 + timedelta(days=10),
    )
    assert normalize_pending(engine) == 0
    assert _report(engine, follow).ticket_code == first


def test_a_photo_from_the_same_sender_joins_their_report_but_a_new_problem_does_not(engine: Engine) -> None:
    phone = Sender(phone="+62 812-1111-2222")
    first = _send(
        engine,
        "whatsapp:dki",
        "Selamat pagi, pohon tumbang menutup Jl. Pramuka, Kel. Utan Kayu Utara, Matraman. Tolong segera ditangani.",
        at=T0,
        sender=phone,
    )
    photo = _send(
        engine,
        "whatsapp:dki",
        "ini fotonya pak",
        at=T0 + timedelta(minutes=4),
        sender=Sender(phone="081211112222"),
        media=[MediaRef(url="https://lookaside.example/1.jpg", content_type="image/jpeg")],
    )
    new_problem = _send(
        engine,
        "whatsapp:dki",
        "Satu lagi pak, sampah di TPS Jl. Pramuka menumpuk sudah 5 hari tidak diangkut dan baunya menyengat.",
        at=T0 + timedelta(minutes=30),
        sender=phone,
    )
    assert normalize_pending(engine) == 2
    assert _report(engine, photo).id == _report(engine, first).id
    assert _report(engine, new_problem).id != _report(engine, first).id
    assert _report(engine, new_problem).duplicate_of is None


def test_duplicates_within_one_batch_are_found(engine: Engine) -> None:
    first = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    second = _send(engine, "jaki:app", POTHOLE_JAKI, at=T0 + timedelta(minutes=1), location=KENARI)
    normalize_pending(engine, limit=50)  # both in one batch
    assert _report(engine, second).duplicate_of == _report(engine, first).id


def test_follow_up_rows_hold_masked_text_only_in_the_masked_column(engine: Engine) -> None:
    first = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    normalize_pending(engine)
    _send(engine, "sms:1708", f"Lanjutan laporan {first}: hubungi saya di 0812-3456-7890", at=T0 + timedelta(days=1))
    normalize_pending(engine)
    with Session(engine) as session:
        follow_up = session.execute(select(ReportFollowUp)).scalar_one()
    assert "0812-3456-7890" in follow_up.text_original
    assert "3456" not in follow_up.text_masked


TRUSTED = {"jaki:app": ChannelConfig(type="api", trusted=True, settings={"secret": "x" * 32})}


def _events(engine: Engine, ticket: str) -> list[str]:
    report = _report(engine, ticket)
    with Session(engine) as session:
        return list(
            session.execute(
                select(ReportEvent.action).where(col(ReportEvent.report_id) == report.id).order_by(col(ReportEvent.at))
            ).scalars()
        )


def test_a_trusted_channel_skips_review_unless_duplicate_or_incomplete(engine: Engine) -> None:
    tweet = _send(engine, "twitter:dki", POTHOLE_TWEET, at=T0)
    duplicate = _send(engine, "jaki:app", POTHOLE_JAKI, at=T0 + timedelta(hours=1), location=KENARI)
    complete = _send(
        engine,
        "jaki:app",
        "Lampu penerangan jalan mati total di Jl. Taman Sari Raya, Kel. Maphar, Taman Sari",
        at=T0 + timedelta(hours=2),
        sender=Sender(id="jaki-2"),
    )
    unplaced = _send(
        engine,
        "jaki:app",
        "Lampu penerangan jalan mati total dekat rumah saya sejak kemarin malam",
        at=T0 + timedelta(hours=3),
        sender=Sender(id="jaki-3"),
    )
    normalize_pending(engine, channels=TRUSTED)
    assert _report(engine, tweet).state == "pending_review"  # not a trusted channel
    assert _report(engine, complete).state == "approved"
    assert _events(engine, complete) == ["created", "approved"]
    for held in (duplicate, unplaced):
        assert _report(engine, held).state == "pending_review"
        assert _events(engine, held) == ["created", "held_for_review"]


def _block_draft(text: str, *, street: str | None = None, at: Location | None = None) -> Draft:
    return Draft(
        channel_id="jaki:app",
        original=InboundMessage(external_id="x", text=text),
        text=text,
        analysis_text=text.lower(),
        location=at,
        place=Place(kelurahan_code="31.71.04.1002", street=street),
        routing=Routing(category_code="jalan"),
    )


def _candidate_of(draft: Draft) -> Candidate:
    return Candidate(
        report_id="r1",
        ticket_code="AB1CD-2EF3G",
        channel_id="twitter:dki",
        received_at=T0,
        kelurahan_code="31.71.04.1002",
        category_code="jalan",
        street=draft.place.street,
        rt=None,
        rw=None,
        lat=draft.location.lat if draft.location else None,
        lng=draft.location.lng if draft.location else None,
        terms=frozenset(match_terms(draft.analysis_text)),
        duplicate_of=None,
        matched_keys={"place:31.71.04.1002:jalan"},
    )


def test_identical_words_two_kilometres_apart_are_two_problems() -> None:
    text = "jalan berlubang besar dan dalam, sudah ada motor jatuh"
    earlier = _block_draft(text, at=Location(lat=-6.1935, lng=106.8466))
    later = _block_draft(text, at=Location(lat=-6.2115, lng=106.8466))  # 2 km south
    assert judge(later, [_candidate_of(earlier)], has_own_problem=True).duplicate_of is None


def test_same_spot_in_other_words_is_the_same_problem() -> None:
    earlier = _block_draft("aspal jalan bolong besar bahaya", at=Location(lat=-6.19350, lng=106.84660))
    later = _block_draft("lubang di jalan, motor hampir jatuh", at=Location(lat=-6.19360, lng=106.84670))
    verdict = judge(later, [_candidate_of(earlier)], has_own_problem=True)
    assert verdict.duplicate_of is not None and "m apart" in verdict.reason


def test_on_postgresql_a_worker_waits_for_another_holding_the_same_keys(postgres_url: str) -> None:
    """Two workers storing reports with a shared key at once: the second waits, then sees the first's.

    PostgreSQL only: on SQLite one writer stores everything, so there is no one to wait for.
    """
    engine = make_engine(postgres_url)
    phone = Sender(phone="081311112222")
    _send(
        engine,
        "whatsapp:dki",
        "Sampah menumpuk di TPS Jl. Pramuka, Kel. Utan Kayu Utara, sudah 5 hari",
        at=T0,
        sender=phone,
    )
    [key] = sender_keys("whatsapp:dki", phone)
    done = threading.Event()
    with engine.connect() as other_worker:
        with other_worker.begin():
            lock_match_keys(other_worker, [key])
            thread = threading.Thread(target=lambda: (normalize_pending(engine), done.set()))
            thread.start()
            assert not done.wait(1.0), "the normalizer must wait while another transaction holds the key"
        assert done.wait(30), "and go on as soon as that transaction ends"
        thread.join()
    engine.dispose()


def test_a_trusted_channel_told_to_hold_nothing_forwards_incomplete_reports(engine: Engine) -> None:
    channels = {"jaki:app": TRUSTED["jaki:app"].model_copy(update={"hold_for_review": []})}
    unplaced = _send(engine, "jaki:app", "Lampu penerangan jalan mati total dekat rumah saya", at=T0)
    normalize_pending(engine, channels=channels)
    assert _report(engine, unplaced).state == "approved"
