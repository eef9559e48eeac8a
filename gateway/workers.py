"""The background loops of `kanal run`: the normalizer, the CRM dispatcher and the SLA sweeper.

Each loop works while there is work and otherwise sleeps until poked or until the poll interval
passes; the poll matters on PostgreSQL, where another process may have stored the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from crm_client.dispatcher import Dispatcher
from crm_client.notifications import Receipts
from crm_client.open311 import Open311Client
from gateway import metrics
from gateway import normalize_worker as normalizing
from gateway.db import utcnow
from gateway.media_fetch import MediaFetcher
from gateway.runtime import Runtime
from review_queue import sla

log = logging.getLogger(__name__)

#: After an unexpected error a loop pauses this long, so a broken database is not hammered.
ERROR_PAUSE_SECONDS = 2.0
#: Channels waiting for an acknowledgement come first: while deliveries stream in, a background round
#: waits for a pause this long in them, but never longer than MAX_DEFER_SECONDS, so it cannot starve.
QUIET_SECONDS = 0.25
MAX_DEFER_SECONDS = 1.0
#: A round that goes ahead while deliveries are still streaming in takes only this many items, so
#: the acknowledgements queued behind it wait milliseconds, not the length of a full batch.
BUSY_ROUND_ITEMS = 16
#: The SLA sweeper re-reads every changed report this often (and at start), besides the recent ones
#: it reads each round: a report changed by a process whose clock or commit lagged is never missed.
SLA_FULL_PASS_SECONDS = 3600.0


class Workers:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._inbox_event = asyncio.Event()
        self._outbox_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Open311Client | None = None
        self._dispatcher: Dispatcher | None = None
        self._media: MediaFetcher | None = None

    def poke_normalizer(self) -> None:
        """Called after each inbox commit, from the event loop, so new messages are taken at once."""
        self._inbox_event.set()

    def poke_dispatcher(self) -> None:
        """Called after an approval commits, so the report leaves for the CRM without waiting a poll."""
        self._outbox_event.set()

    async def start(self) -> None:
        rt = self._runtime
        cfg = rt.settings.workers
        self._client = Open311Client(rt.settings.crm)
        self._dispatcher = dispatcher = Dispatcher(
            rt.engine,
            rt.writes,
            self._client,
            rt.settings.crm,
            rt.counters,
            batch=cfg.dispatch_batch,
            lease_seconds=cfg.lease_seconds,
        )
        self._tasks = [
            asyncio.create_task(
                self._loop("normalizer", self._normalize_once, self._inbox_event), name="kanal-normalizer"
            ),
            asyncio.create_task(
                self._loop("dispatcher", dispatcher.run_once, self._outbox_event), name="kanal-dispatcher"
            ),
        ]
        if rt.settings.sla.enabled:
            self._tasks.append(asyncio.create_task(self._sla_loop(), name="kanal-sla"))
        if rt.settings.media.enabled:
            self._media = MediaFetcher(rt.engine, rt.writes, rt.channels, rt.settings.media, rt.counters)
            await self._media.start()

    async def stop(self) -> None:
        if self._media is not None:
            await self._media.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._dispatcher is not None:
            await self._runtime.writes.run(self._dispatcher.release_in_flight)
        if self._client is not None:
            await self._client.aclose()

    async def _normalize_once(self, *, limit: int | None = None) -> int:
        rt = self._runtime
        channels = {cid: ch.config for cid, ch in rt.channels.items()}
        crm, worker_id = rt.settings.crm, rt.worker_id
        receipts = Receipts(rt.settings.notifications, rt.settings.public_base_url)
        limit = min(limit or rt.settings.workers.normalize_batch, rt.settings.workers.normalize_batch)
        # Conversations and multipart messages whose last part is in become one message first.
        groups = await asyncio.to_thread(normalizing.finished_groups, rt.engine, utcnow())
        if groups and rt.writes.serial:
            await rt.writes.run(lambda: normalizing.assemble(rt.engine, groups))
        elif groups:
            await asyncio.to_thread(normalizing.assemble, rt.engine, groups)
        if not rt.writes.serial:
            taken = await asyncio.to_thread(
                normalizing.claim_normalize_store,
                rt.engine,
                rt.pipeline,
                channels=channels,
                media=rt.media,
                crm=crm,
                worker_id=worker_id,
                limit=limit,
                receipts=receipts,
            )
        else:
            # SQLite: read and run the pipeline outside the single writer; only the inserts take it.
            rows = await asyncio.to_thread(normalizing.read_new, rt.engine, limit=limit)
            if not rows:
                return 0
            outcomes = await asyncio.to_thread(normalizing.run_pipeline, rows, rt.pipeline, channels, rt.media)
            try:
                await rt.writes.run(
                    lambda: normalizing.store_batch(
                        rt.engine, outcomes, channels=channels, crm=crm, worker_id=worker_id, receipts=receipts
                    )
                )
            except Exception:
                log.exception("normalizer: storing a batch of %d failed; storing one by one", len(outcomes))
                await rt.writes.run(
                    lambda: normalizing.store_each(
                        rt.engine, outcomes, channels=channels, crm=crm, worker_id=worker_id, receipts=receipts
                    )
                )
            taken = len(rows)
        if taken:
            rt.counters.inc(metrics.NORMALIZED, taken)
        return taken

    async def sla_round(self, *, now: datetime, since: datetime | None) -> sla.SweepResult:
        """One sweep, a batch per writing transaction so SQLite's single writer is never held long."""
        rt = self._runtime
        channels = {cid: ch.config for cid, ch in rt.channels.items()}
        total = sla.SweepResult()
        while True:
            result = await rt.writes.run(
                lambda: sla.sweep_batch(rt.engine, rt.settings.sla, channels=channels, now=now, since=since)
            )
            total.checked += result.checked
            total.newly_overdue += result.newly_overdue
            total.notifications += result.notifications
            if result.checked < rt.settings.sla.sweep_batch:
                return total

    async def _sla_loop(self) -> None:
        interval = self._runtime.settings.sla.sweep_interval_seconds
        last_round: datetime | None = None
        last_full = float("-inf")
        while True:
            started, now = time.monotonic(), utcnow()
            full = last_round is None or started - last_full >= SLA_FULL_PASS_SECONDS
            try:
                since = None if full or last_round is None else last_round - sla.CHANGE_MARGIN
                result = await self.sla_round(now=now, since=since)
                if result.newly_overdue:
                    log.info("sla: %d report(s) newly overdue", result.newly_overdue)
                last_round = now
                if full:
                    last_full = started
                self._runtime.beat("sla")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sla: sweep failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def _yield_to_ingest(self) -> bool:
        """Wait for a pause in incoming deliveries; return True if there was none (a small round is due)."""
        deadline = time.monotonic() + MAX_DEFER_SECONDS
        while self._runtime.writer.busy_within(QUIET_SECONDS):
            if time.monotonic() >= deadline:
                return True
            await asyncio.sleep(QUIET_SECONDS)
        return False

    async def _loop(self, name: str, round_: Callable[..., Awaitable[int]], wake: asyncio.Event) -> None:
        interval = self._runtime.settings.workers.poll_interval_seconds
        while True:
            try:
                wake.clear()
                busy = await self._yield_to_ingest()
                done = await round_(limit=BUSY_ROUND_ITEMS if busy else None)
                self._runtime.beat(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: round failed; pausing %.0f s", name, ERROR_PAUSE_SECONDS)
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if done:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)
