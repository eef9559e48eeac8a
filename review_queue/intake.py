"""Reports from the normalizer's drafts: each draft becomes a new report, or a follow-up of an earlier one.

Drafts are matched in order against stored reports and against the ones earlier in the same batch, so
a batch gives what one-at-a-time would. Written with bulk statements rather than the ORM's unit of
work: this runs for every message, and on SQLite it holds the single writer, so its cost is paid by
every acknowledgement queued behind it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, insert, text, update

from crm_client import outbox
from crm_client.notifications import CitizenNotification, Receipts
from crm_client.tables import OutboxItem
from gateway.db import utcnow
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.duplicates import Candidate, Verdict, draft_keys, judge, key_window, match_terms
from normalizer.pipeline import Decision, Draft
from review_queue import feed
from review_queue.history import snapshot
from review_queue.matching import candidate_from, find_candidates
from review_queue.tables import Report, ReportEvent, ReportFollowUp, ReportMatchKey, ReportState

SYSTEM_NORMALIZER = "system:normalizer"

#: `draft.missing` reasons meaning the message brings no problem of its own ("ini fotonya pak").
_NO_OWN_PROBLEM = frozenset({"too_short", "no_concrete_problem"})
#: What a trusted channel's report may not lack to skip review: an agency cannot act without them.
#: (A missing photo does not hold it: many real problems cannot be photographed.)
_HOLDS_TRUSTED = frozenset({"too_short", "no_concrete_problem", "location_below_kelurahan"})


class MessageKey(Protocol):
    """What a report needs to know of its inbox message."""

    id: str
    ticket_code: str
    channel_id: str
    received_at: datetime


@dataclass
class _Batch:
    """The rows one call of `create_reports` will insert, and its reports so far as match candidates."""

    reports: list[Report] = field(default_factory=list)
    keys: list[dict[str, object]] = field(default_factory=list)
    follow_ups: list[ReportFollowUp] = field(default_factory=list)
    events: list[ReportEvent] = field(default_factory=list)
    outbox_items: list[OutboxItem] = field(default_factory=list)
    feed_entries: list[dict[str, object]] = field(default_factory=list)
    notifications: list[CitizenNotification] = field(default_factory=list)
    pending: list[tuple[Candidate, frozenset[str]]] = field(default_factory=list)

    def candidates_for(self, draft: Draft, keys: Sequence[str], received_at: datetime) -> list[Candidate]:
        """This batch's reports that share a key with `draft` inside its window, or whose ticket it quotes."""
        found = []
        for candidate, stored_keys in self.pending:
            age = received_at - candidate.received_at
            shared = {k for k in stored_keys & set(keys) if timedelta(0) <= age <= key_window(k)}
            if shared or candidate.ticket_code in draft.ticket_refs:
                found.append(replace(candidate, matched_keys=shared))
        return found


def create_reports(
    connection: Connection,
    drafts: Sequence[tuple[MessageKey, Draft]],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    receipts: Receipts | None = None,
) -> int:
    """Store the drafts; return how many new reports were made (follow-ups are not counted).

    With `receipts`, a new report of a channel that acknowledges receipt gets its citizen's message.

    A trusted channel's report is approved at once unless it looks like a duplicate of another or
    lacks what an agency needs (a place at kelurahan level, a concrete problem).
    """
    batch = _Batch()
    keys_of = [draft_keys(draft) for _, draft in drafts]
    lock_match_keys(connection, [key for keys in keys_of for key in keys])
    for (message, draft), keys in zip(drafts, keys_of, strict=True):
        candidates = find_candidates(connection, draft, keys, received_at=message.received_at)
        for candidate in batch.candidates_for(draft, keys, message.received_at):
            candidates.setdefault(candidate.report_id, candidate)
        has_own_problem = not _NO_OWN_PROBLEM & set(draft.missing)
        verdict = judge(draft, list(candidates.values()), has_own_problem=has_own_problem)
        if verdict.follow_up_of is not None:
            _attach(batch, message, draft, verdict)
        else:
            _create(batch, message, draft, keys, verdict, channels=channels, crm=crm, receipts=receipts)
    for model, rows in (
        (Report, batch.reports),
        (ReportFollowUp, batch.follow_ups),
        (ReportEvent, batch.events),
        (OutboxItem, batch.outbox_items),
        (CitizenNotification, batch.notifications),
    ):
        if rows:
            connection.execute(insert(model), [row.model_dump() for row in rows])
    if batch.keys:
        connection.execute(insert(ReportMatchKey), batch.keys)
    _reopen_answered(connection, batch)  # issue 6
    # Last: from here the feed lock is held until the caller commits (see review_queue/feed.py).
    feed.append(connection, batch.feed_entries)
    return len(batch.reports)


