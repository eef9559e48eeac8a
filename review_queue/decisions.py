"""The review app's decisions on one report: approve, reject with a listed reason, ask for info, merge, reassign.

Each function takes an open writing session, locks the report (`SELECT ... FOR UPDATE` on PostgreSQL;
SQLite has one writer) and changes nothing outside the session, so a decision and what follows from
it (the outbox row, the citizen's message) commit together or not at all. A report may be decided
while it waits for an admin (`pending_review`) or for the citizen (`needs_info`); anything else, or a
`version` other than the caller saw, raises `AlreadyDecided`, naming who changed it and when, and
nothing is applied twice.

    pending_review --approve--> approved --> (outbox) --> forwarded ...
          |  ^   \\--reject--> rejected
          |  |    \\--merge into P--> merged (duplicate_of = P; P.merged_sources lists it)
          |  |     \\--reassign--> pending_review (other category/agency/kelurahan: maybe other admins)
          |  \\--the citizen answers (review_queue/intake.py)
          \\--ask for info--> needs_info (message on the originating channel)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from crm_client import notifications, outbox
from crm_client.tables import OutboxItem, OutboxState
from gateway.db import utcnow
from gateway.settings import CRMConfig, NotificationsConfig
from normalizer.gazetteer import load_gazetteer
from normalizer.pipeline import PlacePrecision
from normalizer.steps.completeness import REASONS
from normalizer.taxonomy import Taxonomy
from review_queue import service
from review_queue.accounts import Scope, get_report_in_scope
from review_queue.history import record_change
from review_queue.schemas import ReportEdit
from review_queue.tables import Report, ReportEvent, ReportState

#: Where a decision can still be made.
OPEN_FOR_DECISION = frozenset({ReportState.PENDING_REVIEW.value, ReportState.NEEDS_INFO.value})
#: The template (config/notifications.yaml) and change state of the citizen's "what is missing" message.
NEEDS_INFO = ReportState.NEEDS_INFO.value
#: Past these states the CRM request is built (or sent): a merge can no longer change it.
_AT_THE_CRM = frozenset({ReportState.FORWARDED, ReportState.IN_PROGRESS, ReportState.RESOLVED, ReportState.CRM_FAILED})


@dataclass(frozen=True)
class RejectReason:
    code: str
    id: str
    en: str


#: Why a report may be turned down. Kept in code (not config) so the API, the pages and the history
#: share stable codes; the citizen-facing status page shows the Indonesian text.
REJECT_REASONS: dict[str, RejectReason] = {
    r.code: r
    for r in (
        RejectReason("not_a_complaint", "Bukan pengaduan (salam, pertanyaan umum, iklan)", "Not a complaint"),
        RejectReason("outside_jakarta", "Di luar wilayah DKI Jakarta", "Outside DKI Jakarta"),
        RejectReason("not_city_matter", "Bukan kewenangan Pemprov DKI", "Not the city's responsibility"),
        RejectReason("duplicate", "Sudah dilaporkan (duplikat)", "Already reported (duplicate)"),
        RejectReason("spam_abuse", "Spam atau kata-kata kasar", "Spam or abusive"),
        RejectReason("no_answer", "Pelapor tidak melengkapi data", "The citizen never gave what was missing"),
        RejectReason("test", "Uji coba", "A test message"),
        RejectReason("other", "Alasan lain (lihat catatan)", "Other (see the note)"),
    )
}


class AlreadyDecided(service.ReportConflict):
    """Someone else decided (or changed) the report first; nothing was applied. Says who and when."""

    def __init__(self, message: str, *, ticket: str, state: str, actor: str | None, at: datetime | None) -> None:
        super().__init__(message)
        self.ticket, self.state, self.actor, self.at = ticket, state, actor, at


class CannotMerge(service.InvalidEdit):
    """The merge target cannot take the report (itself, merged, rejected); the message says what to do."""


class CannotAsk(service.InvalidEdit):
    """The citizen cannot be asked (no contact, no template, nothing to ask); the message says what to do."""


def reject_reason_text(code: str, note: str | None) -> str:
    """The stored `reject_reason`: the reason's Indonesian text, its code, and the admin's note."""
    reason = REJECT_REASONS[code]
    text = f"{reason.id} [{reason.code}]"
    return f"{text}: {note.strip()}" if note and note.strip() else text


def open_report(session: Session, key: str, version: int | None) -> Report:
    """The report `key`, locked, if a decision can be made on it at `version`; else `AlreadyDecided`."""
    report = service.get_report(session, key, for_update=True)
    if report.state not in OPEN_FOR_DECISION:
        actor, at = _last_change(session, report)
        by = f" by {actor} at {at.isoformat()}" if actor and at else ""
        raise AlreadyDecided(
            f"report {report.ticket_code} is already {report.state}{by}; reload it",
            ticket=report.ticket_code,
            state=report.state,
            actor=actor,
            at=at,
        )
    if version is not None and version != report.version:
        actor, at = _last_change(session, report)
        raise AlreadyDecided(
            f"report {report.ticket_code} changed since you opened it (version {version}, now "
            f"{report.version}, by {actor} at {at.isoformat() if at else '?'}); reload it",
            ticket=report.ticket_code,
            state=report.state,
            actor=actor,
            at=at,
        )
    return report


def _last_change(session: Session, report: Report) -> tuple[str | None, datetime | None]:
    last = session.execute(
        select(ReportEvent)
        .where(col(ReportEvent.report_id) == report.id, col(ReportEvent.action) != "personal_data_opened")
        .order_by(col(ReportEvent.at).desc(), col(ReportEvent.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    return (last.actor, last.at) if last else (None, None)


def approve(
    session: Session,
    *,
    key: str,
    actor: str,
    crm: CRMConfig,
    taxonomy: Taxonomy,
    edits: ReportEdit | None = None,
    version: int | None = None,
) -> Report:
    """Approve `key` (applying `edits` first): into the outbox in this transaction. Also from needs_info."""
    report = open_report(session, key, version)
    if edits is not None:
        service._apply_edits(session, report, edits, actor, taxonomy)
    service._approve(session, report, actor=actor, crm=crm)
    return report


def reject(
    session: Session, *, key: str, actor: str, reason_code: str, note: str | None = None, version: int | None = None
) -> Report:
    """Turn `key` down for one of `REJECT_REASONS` (and an optional note)."""
    if reason_code not in REJECT_REASONS:
        raise service.InvalidEdit(f"unknown reject reason {reason_code!r}; choose one of: {', '.join(REJECT_REASONS)}")
    if reason_code == "other" and not (note and note.strip()):
        raise service.InvalidEdit("reason 'other' needs a note saying why; write one")
    report = open_report(session, key, version)
    text = reject_reason_text(reason_code, note)
    record_change(
        session, report, actor=actor, action="rejected", note=text, state=ReportState.REJECTED, reject_reason=text
    )
    return report


def info_request_text(missing: list[str], note: str | None) -> str:
    """What the citizen is asked: the Indonesian request of each completeness reason, then the admin's note."""
    parts = [REASONS[code].citizen_text for code in missing]
    if note and note.strip():
        parts.append(" ".join(note.split()))
    return " ".join(parts)


