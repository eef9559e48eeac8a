"""Sends due outbox items to the CRM and records each answer."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from crm_client import outbox
from crm_client.errors import CRMError
from crm_client.open311 import Open311Client
from gateway import metrics
from gateway.settings import CRMConfig

log = logging.getLogger(__name__)

#: Requests in flight to the CRM at once, per process; enough to hide latency, gentle on the CRM.
MAX_IN_FLIGHT = 8


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        client: Open311Client,
        crm: CRMConfig,
        counters: metrics.Counters,
        *,
        batch: int,
        lease_seconds: float,
    ) -> None:
        self._engine = engine
        self._client = client
        self._crm = crm
        self._counters = counters
        self._batch = batch
        self._lease = lease_seconds
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[str] = set()

    async def run_once(self) -> int:
        """Send what is due now; return how many items were attempted."""
        claimed = await asyncio.to_thread(
            outbox.claim_due, self._engine, limit=self._batch, lease_seconds=self._lease
        )
        self._in_flight.update(item.id for item in claimed)
        await asyncio.gather(*(self._send(item) for item in claimed))
        return len(claimed)

    def release_in_flight(self) -> None:
        """After the loop is cancelled: hand back what was claimed but not finished, for the next process."""
        outbox.release(self._engine, sorted(self._in_flight))
        self._in_flight.clear()

    async def _send(self, item: outbox.Claimed) -> None:
        async with self._slots:
            await self._attempt(item)
        self._in_flight.discard(item.id)

    async def _attempt(self, item: outbox.Claimed) -> None:
        try:
            created = await self._client.create(item.payload, idempotency_key=item.idempotency_key)
        except CRMError as error:
            state = await asyncio.to_thread(outbox.record_failure, self._engine, item, error, self._crm)
            result = "retry" if state == "pending" else "dead"
            self._counters.inc(metrics.CRM_SENDS, result=result)
            level = logging.WARNING if result == "retry" else logging.ERROR
            log.log(
                level,
                "outbox %s: attempt %d failed (%s): %s",
                item.id,
                item.attempts + 1,
                result,
                error.message,
            )
            return
        await asyncio.to_thread(outbox.record_sent, self._engine, item, created)
        self._counters.inc(metrics.CRM_SENDS, result="sent")
