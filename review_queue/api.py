"""The review API: list reports, read one with its history, edit, approve, reject.

Every route sees only the admin's scope (review_queue/accounts.py): lists are filtered in SQL, and a
report outside the scope answers 404 exactly like one that does not exist, never 403.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import Select, and_, case, or_, select
from sqlmodel import Session, col

from gateway.db import write_session
from gateway.deps import ActorDep, AdminDep, ReadSessionDep, RuntimeDep
from review_queue import accounts, auth, decisions, service
from review_queue.schemas import (
    ApproveRequest,
    AskInfoRequest,
    EditRequest,
    EventPublic,
    FollowUpPersonalData,
    FollowUpPublic,
    MergeRequest,
    MergeResult,
    ReassignRequest,
    RejectReasonPublic,
    RejectRequest,
    ReportEdit,
    ReportPage,
    ReportPersonalData,
    ReportPublic,
)
from review_queue.tables import AdminUser, Report, ReportEvent, ReportState
from review_queue.web.session import LoginThrottle, lockout_policy

router = APIRouter(prefix="/api/v1", tags=["review"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: datetime


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses={401: {"description": "Refused"}, 429: {"description": "Too many failures from this address"}},
)
async def issue_token(
    request: Request, runtime: RuntimeDep, username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> TokenResponse:
    """Exchange an admin's username and password (form fields, as OAuth2's password flow) for a token.

    Counted like the sign-in form: failures lock the account (`auth.login_max_failures`), each attempt
    is in the audit log (`via: api`), and one address failing too often waits. A wrong password, an
    unknown name and a locked account get the same 401, so a guesser learns nothing from it.
    """
    ip = request.client.host if request.client else None  # uvicorn applied forwarded_allow_ips already
    throttle: LoginThrottle | None = getattr(request.app.state, "admin_login_throttle", None)
    if throttle is not None and throttle.blocked(ip):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins from this address; wait a few minutes, then try again",
            headers={"Retry-After": str(int(runtime.settings.auth.login_failure_window_minutes * 60))},
        )
    if len(username) > 200 or len(password) > 1000:
        username, password = username[:200], ""  # argon2 is not handed a megabyte; counted as a failure
    attempt = await asyncio.to_thread(auth.check_password, runtime.engine, username=username, password=password)
    policy = lockout_policy(runtime.settings.auth)

    def settle() -> AdminUser | None:
        with write_session(runtime.engine) as session:
            return auth.settle_sign_in(session, attempt, policy=policy, ip=ip, via="api")

    admin = await runtime.writes.run(settle, urgent=True)  # a client is waiting on this answer
    if admin is None:
        if throttle is not None:
            throttle.failed(ip)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong username or password, or the account is locked for a while; check them and try again, "
            f"and after repeated failures wait {runtime.settings.auth.lockout_minutes:g} minutes",
        )
    ttl = timedelta(hours=runtime.settings.auth.token_ttl_hours)
    token, record = await asyncio.to_thread(auth.issue_token, runtime.engine, admin, ttl=ttl)
    return TokenResponse(access_token=token, expires_at=record.expires_at)


@router.get("/reports", response_model=ReportPage)
def list_reports(
    session: ReadSessionDep,
    admin: AdminDep,
    state: ReportState | None = None,
    channel_id: str | None = None,
    sla_level: Literal["green", "yellow", "red", "overdue"] | None = None,
    order: Literal["age", "overdue"] = "age",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ReportPage:
    """Reports oldest first (the longest-waiting need attention first), `limit` at a time.

    `order=overdue`: overdue reports first, then the others by deadline (soonest first), then by age.
    """
    query = select(Report).limit(limit + 1)
    in_scope = accounts.scope_of(admin).report_clause()
    if in_scope is not None:
        query = query.where(in_scope)
    if state is not None:
        query = query.where(col(Report.state) == state)
    if channel_id is not None:
        query = query.where(col(Report.channel_id) == channel_id)
    if sla_level is not None:
        query = query.where(col(Report.sla_level) == sla_level)
    if order == "overdue":
        return _overdue_first(session, query, limit, cursor)
    query = query.order_by(col(Report.created_at), col(Report.id))
    if cursor:
        after_time, after_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                col(Report.created_at) > after_time,
                and_(col(Report.created_at) == after_time, col(Report.id) > after_id),
            )
        )
    rows = list(session.execute(query).scalars())
    page, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_cursor(page[-1]) if more and page else None
    return ReportPage(items=[ReportPublic.model_validate(r) for r in page], next_cursor=next_cursor)


def _overdue_first(session: ReadSessionDep, query: Select[Report], limit: int, cursor: str | None) -> ReportPage:
    """Overdue first, then by deadline (none last), then oldest; paged by position.

    A deadline order has no stable key to resume after, as levels change under the reader; a page may
    repeat or skip a report that changed level meanwhile, which a triage view can live with.
    """
    offset = _decode_offset(cursor) if cursor else 0
    overdue_rank = case((col(Report.sla_level) == "overdue", 0), else_=1)
    no_deadline_last = case((col(Report.sla_due_at).is_(None), 1), else_=0)
    query = query.order_by(
        overdue_rank, no_deadline_last, col(Report.sla_due_at), col(Report.created_at), col(Report.id)
    ).offset(offset)
    rows = list(session.execute(query).scalars())
    page, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_offset(offset + len(page)) if more else None
    return ReportPage(items=[ReportPublic.model_validate(r) for r in page], next_cursor=next_cursor)


@router.get("/reports/{key}", response_model=ReportPublic)
def read_report(key: str, session: ReadSessionDep, admin: AdminDep) -> ReportPublic:
    """One report, by id or ticket code."""
    return ReportPublic.model_validate(_find(session, key, admin))


@router.get("/reports/{key}/events", response_model=list[EventPublic])
def report_history(key: str, session: ReadSessionDep, admin: AdminDep) -> list[EventPublic]:
    """Every change to the report, oldest first: who, when, what before and after."""
    report = _find(session, key, admin)
    events = session.execute(
        select(ReportEvent)
        .where(col(ReportEvent.report_id) == report.id)
        .order_by(col(ReportEvent.at), col(ReportEvent.id))
    )
    return [EventPublic.model_validate(e) for e in events.scalars()]


@router.get("/reports/{key}/follow-ups", response_model=list[FollowUpPublic])
def report_follow_ups(key: str, session: ReadSessionDep, admin: AdminDep) -> list[FollowUpPublic]:
    """Later messages attached to the report, oldest first, masked like the report."""
    report = _find(session, key, admin)
    return [FollowUpPublic.model_validate(f) for f in service.follow_ups(session, report)]


@router.get("/reports/{key}/personal-data", response_model=ReportPersonalData)
async def report_personal_data(key: str, runtime: RuntimeDep, admin: ActorDep) -> ReportPersonalData:
    """The unmasked text and the reporter's contact. Each opening is recorded in the report's history."""

    def run() -> ReportPersonalData:
        with write_session(runtime.engine) as session:
            report = accounts.get_report_in_scope(session, key, accounts.scope_of(admin))
            service.record_personal_data_opened(session, report, actor=f"admin:{admin.username}")
            return ReportPersonalData(
                ticket_code=report.ticket_code,
                text_original=report.text_original,
                text_clean=report.text_clean,
                sender=report.sender,
                follow_ups=[FollowUpPersonalData.model_validate(f) for f in service.follow_ups(session, report)],
            )

    try:
        return await runtime.writes.run(run, urgent=True)
    except service.ReportNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no report with that id or ticket code") from None


@router.post("/reports/{key}/approve", response_model=ReportPublic)
async def approve_report(
    key: str, body: ApproveRequest, request: Request, runtime: RuntimeDep, admin: ActorDep
) -> ReportPublic:
    """Approve (optionally with edits): the report goes to the outbox in the same transaction."""
    report = await _act(
        runtime,
        admin,
        key,
        lambda s, report_id: service.approve(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            crm=runtime.settings.crm,
            taxonomy=runtime.taxonomy,
            edits=body.edits,
            version=body.version,
        ),
    )
    request.app.state.workers.poke_dispatcher()
    return report


@router.post("/reports/{key}/reject", response_model=ReportPublic)
async def reject_report(key: str, body: RejectRequest, runtime: RuntimeDep, admin: ActorDep) -> ReportPublic:
    return await _act(
        runtime,
        admin,
        key,
        lambda s, report_id: service.reject(
            s, key=report_id, actor=f"admin:{admin.username}", reason=body.reason, version=body.version
        ),
    )


@router.patch("/reports/{key}", response_model=ReportPublic)
async def edit_report(key: str, body: EditRequest, runtime: RuntimeDep, admin: ActorDep) -> ReportPublic:
    edits = ReportEdit.model_validate(body.model_dump(exclude_unset=True, exclude={"version"}))
    return await _act(
        runtime,
        admin,
        key,
        lambda s, report_id: service.edit(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            edits=edits,
            taxonomy=runtime.taxonomy,
            version=body.version,
        ),
    )


async def _act(
    runtime: RuntimeDep, admin: AdminUser, key: str, action: Callable[[Session, str], Report]
) -> ReportPublic:
    """Run `action` on the report `key` names, if in `admin`'s scope, in one writing transaction.

    The report is found and locked first, so the action sees the row the scope was checked on. Maps the
    service's errors to 404 (also outside the scope) and 409.
    """

    def run() -> ReportPublic:
        with write_session(runtime.engine) as session:
            report = accounts.get_report_in_scope(session, key, accounts.scope_of(admin), for_update=True)
            return ReportPublic.model_validate(action(session, report.id))

    try:
        return await runtime.writes.run(run, urgent=True)  # an admin is waiting on this answer
    except service.ReportNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no report with that id or ticket code") from None
    except service.ReportConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except service.InvalidEdit as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _find(session: ReadSessionDep, key: str, admin: AdminUser) -> Report:
    try:
        return accounts.get_report_in_scope(session, key, accounts.scope_of(admin))
    except service.ReportNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no report with that id or ticket code") from None


def _encode_cursor(report: Report) -> str:
    raw = json.dumps([report.created_at.isoformat(), report.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _decode_offset(cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["offset"]
        if not isinstance(value, int) or value < 0:
            raise ValueError(value)
        return value
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "invalid cursor; pass next_cursor from the previous page of the same order"
        ) from None


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, report_id = json.loads(raw)
        return datetime.fromisoformat(created), str(report_id)
    except (binascii.Error, ValueError, TypeError):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "invalid cursor; pass next_cursor from the previous page"
        ) from None


# -- issue 6: the review app's other actions (review_queue/decisions.py) ------------------------------


@router.get("/reject-reasons", response_model=list[RejectReasonPublic])
def reject_reasons(_admin: AdminDep) -> list[RejectReasonPublic]:
    """The reasons the admin pages offer for a rejection (codes stable, texts in Indonesian and English)."""
    return [RejectReasonPublic(code=r.code, id=r.id, en=r.en) for r in decisions.REJECT_REASONS.values()]


@router.post(
    "/reports/{key}/ask-info",
    response_model=ReportPublic,
    responses={409: {"description": "already decided or changed"}, 422: {"description": "cannot ask"}},
)
async def ask_info(key: str, body: AskInfoRequest, runtime: RuntimeDep, admin: ActorDep) -> ReportPublic:
    """Ask the citizen, on the channel they used, for what is missing (the `needs_info` message template).

    The report waits in `needs_info`; the citizen's answer (a follow-up: same thread, same sender, or
    quoting the ticket) brings it back to `pending_review`. 422 when the report has no contact to write to.
    """
    settings = runtime.settings
    return await _act(
        runtime,
        admin,
        key,
        lambda s, report_id: decisions.ask_for_info(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            missing=body.missing,
            note=body.note,
            config=settings.notifications,
            public_base_url=settings.public_base_url,
            version=body.version,
        ),
    )


@router.post(
    "/reports/{key}/merge",
    response_model=MergeResult,
    responses={409: {"description": "already decided or changed"}, 422: {"description": "cannot merge"}},
)
async def merge_report(key: str, body: MergeRequest, runtime: RuntimeDep, admin: ActorDep) -> MergeResult:
    """Merge this report into `into` (both in the admin's scope; 404 otherwise): this one becomes `merged`,
    the primary lists both sources in its CRM request."""
    scope = accounts.scope_of(admin)

    def run() -> MergeResult:
        with write_session(runtime.engine) as session:
            report = accounts.get_report_in_scope(session, key, scope)
            done = decisions.merge(
                session,
                key=report.id,
                into=body.into,
                actor=f"admin:{admin.username}",
                scope=scope,
                crm=runtime.settings.crm,
                version=body.version,
                notify=runtime.settings.notifications,
                public_base_url=runtime.settings.public_base_url,
            )
            return MergeResult(
                report=ReportPublic.model_validate(done.report),
                primary=ReportPublic.model_validate(done.primary),
                crm=done.crm,
            )

    try:
        return await runtime.writes.run(run, urgent=True)
    except service.ReportNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no report with that id or ticket code") from None
    except service.ReportConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except service.InvalidEdit as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.post(
    "/reports/{key}/reassign",
    response_model=ReportPublic,
    responses={409: {"description": "already decided or changed"}, 422: {"description": "unknown code"}},
)
async def reassign_report(key: str, body: ReassignRequest, runtime: RuntimeDep, admin: ActorDep) -> ReportPublic:
    """Change the category, agency and/or kelurahan; the report stays open (maybe in other admins' scope)."""
    return await _act(
        runtime,
        admin,
        key,
        lambda s, report_id: decisions.reassign(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            taxonomy=runtime.taxonomy,
            category_code=body.category_code,
            agency_code=body.agency_code,
            kelurahan_code=body.kelurahan_code,
            note=body.note,
            version=body.version,
        ),
    )