def ask_for_info(
    session: Session,
    *,
    key: str,
    actor: str,
    missing: list[str] | None,
    note: str | None,
    config: NotificationsConfig,
    public_base_url: str,
    version: int | None = None,
) -> Report:
    """Ask the citizen for what is missing, on the channel they used; the report waits in `needs_info`.

    `missing`: completeness reason codes (`normalizer.steps.completeness.REASONS`); None asks for what
    the normalizer found missing. The message is the `needs_info` template of `config` with {note} =
    the requests. Raises `CannotAsk` when there is nobody to write to, no template, or nothing to ask.
    """
    unknown = [code for code in missing or () if code not in REASONS]
    if unknown:
        raise CannotAsk(f"unknown completeness reason(s) {', '.join(unknown)}; choose from: {', '.join(REASONS)}")
    report = open_report(session, key, version)
    if notifications.render(config, NEEDS_INFO, {}) is None:
        raise CannotAsk(
            f"no '{NEEDS_INFO}' message template for language {config.language!r}: add "
            f"notifications.templates.{config.language}.{NEEDS_INFO} to the configuration (config/notifications.yaml)"
        )
    if report.state != ReportState.PENDING_REVIEW:
        actor_before, at = _last_change(session, report)
        raise AlreadyDecided(
            f"report {report.ticket_code} is already waiting for the citizen's answer; reload it",
            ticket=report.ticket_code,
            state=report.state,
            actor=actor_before,
            at=at,
        )
    if not report.sender:
        raise CannotAsk(
            f"report {report.ticket_code} has no sender Kanal can write to (the channel gave no contact); "
            "approve it as it is, or reject it"
        )
    codes = list(report.completeness_missing) if missing is None else list(dict.fromkeys(missing))
    text = info_request_text(codes, note)
    if not text:
        raise CannotAsk("nothing to ask: tick what is missing or write the question in the note")
    record_change(session, report, actor=actor, action="info_requested", note=text, state=ReportState.NEEDS_INFO)
    notifications.enqueue(
        session,
        report=report,
        change_key=f"{NEEDS_INFO}|v{report.version}",  # each request is its own message
        state=NEEDS_INFO,
        note=text,
        config=config,
        public_base_url=public_base_url,
    )
    return report


