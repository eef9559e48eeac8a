"""Putting a conversation or a multipart message together before it becomes one report.

A chat bot asks for the problem, then the location, then a photo; a long SMS arrives in three parts;
a citizen sends four WhatsApp messages in a minute. Each part is a message of its own and is stored
(and acknowledged) at once, like any other, so nothing is lost if Kanal stops. Parts carrying an
`adapters.contract.Assembly` wait in state `assembling`. When a part completes its group, or the
group's window has passed since its latest part, the assembler writes the combined message into the
group's first part (state `new`, for the normalizer) and marks the other parts `merged` into it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from adapters.contract import InboundMessage
from gateway.inbox import InboundMessageRow, MessageState


def assembly_columns(message: InboundMessage, received_at: datetime) -> dict[str, object]:
    """The inbox columns for a newly stored message: a plain message is `new`, a part waits."""
    assembly = message.assembly
    if assembly is None:
        return {"assembly_key": None, "assembly_due_at": None}
    due = received_at if assembly.complete else received_at + timedelta(seconds=assembly.window_seconds)
    return {
        "state": MessageState.ASSEMBLING,
        "assembly_key": assembly.key[:200],
        "assembly_due_at": due,
    }


#: Parts looked at per round. Groups are small and short-lived; a backlog larger than this is taken
#: over the following rounds, oldest first.
MAX_PARTS_PER_ROUND = 5000
#: Text joining the parts of one group that are not segments of one multipart message.
PART_SEPARATOR = "\n"


@dataclass(frozen=True)
class _Part:
    id: str
    channel_id: str
    key: str
    due_at: datetime
    received_at: datetime
    message: InboundMessage


def _read_parts(connection: Connection, *, channel_id: str | None = None, key: str | None = None) -> list[_Part]:
    table = InboundMessageRow.__table__  # type: ignore[attr-defined]
    c = table.c
    query = select(c.id, c.channel_id, c.assembly_key, c.assembly_due_at, c.received_at, c.message).where(
        c.state == MessageState.ASSEMBLING
    )
    if channel_id is not None:
        query = query.where(table.c.channel_id == channel_id, table.c.assembly_key == key)
        if connection.dialect.name == "postgresql":
            # Another process assembling the same group waits here, then finds no parts left.
            query = query.with_for_update()
    query = query.order_by(table.c.received_at, table.c.id).limit(MAX_PARTS_PER_ROUND)
    return [
        _Part(row.id, row.channel_id, row.assembly_key, row.assembly_due_at, row.received_at, _message(row.message))
        for row in connection.execute(query)
    ]


def _message(document: dict[str, object]) -> InboundMessage:
    return InboundMessage.model_validate(document)


def due_groups(connection: Connection, now: datetime) -> list[tuple[str, str]]:
    """(channel, key) of the groups that are done: a part completed them, or their window has passed."""
    groups: dict[tuple[str, str], list[_Part]] = defaultdict(list)
    for part in _read_parts(connection):
        groups[(part.channel_id, part.key)].append(part)
    done = []
    for group, parts in groups.items():
        completed = any(p.message.assembly is not None and p.message.assembly.complete for p in parts)
        if completed or max(p.due_at for p in parts) <= now:
            done.append(group)
    return done


def combine(parts: Sequence[InboundMessage]) -> InboundMessage:
    """One message from a group's parts, in arrival order (`parts` is ordered so)."""
    first = parts[0]
    # Each piece of text is a single part, or a multipart message's segments (placed where it began).
    pieces: list[list[InboundMessage]] = []
    segments: dict[str, list[InboundMessage]] = {}
    for part in parts:
        segment = part.assembly.segment if part.assembly is not None else None
        if segment is None:
            pieces.append([part])
        elif segment in segments:
            segments[segment].append(part)
        else:
            segments[segment] = [part]
            pieces.append(segments[segment])
    texts = ["".join(p.text for p in sorted(piece, key=_part_number)).strip() for piece in pieces]
    located = [p.location for p in parts if p.location is not None]
    with_coordinates = [loc for loc in located if loc.lat is not None and loc.lng is not None]
    location = (with_coordinates or located)[-1] if located else None
    addresses = [loc.address for loc in located if loc.address]
    if location is not None and not location.address and addresses:
        location = location.model_copy(update={"address": addresses[-1]})
    return InboundMessage(
        external_id=first.external_id,
        text=PART_SEPARATOR.join(text for text in texts if text)[:MAX_TEXT],
        sender=next((p.sender for p in parts if p.sender is not None), None),
        location=location,
        media=[ref for p in parts for ref in p.media][:MAX_MEDIA],
        sent_at=first.sent_at,
        thread_id=next((p.thread_id for p in parts if p.thread_id), None),
        category_hint=next((p.category_hint for p in parts if p.category_hint), None),
    )


def _part_number(message: InboundMessage) -> int:
    return message.assembly.part or 0 if message.assembly is not None else 0


#: The limits of `InboundMessage`: a long conversation keeps its first photos and words.
MAX_MEDIA = 20
MAX_TEXT = 20_000


def assemble_group(connection: Connection, channel_id: str, key: str) -> str | None:
    """Put one group together; return the id of the part that now carries it (None if nothing was left,
    or the group held nothing to report)."""
    parts = _read_parts(connection, channel_id=channel_id, key=key)
    if not parts:
        return None
    carrier, rest = parts[0], parts[1:]
    combined = combine([p.message for p in parts])
    table = InboundMessageRow.__table__  # type: ignore[attr-defined]
    if not combined.text.strip() and not combined.media and combined.location is None:
        # Nothing to report (a citizen who only said "done"): an empty report would only burden an admin.
        connection.execute(
            update(table)
            .where(table.c.id.in_([p.id for p in parts]), table.c.state == MessageState.ASSEMBLING)
            .values(state=MessageState.EMPTY)
        )
        return None
    connection.execute(
        update(table)
        .where(table.c.id == carrier.id, table.c.state == MessageState.ASSEMBLING)
        .values(state=MessageState.NEW, message=combined.model_dump(mode="json", exclude_none=True))
    )
    if rest:
        connection.execute(
            update(table)
            .where(table.c.id.in_([p.id for p in rest]), table.c.state == MessageState.ASSEMBLING)
            .values(state=MessageState.MERGED, merged_into=carrier.id)
        )
        for hook in MERGE_HOOKS:
            hook(connection, carrier.id, [(p.id, len(p.message.media)) for p in parts])
    return carrier.id


#: Called with (connection, carrier id, [(part id, its media count)] in order) when parts are merged, so
#: rows keyed by a part's media position (downloaded files) can follow the media into the carrier.
MERGE_HOOKS: list[Callable[[Connection, str, list[tuple[str, int]]], None]] = []


def assemble_due(connection: Connection, now: datetime) -> int:
    """Put every finished group together in this transaction; return how many were."""
    done = 0
    for channel_id, key in due_groups(connection, now):
        if assemble_group(connection, channel_id, key) is not None:
            done += 1
    return done
