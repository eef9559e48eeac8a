"""The review queue: only the admin's scope, overdue first, filters with counts, keyset pages (both engines)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session

from gateway.db import read_session, utcnow
from review_queue import queue
from review_queue.accounts import EVERYTHING, Scope
from review_queue.tables import AdminRole
from tests.admin.support import admin_gateway
from tests.review_app.support import GAMBIR, MENTENG, Browser, make_admin, put_report, signed_in

_ROW = re.compile(r'<tr class="queue-row[^"]*" data-ticket="([^"]+)"')


def tickets_on(html: str) -> list[str]:
    return _ROW.findall(html)


def test_a_kelurahan_admin_sees_only_their_kelurahan_overdue_first(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "lurah", scope_wilayah=[GAMBIR])
        now = utcnow()
        green_old = put_report(engine, age=timedelta(hours=5), sla_level="green", completeness=100)
        green_incomplete = put_report(engine, age=timedelta(hours=1), sla_level="green", completeness=40)
        overdue = put_report(engine, age=timedelta(hours=2), sla_level="overdue", sla_due_at=now - timedelta(minutes=5))
        red = put_report(engine, age=timedelta(hours=3), sla_level="red", sla_due_at=now + timedelta(hours=1))
        waiting = put_report(engine, state="needs_info", completeness=20)
        elsewhere = put_report(engine, kelurahan=MENTENG, sla_level="overdue")
        closed = put_report(engine, state="approved")
        with Browser(gateway) as browser:
            page = signed_in(browser, "lurah").http.get("/admin/queue")
        assert page.status_code == 200, page.text
        shown = tickets_on(page.text)
        assert shown == [
            overdue.ticket_code,
            red.ticket_code,
            green_incomplete.ticket_code,  # the least complete first within a band: asking takes longest
            green_old.ticket_code,
            waiting.ticket_code,  # waiting for the citizen: no SLA clock, last
        ]
        assert elsewhere.ticket_code not in page.text and closed.ticket_code not in page.text
        assert 'class="sla sla-overdue"' in page.text
        assert 'data-total="5"' in page.text


def test_filters_and_counts_stay_within_the_scope(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "kanal", role=AdminRole.CHANNEL_ADMIN, scope_channels=["api:*", "web_form:balaiwarga"])
        a = put_report(engine, channel_id="api:partner")
        b = put_report(engine, channel_id="web_form:balaiwarga", category_code="parkir-liar", agency_code="dishub")
        dup = put_report(engine, channel_id="api:partner", duplicate_of=a.id)
        put_report(engine, channel_id="twitter:dki")  # outside the scope: not counted anywhere
        with Browser(gateway) as browser:
            signed_in(browser, "kanal")
            everything = browser.http.get("/admin/queue")
            by_channel = browser.http.get("/admin/queue", params={"channel": "web_form:balaiwarga"})
            dups = browser.http.get("/admin/queue", params={"duplicates": "1"})
            by_category = browser.http.get("/admin/queue", params={"category": "parkir-liar"})
            by_area = browser.http.get("/admin/queue", params={"wilayah": "31.71.01"})
        assert 'data-total="3"' in everything.text
        assert "twitter:dki" not in everything.text
        assert re.search(r'<option value="api:partner"[^>]*>api:partner \(2\)</option>', everything.text)
        assert tickets_on(by_channel.text) == [b.ticket_code]
        assert tickets_on(dups.text) == [dup.ticket_code]
        assert tickets_on(by_category.text) == [b.ticket_code]
        assert sorted(tickets_on(by_area.text)) == sorted([a.ticket_code, b.ticket_code, dup.ticket_code])


def test_keyset_pages_are_stable_while_reports_arrive(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        levels = ["overdue", "red", "yellow", "green", None]
        made = [
            put_report(engine, age=timedelta(minutes=i), sla_level=levels[i % 5], completeness=(i * 37) % 101)
            for i in range(57)
        ]
        put_report(engine, state="needs_info", age=timedelta(minutes=3))
        seen: list[str] = []
        cursor = None
        with read_session(engine) as session:
            first = queue.page(session, EVERYTHING, queue.Filters(), limit=20)
        seen += [r.id for r in first.rows]
        cursor = first.next_cursor
        # A report arriving between pages, in a band already read, does not shift the later pages.
        put_report(engine, sla_level="overdue", completeness=0)
        while cursor:
            with read_session(engine) as session:
                following = queue.page(session, EVERYTHING, queue.Filters(), cursor=cursor, limit=20)
            seen += [r.id for r in following.rows]
            cursor = following.next_cursor
        assert len(seen) == len(set(seen)) == len(made) + 1
        with read_session(engine) as session:
            everything = queue.page(session, EVERYTHING, queue.Filters(), limit=200).rows
        keys = [r.key for r in everything]
        assert keys == sorted(keys)
        order = [r.id for r in everything]
        assert [i for i in order if i in set(seen)] == seen


def test_previous_pages_walk_back_through_the_bands_to_the_first_page(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        levels = ["overdue", "red", "yellow", "green", None]
        for i in range(47):
            put_report(engine, age=timedelta(minutes=i), sla_level=levels[i % 5], completeness=(i * 37) % 101)
        put_report(engine, state="needs_info", age=timedelta(minutes=3))
        with read_session(engine) as session:
            forward = [queue.page(session, EVERYTHING, queue.Filters(), limit=10)]
            while forward[-1].next_cursor:
                forward.append(
                    queue.page(session, EVERYTHING, queue.Filters(), cursor=forward[-1].next_cursor, limit=10)
                )
            assert [len(p.rows) for p in forward] == [10, 10, 10, 10, 8]
            assert forward[0].prev_cursor is None, "the first page has no previous one"

            back = [forward[-1]]
            while back[-1].prev_cursor:
                back.append(queue.page(session, EVERYTHING, queue.Filters(), before=back[-1].prev_cursor, limit=10))
        assert [[r.id for r in p.rows] for p in reversed(back)] == [[r.id for r in p.rows] for p in forward]
        assert back[-1].next_cursor == forward[0].next_cursor, "back at the start, Next goes on as before"


def test_the_queue_page_links_to_the_previous_page(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        for i in range(60):
            put_report(engine, kelurahan=GAMBIR, age=timedelta(minutes=i), completeness=i)
        make_admin(engine, "ops", AdminRole.SUPERADMIN)
        with Browser(gateway) as browser:
            signed_in(browser, "ops")
            first = browser.http.get("/admin/queue")
            assert 'rel="prev"' not in first.text
            second = browser.http.get(_link(first.text, "next"))
            assert tickets_on(second.text) and set(tickets_on(second.text)).isdisjoint(tickets_on(first.text))
            again = browser.http.get(_link(second.text, "prev"))
        assert tickets_on(again.text) == tickets_on(first.text)
        assert "Halaman sebelumnya" in second.text


def _link(html: str, rel: str) -> str:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    assert found, f"no {rel} link on the page"
    return found.group(1).replace("&amp;", "&")


def test_a_bad_cursor_is_refused_and_an_empty_scope_sees_nothing(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        put_report(engine)
        with Session(engine) as session:
            assert queue.page(session, Scope(everything=False), queue.Filters()).rows == []
            assert queue.counts(session, Scope(everything=False), queue.DEFAULT_STATES).total == 0
            try:
                queue.page(session, EVERYTHING, queue.Filters(), cursor="nonsense")
            except queue.BadCursor as exc:
                assert "first page" in str(exc)
            else:
                raise AssertionError("a bad cursor was accepted")
            try:
                queue.page(session, EVERYTHING, queue.Filters(), before="nonsense")
            except queue.BadCursor:
                pass
            else:
                raise AssertionError("a bad previous-page cursor was accepted")
