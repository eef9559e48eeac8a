"""Telling the citizen, on the channel they used, each step the CRM reports: at most once per change.

A status change recorded by status sync adds one `citizen_notification` row in the same transaction,
keyed by (report, change), so a change told twice by the CRM is still one message. The sender loop
delivers pending rows through the channel's adapter (`Adapter.send`), retries with backoff when the
platform fails, and records the rows it cannot deliver (no reply path, no recipient) instead of
retrying them forever. The text comes from templates in the configuration (`notifications:`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import Column, UniqueConstraint, func, select, update
from sqlmodel import Field, Session, SQLModel, col

from adapters.contract import OutboundReply, Sender, StatusUpdate
from adapters.errors import ChannelUnavailable
from crm_client.periodic import PeriodicLoop
from gateway.db import UTCDateTime, utcnow, write_session
from gateway.ids import new_id
from gateway.inbox import InboundMessageRow
from gateway.settings import NotificationsConfig
from review_queue.tables import Report, ReportFollowUp

log = logging.getLogger(__name__)


class NotificationState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: The channel cannot send (no reply path configured) or the report has no recipient: kept, not retried.
    UNDELIVERABLE = "undeliverable"
    #: The platform refused for good, or every attempt failed.
    FAILED = "failed"


class CitizenNotification(SQLModel, table=True):
    __tablename__ = "citizen_notification"
    __table_args__ = (UniqueConstraint("report_id", "change_key", name="uq_notification_change"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    #: What changed, e.g. "Proses|2026-11-28T08:00:00+00:00": the same change never makes two messages.
    change_key: str = Field(max_length=200)
    channel_id: str = Field(max_length=100)
    recipient: dict[str, Any] | None = Field(default=None, sa_column=Column(SAJSON, nullable=True))
    thread_id: str | None = Field(default=None, max_length=200)
    text: str
    state: str = Field(default=NotificationState.PENDING, index=True, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    platform_message_id: str | None = Field(default=None, max_length=200)
    #: The change told, for channels whose far end takes it structured (`OutboundReply.status`):
    #: `received` for a new report's acknowledgement, else the report's new state, with the agency's note.
    change_state: str | None = Field(default=None, max_length=30)
    change_note: str | None = None
    changed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class _Blank(dict[str, str]):
    """Template values; a placeholder the template names but Kanal lacks reads as empty, not an error."""

    def __missing__(self, key: str) -> str:
        return ""


def render(config: NotificationsConfig, state: str, values: Mapping[str, str]) -> str | None:
    """The message for a report entering `state`, in the configured language; None if nothing is told."""
    templates = config.templates.get(config.language, {})
    template = templates.get(state)
    if not template:
        return None
    return " ".join(template.format_map(_Blank(values)).split())[:4000]


def enqueue(
    session: Session,
    *,
    report: Any,
    change_key: str,
    state: str,
    note: str | None,
    config: NotificationsConfig,
    public_base_url: str,
    progress_of: Any | None = None,
) -> bool:
    """Add the citizen's message for this change, unless it was added before. Returns whether it was added.

    `progress_of`: the report whose progress this is, when it is not `report` itself: the report an admin
    merged `report` into. The citizen still reads their own ticket and status page; {agency} and
    {primary} come from that report.
    """
    exists = session.execute(
        select(col(CitizenNotification.id)).where(
            col(CitizenNotification.report_id) == report.id, col(CitizenNotification.change_key) == change_key
        )
    ).first()
    if exists is not None:
        return False
    text = render(config, state, _values(report, note=note, public_base_url=public_base_url, progress_of=progress_of))
    if text is None:
        return False
    session.add(new_notification(report, change_key=change_key, state=state, note=note, text=text))
    return True


def new_notification(report: Any, *, change_key: str, state: str, note: str | None, text: str) -> CitizenNotification:
    """The row for one message to the report's citizen; undeliverable at once when there is nobody to write to."""
    return CitizenNotification(
        report_id=report.id,
        change_key=change_key[:200],
        channel_id=report.channel_id,
        recipient=report.sender,
        text=text,
        state=NotificationState.PENDING if report.sender else NotificationState.UNDELIVERABLE,
        last_error=None if report.sender else "the report has no sender to write to",
        change_state=state,
        change_note=note,
        changed_at=utcnow(),
    )