def lock_match_keys(connection: Connection, keys: Sequence[str]) -> None:
    """PostgreSQL: hold the blocking keys of this batch until it commits.

    Several workers normalize at once there. Without this, two reports of one pothole stored by two
    workers at the same moment would each miss the other. A worker that shares a key with another
    waits for it to commit, then sees its reports. Locks are taken in one statement, in sorted
    order, so two workers can never wait on each other. (SQLite has one writer: nothing to do.)
    """
    if connection.dialect.name != "postgresql" or not keys:
        return
    numbers = sorted(
        {int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big", signed=True) for k in keys}
    )
    connection.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k"),
        {"keys": numbers},
    )


def _create(
    batch: _Batch,
    message: MessageKey,
    draft: Draft,
    keys: list[str],
    verdict: Verdict,
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    receipts: Receipts | None,
) -> None:
    report = report_from(message, draft)
    if verdict.duplicate_of is not None:
        report.duplicate_of = verdict.duplicate_of.group_id
        report.duplicate_score = verdict.score
    report.decisions.append(
        Decision(
            step="duplicates",
            field="duplicate_of",
            value=verdict.duplicate_of.ticket_code if verdict.duplicate_of else None,
            reason=verdict.reason,
            confidence=min(1.0, verdict.score or 1.0) if verdict.duplicate_of else 1.0,
        ).model_dump()
    )
    created = snapshot(report)
    batch.events.append(ReportEvent(report_id=report.id, actor=SYSTEM_NORMALIZER, action="created", after=created))
    channel = channels.get(report.channel_id)
    held = _trusted_hold(report, verdict, channel.hold_for_review) if channel is not None else ""
    if channel is not None and channel.trusted and held:
        batch.events.append(
            ReportEvent(
                report_id=report.id,
                actor=SYSTEM_NORMALIZER,
                action="held_for_review",
                note=f"trusted channel, but {held}: an admin decides",
            )
        )
    elif channel is not None and channel.trusted:
        report.state = ReportState.APPROVED
        report.version += 1
        batch.events.append(
            ReportEvent(
                report_id=report.id,
                actor=SYSTEM_NORMALIZER,
                action="approved",
                before=created,
                after=snapshot(report),
                note="trusted channel: review skipped",
            )
        )
        batch.outbox_items.append(outbox.new_item(report, crm))
        batch.feed_entries.append(feed.new_entry(report, "approved"))
    batch.reports.append(report)
    if receipts is not None and channel is not None and channel.acknowledge_receipt:
        notice = receipts.notice(report)
        if notice is not None:
            batch.notifications.append(notice)
    unique_keys = list(dict.fromkeys(keys))
    batch.keys.extend({"key": k, "received_at": report.received_at, "report_id": report.id} for k in unique_keys)
    batch.pending.append((candidate_from(report.model_dump()), frozenset(unique_keys)))


