"""Sends due outbox items to the CRM (Open311 or signed JSON push) and records each answer."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import Engine

from crm_client import outbox, pause
from crm_client.attempts import Attempt
from crm_client.errors import CRMError
from crm_client.json_push import JsonPushClient
from crm_client.open311 import Created, Open311Client, ServiceCatalog
from crm_client.tables import OutboxState, Sink
from gateway import metrics
from gateway.db import utcnow
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
        client: Open311Client | None,
        crm: CRMConfig,
        counters: metrics.Counters,
        *,
        batch: int,
        lease_seconds: float,
        push_client: JsonPushClient | None = None,
    ) -> None:
        self._engine = engine
        self._writes = writes
        self._client = client
        # `kanal run` builds the Open311 client; the push client is ours to build when the CRM wants pushes.
        self._push = push_client or (JsonPushClient(crm) if crm.kind == Sink.JSON_PUSH else None)
        self._started = False
        self._catalog = ServiceCatalog(client, crm) if client is not None else None
        self._crm = crm
        self._counters = counters
        self._batch = batch
        self._lease = lease_seconds
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[str] = set()
        self._pause_logged = False
        self._warned: set[str] = set()

    @property
    def catalog_warnings(self) -> list[str]:
        """Configuration naming services the CRM does not offer (empty until services.json was read)."""
        return list(self._catalog.warnings) if self._catalog is not None else []

    def resume_if_credentials_changed(self) -> None:
        """At start-up: lift a credentials pause when the configuration now holds other credentials."""
        if pause.resume_if_credentials_changed(self._engine, self._crm):
            log.warning("crm: credentials changed since the CRM refused them; sending resumes")

    async def run_once(self, *, limit: int | None = None) -> int:
        """Send what is due now (at most `limit`, default the configured batch) and record the answers;
        return how many items were attempted."""
        if not self._started:
            await self._start()
        held = await asyncio.to_thread(pause.current, self._engine)
        if held is not None:
            if not self._pause_logged:
                log.error("crm: sending paused since %s: %s", held.paused_at.isoformat(timespec="seconds"), held.reason)
                self._pause_logged = True
            return 0
        self._pause_logged = False
        batch = min(limit or self._batch, self._batch)
        claimed = await self._writes.run(lambda: outbox.claim_due(self._engine, limit=batch, lease_seconds=self._lease))
        if not claimed:
            return 0
        self._in_flight.update(item.id for item in claimed)
        await self._refresh_catalog(claimed)
        attempts = await asyncio.gather(*(self._attempt(item) for item in claimed))
        answered = list(zip(claimed, attempts, strict=True))
        states = await self._writes.run(lambda: outbox.record_outcomes(self._engine, answered, self._crm))
        self._in_flight.clear()
        for item, attempt, state in zip(claimed, attempts, states, strict=True):
            outcome = attempt.outcome
            if state == OutboxState.SENT or (state == OutboxState.RESOLVING and item.state == OutboxState.PENDING):
                result = "sent"
            else:
                result = "dead" if state == OutboxState.DEAD else "retry"
            self._counters.inc(metrics.CRM_SENDS, result=result)
            if isinstance(outcome, CRMError) and outcome.kind != "deferred":
                level = logging.WARNING if result == "retry" and outcome.kind != "auth" else logging.ERROR
                log.log(
                    level, "outbox %s: attempt %d failed (%s): %s", item.id, item.attempts + 1, result, outcome.message
                )
        return len(claimed)

    def release_in_flight(self) -> None:
        """After the loop is cancelled: hand back what was claimed but not recorded, for the next process."""
        outbox.release(self._engine, sorted(self._in_flight))
        self._in_flight.clear()

    async def _start(self) -> None:
        """First round: lift a pause the configuration has since fixed, and check the service map at once
        rather than when the first report of a badly mapped category comes along."""
        self._started = True
        await asyncio.to_thread(self.resume_if_credentials_changed)
        if self._catalog is not None and self._crm.kind == Sink.OPEN311:
            try:
                await self._catalog.refresh_if_stale()
            except CRMError as error:
                log.warning("crm: could not read the service catalogue: %s", error.message)
            for warning in self._catalog.warnings:
                self._warned.add(warning)
                log.warning("crm: %s", warning)

    async def aclose(self) -> None:
        if self._push is not None:
            await self._push.aclose()

    async def _refresh_catalog(self, claimed: list[outbox.Claimed]) -> None:
        if self._catalog is None or not any(c.sink == Sink.OPEN311 and c.state == OutboxState.PENDING for c in claimed):
            return
        try:
            await self._catalog.refresh_if_stale()
        except CRMError as error:
            # The sends below will meet the same trouble and be retried; the catalogue is read again then.
            log.warning("crm: could not read the service catalogue: %s", error.message)
            return
        for warning in self._catalog.warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning("crm: %s", warning)

    async def _attempt(self, item: outbox.Claimed) -> Attempt:
        at, started = utcnow(), time.perf_counter()
        operation = "create"
        async with self._slots:
            try:
                outcome: Created | CRMError
                if item.state == OutboxState.RESOLVING and item.crm_token:
                    operation = "resolve_token"
                    outcome = await self._open311().resolve_token(item.crm_token)
                elif item.sink == Sink.JSON_PUSH:
                    operation = "push"
                    outcome = await self._json_push().push(item.payload, idempotency_key=item.idempotency_key)
                else:
                    fields = {k: str(v) for k, v in item.payload.items()}
                    if self._catalog is not None and self._catalog.ready:
                        self._catalog.check(fields)
                    outcome = await self._open311().create(fields, idempotency_key=item.idempotency_key)
            except CRMError as error:
                outcome = error
        return Attempt(at, operation, outcome, int((time.perf_counter() - started) * 1000))

    def _open311(self) -> Open311Client:
        if self._client is None:
            raise CRMError(
                "this item was built for an Open311 CRM but crm.kind is json_push; "
                "`kanal outbox retry` builds it again for the configured CRM",
                retryable=False,
                kind="config",
            )
        return self._client

    def _json_push(self) -> JsonPushClient:
        if self._push is None:
            raise CRMError(
                "this item was built for a JSON push CRM but crm.kind is open311; "
                "`kanal outbox retry` builds it again for the configured CRM",
                retryable=False,
                kind="config",
            )
        return self._push