#: The change key of a new report's acknowledgement: one per report, whatever happens later.
RECEIVED = "received"


@dataclass(frozen=True)
class Receipts:
    """Acknowledging new reports ("received, your ticket is ...") on channels that do (`acknowledge_receipt`)."""

    config: NotificationsConfig
    public_base_url: str

    def notice(self, report: Any) -> CitizenNotification | None:
        """The acknowledgement for a report just made, or None when no `received` template is configured."""
        text = render(self.config, RECEIVED, _values(report, note=None, public_base_url=self.public_base_url))
        if text is None:
            return None
        return new_notification(report, change_key=RECEIVED, state=RECEIVED, note=None, text=text)


def _values(report: Any, *, note: str | None, public_base_url: str, progress_of: Any | None = None) -> dict[str, str]:
    followed = progress_of if progress_of is not None else report
    return {
        "ticket": report.ticket_code,
        "primary": followed.ticket_code,
        "agency": followed.agency_unit or "",
        "note": note or "",
        "status_url": f"{public_base_url.rstrip('/')}/status/{report.ticket_code}",
    }


def _backoff(config: NotificationsConfig, attempts: int) -> timedelta:
    base = min(config.backoff_cap_seconds, config.backoff_base_seconds * 2 ** (attempts - 1))
    return timedelta(seconds=base * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security


class NotificationSender(PeriodicLoop):
    """Delivers pending notifications through the channels' adapters, oldest first."""

    name = "notifications"

    def __init__(
        self,
        engine: Any,
        channels: Mapping[str, Any],
        config: NotificationsConfig,
        *,
        public_base_url: str = "http://127.0.0.1:8080",
    ) -> None:
        super().__init__(config.poll_interval_seconds)
        self._engine = engine
        self._channels = channels
        self._config = config
        self._public_base_url = public_base_url

    def _due(self) -> list[CitizenNotification]:
        with Session(self._engine) as session:
            return list(
                session.execute(
                    select(CitizenNotification)
                    .where(col(CitizenNotification.state) == NotificationState.PENDING)
                    .where(col(CitizenNotification.next_attempt_at) <= utcnow())
                    .order_by(col(CitizenNotification.next_attempt_at))
                    .limit(50)
                ).scalars()
            )

    def _claim(self, item: CitizenNotification) -> bool:
        """Take `item` for one attempt. Compare-and-set on its due time: of several processes that read it,
        exactly one wins; if that one dies mid-send, the item comes due again after the lease."""
        lease_until = utcnow() + timedelta(seconds=self._config.send_lease_seconds)
        with write_session(self._engine) as session:
            result = session.execute(
                update(CitizenNotification)
                .where(col(CitizenNotification.id) == item.id)
                .where(col(CitizenNotification.state) == NotificationState.PENDING)
                .where(col(CitizenNotification.next_attempt_at) == item.next_attempt_at)
                .values(next_attempt_at=lease_until)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _record(self, item: CitizenNotification, **changes: Any) -> None:
        with write_session(self._engine) as session:
            row = session.get(CitizenNotification, item.id)
            if row is None or row.state != NotificationState.PENDING:
                return  # another process delivered it meanwhile
            for name, value in changes.items():
                setattr(row, name, value)
            session.add(row)

    def _reply_for(self, item: CitizenNotification) -> OutboundReply:
        """The reply with what Kanal knows of the conversation: the citizen's message and thread, and when
        they last wrote (platforms such as WhatsApp only allow free text within a day of that)."""
        with Session(self._engine) as session:
            found = session.execute(
                select(Report, InboundMessageRow)
                .join(InboundMessageRow, col(InboundMessageRow.id) == col(Report.inbound_message_id))
                .where(col(Report.id) == item.report_id)
            ).first()
            last_follow_up = session.execute(
                select(func.max(col(ReportFollowUp.received_at))).where(
                    col(ReportFollowUp.report_id) == item.report_id,
                    col(ReportFollowUp.channel_id) == item.channel_id,
                )
            ).scalar()
        recipient = Sender(**(item.recipient or {}))
        if found is None:
            return OutboundReply(recipient=recipient, text=item.text, thread_id=item.thread_id)
        report, message = found
        last_inbound = max(filter(None, [report.received_at, last_follow_up]))
        status = None
        if item.change_state:
            status = StatusUpdate(
                ticket=report.ticket_code,
                state=item.change_state,
                agency_unit=report.agency_unit,
                note=item.change_note,
                changed_at=item.changed_at or item.created_at,
                status_url=f"{self._public_base_url.rstrip('/')}/status/{report.ticket_code}",
            )
        return OutboundReply(
            recipient=recipient,
            text=item.text,
            in_reply_to=message.external_id,
            thread_id=item.thread_id or (message.message or {}).get("thread_id"),
            ticket=report.ticket_code,
            last_inbound_at=last_inbound,
            status=status,
        )

    async def _send(self, channel: Any, reply: OutboundReply) -> str:
        """Send on the citizen's own channel; where it has no way back (a form, a walk-in desk), through the
        channels its `reply_via` lists, in order, to the first that can reach this citizen.

        Another channel knows nothing of the original message, so the reply goes there without it
        (the ticket still names the report). Raises `NotImplementedError` when no channel can send.
        """
        try:
            return str(await channel.adapter.send(reply))
        except NotImplementedError as exc:
            reasons = [f"{channel.id}: {exc or 'cannot send replies'}"]
        standalone = reply.model_copy(update={"in_reply_to": None, "thread_id": None})
        for via_id in channel.config.reply_via:
            via = self._channels.get(via_id)
            if via is None:
                reasons.append(f"{via_id}: not configured or disabled")
                continue
            try:
                return f"{via_id}:{await via.adapter.send(standalone)}"
            except NotImplementedError as exc:
                reasons.append(f"{via_id}: {exc or 'cannot send replies'}")
            except ChannelUnavailable as exc:
                if exc.retryable:
                    raise
                reasons.append(f"{via_id}: {exc}")  # e.g. no e-mail address for an e-mail channel: try the next
        raise NotImplementedError("; ".join(reasons))

    async def run_once(self) -> int:
        """One round: try every due notification once. Returns how many were sent."""
        sent = 0
        for item in await asyncio.to_thread(self._due):
            if not await asyncio.to_thread(self._claim, item):
                continue
            channel = self._channels.get(item.channel_id)
            attempts = item.attempts + 1
            if channel is None:
                await asyncio.to_thread(
                    self._record,
                    item,
                    state=NotificationState.UNDELIVERABLE,
                    attempts=attempts,
                    last_error=f"channel {item.channel_id} is not configured or disabled",
                )
                continue
            reply = await asyncio.to_thread(self._reply_for, item)
            try:
                message_id = await self._send(channel, reply)
            except NotImplementedError as exc:
                # The adapter says why (e.g. no reply_url configured): kept for the admin, never retried.
                reason = str(exc) or f"channel type {channel.config.type} cannot send replies"
                await asyncio.to_thread(
                    self._record, item, state=NotificationState.UNDELIVERABLE, attempts=attempts, last_error=reason
                )
            except ChannelUnavailable as exc:
                final = not exc.retryable or attempts >= self._config.max_attempts
                await asyncio.to_thread(
                    self._record,
                    item,
                    attempts=attempts,
                    last_error=str(exc)[:2000],
                    state=NotificationState.FAILED if final else NotificationState.PENDING,
                    # A platform that says when to come back (a 429's reset time) is not asked sooner.
                    next_attempt_at=utcnow()
                    + max(_backoff(self._config, attempts), timedelta(seconds=exc.retry_after or 0)),
                )
            except Exception as exc:  # an adapter bug must not stop everyone else's messages
                log.exception("notifications: channel %s failed to send", item.channel_id)
                await asyncio.to_thread(
                    self._record,
                    item,
                    attempts=attempts,
                    last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    state=NotificationState.FAILED if attempts >= self._config.max_attempts else item.state,
                    next_attempt_at=utcnow() + _backoff(self._config, attempts),
                )
            else:
                sent += 1
                await asyncio.to_thread(
                    self._record,
                    item,
                    state=NotificationState.SENT,
                    attempts=attempts,
                    sent_at=utcnow(),
                    platform_message_id=(message_id or None),
                    last_error=None,
                )
        return sent