def _trusted_hold(report: Report, verdict: Verdict, hold_for_review: Sequence[str]) -> str:
    """Why a trusted channel's report still needs an admin, or '' when it does not."""
    if "duplicate" in hold_for_review and verdict.duplicate_of is not None:
        return f"it looks like a duplicate of {verdict.duplicate_of.ticket_code}"
    lacking = [reason for reason in report.completeness_missing if reason in _HOLDS_TRUSTED]
    if "incomplete" in hold_for_review and lacking:
        return f"it is incomplete ({', '.join(lacking)})"
    return ""


def _attach(batch: _Batch, message: MessageKey, draft: Draft, verdict: Verdict) -> None:
    target = verdict.follow_up_of
    assert target is not None
    batch.follow_ups.append(
        ReportFollowUp(
            inbound_message_id=message.id,
            report_id=target.report_id,
            ticket_code=message.ticket_code,
            channel_id=message.channel_id,
            received_at=message.received_at,
            reason=verdict.reason[:300],
            text_original=draft.original.text,
            text_masked=draft.text_masked,
            media=[m.model_dump(exclude_none=True) for m in draft.media],
        )
    )
    batch.events.append(
        ReportEvent(
            report_id=target.report_id,
            actor=SYSTEM_NORMALIZER,
            action="follow_up",
            after={"ticket_code": message.ticket_code, "channel_id": message.channel_id, "text": draft.text_masked},
            note=verdict.reason[:2000],
        )
    )


# -- issue 6: the citizen's answer to "what is missing" (review_queue/decisions.py, ask_for_info) ----------


def _reopen_answered(connection: Connection, batch: _Batch) -> None:
    """Reports waiting in `needs_info` that got a follow-up in this batch go back to `pending_review`.

    One UPDATE guarded by the state, so an admin's decision committed meanwhile is never undone; the
    event says which message answered, and the follow-up (with its text and photos) is on the screen.
    """
    answered: dict[str, str] = {f.report_id: f.ticket_code for f in batch.follow_ups}
    if not answered:
        return
    table = Report.__table__  # type: ignore[attr-defined]
    rows = connection.execute(
        update(table)
        .where(table.c.id.in_(sorted(answered)), table.c.state == ReportState.NEEDS_INFO)
        .values(state=ReportState.PENDING_REVIEW, version=table.c.version + 1, updated_at=utcnow())
        .returning(table.c.id)
    ).all()
    if rows:
        connection.execute(
            insert(ReportEvent),
            [
                ReportEvent(
                    report_id=row.id,
                    actor=SYSTEM_NORMALIZER,
                    action="info_received",
                    before={"state": ReportState.NEEDS_INFO.value},
                    after={"state": ReportState.PENDING_REVIEW.value},
                    note=f"the citizen answered ({answered[row.id]}): back to review",
                ).model_dump()
                for row in rows
            ],
        )


def report_from(message: MessageKey, draft: Draft) -> Report:
    """The report row for one draft, before matching."""
    place = draft.place
    routing = draft.routing
    return Report(
        ticket_code=message.ticket_code,
        channel_id=message.channel_id,
        inbound_message_id=message.id,
        received_at=message.received_at,
        text_original=draft.original.text,
        text_clean=draft.text,
        text_masked=draft.text_masked,
        masked_kinds=draft.masked_kinds,
        place=place.model_dump(mode="json", exclude_defaults=True) or None,
        kota_code=place.kota_code,
        kecamatan_code=place.kecamatan_code,
        kelurahan_code=place.kelurahan_code,
        routing=routing.model_dump(mode="json"),
        category_code=routing.category_code,
        agency_code=routing.agency_code,
        agency_unit=routing.agency_unit,
        needs_category_choice=routing.needs_choice,
        match_terms=" ".join(match_terms(draft.analysis_text)),
        completeness=draft.completeness,
        completeness_missing=draft.missing,
        sender=draft.sender.model_dump(exclude_none=True) if draft.sender else None,
        location=draft.location.model_dump(exclude_none=True) if draft.location else None,
        media=[m.model_dump(exclude_none=True) for m in draft.media],
        service_code=draft.service_code,
        decisions=[d.model_dump() for d in draft.decisions],
    )
