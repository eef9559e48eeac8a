"""Answering a citizen who asks a chat bot about a ticket (`AdapterContext.lookup_ticket`).

Only what the public status page shows: the state, the agency and when it last changed. A message that
is stored but not yet a report (a conversation still being put together, or waiting for the
normalizer) is `received`, so a citizen who just got a ticket code never hears "not found". A ticket
given to a later part of a conversation, or to a follow-up, answers with the report it went into.
"""

from __future__ import annotations

import asyncio
from datetime import UTC

from sqlalchemy import Engine, select
from sqlmodel import col

from adapters.contract import TicketLookup, TicketStatus
from gateway.db import read_session
from gateway.ids import canonical_ticket_code
from gateway.inbox import InboundMessageRow
from review_queue.tables import Report, ReportFollowUp


def make_ticket_lookup(engine: Engine, public_base_url: str) -> TicketLookup:
    base = public_base_url.rstrip("/")

    def find(code: str) -> TicketStatus | None:
        ticket = canonical_ticket_code(code)
        if not ticket:
            return None
        with read_session(engine) as session:
            # A part merged into a conversation has its own ticket; the report carries the group's first.
            carrier = session.execute(
                select(col(InboundMessageRow.ticket_code))
                .select_from(InboundMessageRow)
                .where(
                    col(InboundMessageRow.id)
                    == select(col(InboundMessageRow.merged_into))
                    .where(col(InboundMessageRow.ticket_code) == ticket)
                    .scalar_subquery()
                )
            ).scalar()
            # A follow-up message was given a ticket of its own too; it leads to the report it joined.
            joined = session.execute(
                select(col(Report.ticket_code))
                .join(ReportFollowUp, col(ReportFollowUp.report_id) == col(Report.id))
                .where(col(ReportFollowUp.ticket_code) == (carrier or ticket))
            ).scalar()
            report_ticket = joined or carrier or ticket
            status_url = f"{base}/status/{report_ticket}"
            report = session.execute(
                select(col(Report.state), col(Report.agency_unit), col(Report.updated_at)).where(
                    col(Report.ticket_code) == report_ticket
                )
            ).first()
            if report is not None:
                state, agency_unit, updated_at = report
                return TicketStatus(
                    ticket=report_ticket,
                    state=state,
                    agency_unit=agency_unit,
                    updated_at=updated_at.astimezone(UTC),
                    status_url=status_url,
                )
            stored = session.execute(
                select(col(InboundMessageRow.received_at)).where(col(InboundMessageRow.ticket_code) == ticket)
            ).first()
        if stored is None:
            return None
        received_at = stored[0].astimezone(UTC)
        return TicketStatus(ticket=ticket, state="received", updated_at=received_at, status_url=status_url)

    async def lookup(code: str) -> TicketStatus | None:
        return await asyncio.to_thread(find, code)

    return lookup
