"""Duplicate and follow-up lookups against stored reports, through the blocking keys only.

A new message reads the reports that share one of its keys inside the time window (an index range
scan on `report_match_key`), plus the reports whose tickets it quotes: its cost depends on how many
reports share its kelurahan, category, sender or thread lately, not on the size of the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from normalizer.duplicates import CANDIDATES_PER_KEY, TICKET_KEY, Candidate, key_window
from normalizer.pipeline import Draft
from review_queue.tables import Report, ReportFollowUp, ReportMatchKey

_report = Report.__table__  # type: ignore[attr-defined]
_keys = ReportMatchKey.__table__  # type: ignore[attr-defined]
_follow_ups = ReportFollowUp.__table__  # type: ignore[attr-defined]

_CANDIDATE_COLUMNS = (
    _report.c.id,
    _report.c.ticket_code,
    _report.c.channel_id,
    _report.c.received_at,
    _report.c.kelurahan_code,
    _report.c.category_code,
    _report.c.place,
    _report.c.location,
    _report.c.match_terms,
    _report.c.duplicate_of,
    _report.c.crm_service_request_id,
)


def candidate_from(mapping: Mapping[Any, Any]) -> Candidate:
    """A stored report's fields (a result row's mapping, or a report not yet inserted) as a candidate."""
    place = mapping["place"] or {}
    location = mapping["location"] or {}
    return Candidate(
        report_id=mapping["id"],
        ticket_code=mapping["ticket_code"],
        channel_id=mapping["channel_id"],
        received_at=mapping["received_at"],
        kelurahan_code=mapping["kelurahan_code"],
        category_code=mapping["category_code"],
        street=place.get("street"),
        rt=place.get("rt"),
        rw=place.get("rw"),
        lat=location.get("lat"),
        lng=location.get("lng"),
        terms=frozenset(mapping["match_terms"].split()),
        duplicate_of=mapping["duplicate_of"],
        crm_service_request_id=mapping["crm_service_request_id"],
    )


def find_candidates(
    connection: Connection, draft: Draft, keys: Iterable[str], *, received_at: datetime
) -> dict[str, Candidate]:
    """Earlier reports sharing a key with `draft` (inside each key's window) or whose ticket it quotes."""
    found: dict[str, Candidate] = {}
    for key in keys:
        window = key_window(key)
        rows = connection.execute(
            select(*_CANDIDATE_COLUMNS)
            .join(_keys, _keys.c.report_id == _report.c.id)
            .where(
                _keys.c.key == key,
                _keys.c.received_at >= received_at - window,
                _keys.c.received_at <= received_at,
            )
            .order_by(_keys.c.received_at.desc())
            .limit(CANDIDATES_PER_KEY)
        )
        for row in rows:
            candidate = found.setdefault(row.id, candidate_from(row._mapping))
            candidate.matched_keys.add(key)
    if draft.ticket_refs:
        refs = list(draft.ticket_refs)
        via_follow_up = select(_follow_ups.c.report_id).where(_follow_ups.c.ticket_code.in_(refs))
        rows = connection.execute(
            select(*_CANDIDATE_COLUMNS).where(
                _report.c.ticket_code.in_(refs)
                | _report.c.crm_service_request_id.in_(refs)
                | _report.c.id.in_(via_follow_up)
            )
        )
        for row in rows:
            candidate = found.setdefault(row.id, candidate_from(row._mapping))
            # Quoting the ticket of a follow-up means the report that follow-up was attached to.
            candidate.matched_keys.add(TICKET_KEY)
    return found
