"""Group commit for the inbox: concurrent deliveries are stored in one transaction, then all acknowledged.

A delivery's HTTP answer waits for the commit that holds it, so an acknowledged message is durable.
While one batch commits, the next one gathers; under load each commit carries many deliveries, which
is what lets a single SQLite writer (or one PostgreSQL round trip) keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from adapters.contract import InboundMessage, StoredOutcome
from gateway import media_fetch
from gateway.assembly import assembly_columns
from gateway.db import write_connection
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, MessageState, QuarantinedPayload, RawDelivery
from gateway.write_queue import WriteQueue

log = logging.getLogger(__name__)

_TICKET_COLLISION_RETRIES = 3


class StorageUnavailable(Exception):
    """The database did not take the batch; the delivery was not stored and must not be acknowledged."""


@dataclass
class Delivery:
    """A verified, parsed delivery waiting to be stored."""

    channel_id: str
    received_at: datetime
    content_type: str | None
    headers: dict[str, str]
    body: bytes
    messages: list[InboundMessage]


@dataclass
class Quarantine:
    """A delivery that was refused, kept for someone to inspect."""

    channel_id: str
    received_at: datetime
    status_code: int
    reason: str
    client_ip: str | None
    headers: dict[str, str]
    body: bytes
    body_size: int


@dataclass
class _Pending:
    item: Delivery | Quarantine
    future: asyncio.Future[list[StoredOutcome]] = field(repr=False)


class InboxWriter:
    """Stores deliveries and quarantined payloads through one writer, many per transaction."""

    def __init__(
        self,
        engine: Engine,
        writes: WriteQueue,
        *,
        max_batch: int,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        #: Called on the event loop after each commit; the app points it at the normalizer's wake-up.
        self.on_stored: Callable[[], None] = lambda: None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writes = writes
        self._task: asyncio.Task[None] | None = None
        self._last_active = 0.0  # monotonic time a batch last started or finished

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kanal-inbox-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop; nothing accepted into the queue is dropped."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def busy_within(self, seconds: float) -> bool:
        """Whether deliveries are waiting or were being stored in the last `seconds`."""
        return not self._queue.empty() or time.monotonic() - self._last_active < seconds

    async def store(self, delivery: Delivery) -> list[StoredOutcome]:
        """Return once the delivery's messages are committed (or recognised as already stored)."""
        return await self._submit(delivery)

    async def quarantine(self, item: Quarantine) -> None:
        await self._submit(item)

    async def _submit(self, item: Delivery | Quarantine) -> list[StoredOutcome]:
        if self._task is None or self._task.done():
            raise StorageUnavailable("the inbox writer is not running")
        future: asyncio.Future[list[StoredOutcome]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            self._last_active = time.monotonic()
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._writes.run(functools.partial(self._write, [p.item for p in batch]), urgent=True)
            except Exception as exc:
                log.exception("inbox: could not store a batch of %d deliveries", len(batch))
                error = StorageUnavailable(f"the database refused the write ({type(exc).__name__})")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
            else:
                for pending, outcomes in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(outcomes)
                self.on_stored()
            finally:
                self._last_active = time.monotonic()
                for _ in batch:
                    self._queue.task_done()

    def _write(self, items: Sequence[Delivery | Quarantine]) -> list[list[StoredOutcome]]:
        for attempt in range(_TICKET_COLLISION_RETRIES):
            try:
                return self._write_once(items)
            except IntegrityError:
                # Only a ticket-code collision can get here (redeliveries are ON CONFLICT DO NOTHING);
                # new random codes on the next try make a second collision vanishingly unlikely.
                if attempt == _TICKET_COLLISION_RETRIES - 1:
                    raise
                log.warning("inbox: ticket code collision, retrying the batch with new codes")
        raise AssertionError("unreachable")

    def _write_once(self, items: Sequence[Delivery | Quarantine]) -> list[list[StoredOutcome]]:
        # Plain rows for Core inserts: building ORM objects for thousands of deliveries a second costs more.
        deliveries: list[tuple[dict[str, object], list[dict[str, object]]]] = []
        quarantined: list[dict[str, object]] = []
        first_row: dict[tuple[str, str], dict[str, object]] = {}
        for item in items:
            if isinstance(item, Quarantine):
                quarantined.append({"id": new_id(), **item.__dict__})
                continue
            raw: dict[str, object] = {
                "id": new_id(),
                "channel_id": item.channel_id,
                "received_at": item.received_at,
                "content_type": item.content_type,
                "headers": item.headers,
                "body": item.body,
            }
            rows = []
            for message in item.messages:
                row: dict[str, object] = {
                    "id": new_id(),
                    "channel_id": item.channel_id,
                    "external_id": message.external_id,
                    "ticket_code": new_ticket_code(),
                    "delivery_id": raw["id"],
                    "received_at": item.received_at,
                    "message": message.model_dump(mode="json", exclude_none=True),
                    "state": MessageState.NEW,
                    "delivery_count": 1,
                    "attempts": 0,
                    **assembly_columns(message, item.received_at),
                }
                rows.append(row)
                first_row.setdefault((item.channel_id, message.external_id), row)
            deliveries.append((raw, rows))

        # Core, not the ORM: these are plain row inserts, and the ORM's bookkeeping is the bulk of the cost.
        with write_connection(self._engine) as connection:
            if deliveries:
                connection.execute(
                    RawDelivery.__table__.insert(),  # type: ignore[attr-defined]
                    [raw for raw, _ in deliveries],
                )
                unique_rows = list(first_row.values())
                connection.execute(self._insert_ignoring_redeliveries(connection.dialect.name), unique_rows)
                stored = {
                    (channel_id, external_id): (row_id, ticket)
                    for channel_id, external_id, row_id, ticket in connection.execute(
                        select(
                            col(InboundMessageRow.channel_id),
                            col(InboundMessageRow.external_id),
                            col(InboundMessageRow.id),
                            col(InboundMessageRow.ticket_code),
                        ).where(
                            tuple_(col(InboundMessageRow.channel_id), col(InboundMessageRow.external_id)).in_(
                                list(first_row)
                            )
                        )
                    )
                }
                # Media worker (gateway/media_fetch.py): remote photos of messages stored just now wait for
                # download; a redelivery's message was not inserted, so it adds none.
                media_files = [
                    media_row
                    for (channel_id, external_id), row in first_row.items()
                    if stored[(channel_id, external_id)][0] == row["id"]
                    for media_row in media_fetch.pending_rows(
                        str(row["id"]),
                        channel_id,
                        cast(dict[str, Any], row["message"]).get("media", ()),
                        cast(datetime, row["received_at"]),
                    )
                ]
                if media_files:
                    connection.execute(media_fetch.MediaFile.__table__.insert(), media_files)  # type: ignore[attr-defined]
            if quarantined:
                connection.execute(QuarantinedPayload.__table__.insert(), quarantined)  # type: ignore[attr-defined]

            results: list[list[StoredOutcome]] = []
            redeliveries: dict[tuple[str, str], int] = {}
            useless_deliveries: list[object] = []
            next_delivery = iter(deliveries)
            for item in items:
                if isinstance(item, Quarantine):
                    results.append([])
                    continue
                raw, rows = next(next_delivery)
                outcomes = []
                for row in rows:
                    key = (str(row["channel_id"]), str(row["external_id"]))
                    row_id, ticket = stored[key]
                    is_new = row_id == row["id"]
                    if not is_new:
                        redeliveries[key] = redeliveries.get(key, 0) + 1
                    outcomes.append(StoredOutcome(external_id=key[1], ticket_code=ticket, duplicate=not is_new))
                if all(o.duplicate for o in outcomes):
                    useless_deliveries.append(raw["id"])
                results.append(outcomes)
            for (channel_id, external_id), count in redeliveries.items():
                connection.execute(
                    update(InboundMessageRow)
                    .where(
                        col(InboundMessageRow.channel_id) == channel_id,
                        col(InboundMessageRow.external_id) == external_id,
                    )
                    .values(delivery_count=InboundMessageRow.delivery_count + count)
                )
            if useless_deliveries:
                # A redelivery adds nothing the first copy did not hold: keep the count, not the bytes.
                connection.execute(delete(RawDelivery).where(col(RawDelivery.id).in_(useless_deliveries)))
        return results

    @staticmethod
    def _insert_ignoring_redeliveries(dialect: str):  # type: ignore[no-untyped-def]
        table = InboundMessageRow.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        return insert.on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