@dataclass(frozen=True)
class Merged:
    report: Report  # now `merged`
    primary: Report  # carries both sources
    #: How the CRM learns of the second source: "request" (in the request still to be sent), or
    #: "not_sent" (the primary's request already left: Kanal keeps the link, the CRM request stays as sent).
    crm: str


def merge(
    session: Session,
    *,
    key: str,
    into: str,
    actor: str,
    scope: Scope,
    crm: CRMConfig,
    version: int | None = None,
    notify: NotificationsConfig | None = None,
    public_base_url: str = "",
) -> Merged:
    """Fold `key` into `into` (the primary, which must be in `scope`): one CRM request lists both sources.

    With `notify`, the merged report's citizen is told (its `merged` template), and from then on hears
    the primary's news too (crm_client/status_sync.py).

    Both rows are locked in id order, so two admins merging A into B and B into A cannot deadlock; the
    second is told. If the primary's request is still waiting in the outbox, its payload is rebuilt
    with the new source; if it has left already, Open311 GeoReport v2 has no way to amend a request,
    so the merge is recorded in Kanal (both histories, `merged_sources`, the feed) and the note says so.
    """
    found = service.get_report(session, key)
    primary_found = get_report_in_scope(session, into, scope)
    if primary_found.id == found.id:
        raise CannotMerge("a report cannot be merged into itself; give another report's ticket code")
    locked = {}
    for report_id in sorted({found.id, primary_found.id}):
        locked[report_id] = service.get_report(session, report_id, for_update=True)
    report = open_report(session, found.id, version)
    primary = locked[primary_found.id]
    if primary.state == ReportState.MERGED:
        head = session.get(Report, primary.duplicate_of) if primary.duplicate_of else None
        where = f" into {head.ticket_code}" if head else ""
        raise CannotMerge(f"{primary.ticket_code} was itself merged{where}; merge into that report instead")
    if primary.state == ReportState.REJECTED:
        raise CannotMerge(f"{primary.ticket_code} was rejected; merge into a report that is still open")
    own = {"ticket_code": report.ticket_code, "channel_id": report.channel_id}
    sources = [*primary.merged_sources, own, *[s for s in report.merged_sources if s not in primary.merged_sources]]
    record_change(
        session,
        report,
        actor=actor,
        action="merged",
        note=f"merged into {primary.ticket_code}",
        state=ReportState.MERGED,
        duplicate_of=primary.id,
    )
    crm_note = "request"
    if primary.state in _AT_THE_CRM or (
        primary.state == ReportState.APPROVED and not _rebuild_pending_request(session, primary, sources, crm)
    ):
        crm_note = "not_sent"
    note = f"{report.ticket_code} ({report.channel_id}) merged into this report"
    if crm_note == "not_sent":
        note += (
            f"; the CRM request {primary.crm_service_request_id or '(being sent)'} had already left and was not "
            "amended (Open311 GeoReport v2 cannot change a request): tell the agency if the second source matters"
        )
    record_change(session, primary, actor=actor, action="merge_received", note=note, merged_sources=sources)
    if notify is not None:
        notifications.enqueue(
            session,
            report=report,
            change_key=f"{ReportState.MERGED.value}|{primary.ticket_code}",
            state=ReportState.MERGED.value,
            note=None,
            config=notify,
            public_base_url=public_base_url,
            progress_of=primary,
        )
    return Merged(report=report, primary=primary, crm=crm_note)


