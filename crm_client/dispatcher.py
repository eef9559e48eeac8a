"""Sends due outbox items to the CRM and records each answer."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from crm_client import outbox
from crm_client.errors import CRMError
from crm_client.open311 import Created, Open311Client
from gateway import metrics
from gateway.settings import CRMConfig
from gateway.write_queue import WriteQueue

log = logging.getLogger(__name__)

#: Requests in flight to the CRM at once, per process; enough to hide latency, gentle on the CRM.
MAX_IN_FLIGHT = 8


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        writes: WriteQueue,
        client: Open311Client,
        crm: CRMConfig,
        counters: metrics.Counters,
        *,
        batch: int,
        lease_seconds: float,
    ) -> None:
        self._engine = engine
        self._writes = writes
        self._client = client
        self._crm = crm
        self._counters = counters
        self._batch = batch
        self._lease = lease_seconds
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[str] = set()

    async def run_once(self, *, limit: int | None = None) -> int:
        """Send what is due now (at most `limit`, default the configured batch) and record the answers;
        return how many items were attempted."""
        batch = min(limit or self._batch, self._batch)
        claimed = await self._writes.run(lambda: outbox.claim_due(self._engine, limit=batch, lease_seconds=self._lease))
        if not claimed:
            return 0
        self._in_flight.update(item.id for item in claimed)
        outcomes = await asyncio.gather(*(self._send(item) for item in claimed))
        answered = list(zip(claimed, outcomes, strict=True))
        states = await self._writes.run(lambda: outbox.record_outcomes(self._engine, answered, self._crm))
        self._in_flight.clear()
        for item, outcome, state in zip(claimed, outcomes, states, strict=True):
            result = {"sent": "sent", "pending": "retry"}.get(state, "dead")
            self._counters.inc(metrics.CRM_SENDS, result=result)
            if isinstance(outcome, CRMError):
                level = logging.WARNING if result == "retry" else logging.ERROR
                log.log(
                    level, "outbox %s: attempt %d failed (%s): %s", item.id, item.attempts + 1, result, outcome.message
                )
        return len(claimed)

    def release_in_flight(self) -> None:
        """After the loop is cancelled: hand back what was claimed but not recorded, for the next process."""
        outbox.release(self._engine, sorted(self._in_flight))
        self._in_flight.clear()

    async def _send(self, item: outbox.Claimed) -> Created | CRMError:
        async with self._slots:
            try:
                return await self._client.create(item.payload, idempotency_key=item.idempotency_key)
            except CRMError as error:
                return error