def _rebuild_pending_request(session: Session, primary: Report, sources: list[dict[str, Any]], crm: CRMConfig) -> bool:
    """Rebuild the primary's outbox payload with `sources` if no dispatcher holds it yet; return whether it was.

    The WHERE is the guard: a dispatcher's claim sets `claimed_until` under its own row lock, so either
    the claim sees the new payload or this update matches nothing.
    """
    primary.merged_sources = sources
    result = session.execute(
        update(OutboxItem)
        .where(
            col(OutboxItem.report_id) == primary.id,
            col(OutboxItem.state) == OutboxState.PENDING,
            col(OutboxItem.attempts) == 0,
            or_(col(OutboxItem.claimed_until).is_(None), col(OutboxItem.claimed_until) < utcnow()),
        )
        .values(payload=outbox.build_payload(primary, crm))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def reassign(
    session: Session,
    *,
    key: str,
    actor: str,
    taxonomy: Taxonomy,
    category_code: str | None = None,
    agency_code: str | None = None,
    kelurahan_code: str | None = None,
    note: str | None = None,
    version: int | None = None,
) -> Report:
    """Give `key` another category/agency and/or kelurahan; it stays open, maybe in other admins' scope."""
    if not (category_code or agency_code or kelurahan_code):
        raise service.InvalidEdit("say what changes: a category, an agency or a kelurahan")
    report = open_report(session, key, version)
    changes: dict[str, Any] = {}
    if kelurahan_code:
        changes.update(_place_in(report, kelurahan_code))
    if category_code or agency_code or kelurahan_code:
        # The agency's unit follows the place: routed against the new one (the row changes below).
        placed = report.model_copy(update={"place": changes.get("place", report.place)})
        changes.update(service._routing_choice(placed, taxonomy, category_code, agency_code))
    moved = [
        f"{name} {getattr(report, name)} -> {changes[name]}"
        for name in ("kelurahan_code", "category_code", "agency_code")
        if name in changes and changes[name] != getattr(report, name)
    ]
    text = "; ".join(moved) + (f": {note.strip()}" if note and note.strip() else "")
    record_change(session, report, actor=actor, action="reassigned", note=text or None, **changes)
    return report


def _place_in(report: Report, kelurahan_code: str) -> dict[str, Any]:
    gazetteer = load_gazetteer()
    region = gazetteer.regions.get(kelurahan_code)
    if region is None or region.level != "kelurahan":
        raise service.InvalidEdit(
            f"unknown kelurahan {kelurahan_code!r}; give a kelurahan code of wilayah.csv such as 31.71.01.1001"
        )
    regions = {r.level: r for r in gazetteer.lineage(kelurahan_code)}
    lineage = {level: r.code for level, r in regions.items()}
    place = dict(report.place or {})
    if place.get("kelurahan_code") != kelurahan_code:
        # Another kelurahan: the street and RT/RW the normalizer read belonged to the old one.
        for stale in ("street", "rt", "rw", "address_text"):
            place.pop(stale, None)
    for level, region in regions.items():
        place[f"{level}_code"], place[f"{level}_name"] = region.code, region.name
    precision = PlacePrecision(place.get("precision", PlacePrecision.NONE))
    if precision.rank < PlacePrecision.KELURAHAN.rank or precision == PlacePrecision.POINT:
        place["precision"] = PlacePrecision.KELURAHAN.value  # an admin's choice, not the polygon's
    place["evidence"] = [*place.get("evidence", []), f"kelurahan {kelurahan_code} chosen by an admin"]
    return {
        "place": place,
        "kota_code": lineage.get("kota"),
        "kecamatan_code": lineage.get("kecamatan"),
        "kelurahan_code": kelurahan_code,
    }
