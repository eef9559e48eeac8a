"""The scheduler for pull channels: one APScheduler interval job `pull:<channel id>` per pull channel.

A poll reads the channel's row in `channel_cursor`, asks the adapter for what is newer than its cursor,
stores the messages through the inbox writer (the path push deliveries take: a raw delivery holding the
fetched batch, one inbound message each, redeliveries recognised by (channel, external id)), and only
then saves the new cursor. A crash between the two commits leaves the old cursor, so the next poll
fetches the same window again and the inbox recognises it: a rescan, never a loss.

On PostgreSQL several processes may run the scheduler; a session-level advisory lock keyed on the
channel id, held on a dedicated connection for the whole poll, lets only one of them poll a channel at a
time. The others skip that round. On SQLite there is one process, and `max_instances=1` suffices.

Failures are counted in the channel's row with the time of the next attempt (exponential back-off with
jitter), so a restarted process keeps backing off instead of hammering a platform that is down.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import BaseModel, SecretStr
from sqlalchemy import Connection, Engine, text

from adapters.contract import RejectedItem
from adapters.errors import ChannelUnavailable
from gateway import cursors
from gateway.db import is_sqlite, utcnow, write_connection
from gateway.inbox_writer import Delivery, Quarantine, StorageUnavailable
from gateway.plugins import Channel
from gateway.runtime import Runtime
from gateway.write_queue import WriteQueue

log = logging.getLogger(__name__)

JOB_PREFIX = "pull:"
#: Each back-off wait is scaled by a random factor in this range, so processes and channels that failed
#: together do not all come back in the same instant.
BACKOFF_JITTER = (0.5, 1.0)
#: The interval job's own jitter, as a share of the interval.
INTERVAL_JITTER_SHARE = 0.1
#: How long stopping waits for polls under way before cancelling them.
STOP_GRACE_SECONDS = 10.0
#: Longest error text kept in the database and shown on /healthz.
MAX_ERROR_CHARS = 500
_SECRET_WORDS = ("secret", "key", "password", "token")


class PollOutcome(StrEnum):
    STORED = "stored"  # fetched and committed (possibly nothing new)
    FAILED = "failed"  # the fetch failed; the failure and the next attempt are recorded
    BACKING_OFF = "backing_off"  # skipped: an earlier failure set a later next_attempt_at
    LOCKED = "locked"  # skipped: another process is polling this channel
    NOT_STORED = "not_stored"  # fetched, but the database did not take it; the cursor stays put


def job_id(channel_id: str) -> str:
    return f"{JOB_PREFIX}{channel_id}"


def pull_channels(channels: dict[str, Channel]) -> dict[str, Channel]:
    """The enabled channels whose adapter pulls (disabled ones were never built)."""
    return {cid: ch for cid, ch in channels.items() if ch.adapter.pulls}


def advisory_lock_key(channel_id: str) -> int:
    """A signed 64-bit key for `pg_try_advisory_lock`, the same in every process for one channel."""
    digest = hashlib.blake2b(f"kanal-pull:{channel_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def backoff_seconds(failures: int, *, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Wait after `failures` failures in a row: base, 2 base, 4 base... at most `cap`, scaled by jitter."""
    low, high = BACKOFF_JITTER
    raw = min(cap, base * 2 ** min(max(failures - 1, 0), 30))
    return raw * (low + (high - low) * jitter())


def describe_error(exc: BaseException, secrets: list[str]) -> str:
    """A one-line account of a failed fetch for the log, the database and /healthz, secrets removed."""
    if isinstance(exc, ChannelUnavailable):
        message = f"{'' if exc.retryable else 'not retryable: '}{exc}"
    else:
        # An unexpected error's text may quote a URL or a request; keep it, but where it came from helps more.
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
        message = f"{type(exc).__name__}{where}: {exc}"
    for secret in secrets:
        message = message.replace(secret, "***")
    return " ".join(message.split())[:MAX_ERROR_CHARS]


def secret_values(settings: BaseModel) -> list[str]:
    """The adapter settings' secret values (SecretStr, or keys named like a secret), longest first."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif not (isinstance(value, str) and any(word in name.lower() for word in _SECRET_WORDS)):
            continue
        if value:
            found.append(value)
    return sorted(found, key=len, reverse=True)


class _Lease:
    """One poll's hold on a channel: on PostgreSQL the advisory lock and the connection that holds it.

    The lock is session-level, so it lives exactly as long as that connection: if the process dies the
    server drops both, and another process takes over at its next round. Writes go over the same
    connection on PostgreSQL, so a poll whose connection (and so its lock) was lost cannot save a cursor.
    """

    def __init__(self, engine: Engine, writes: WriteQueue, connection: Connection | None, key: int) -> None:
        self._engine = engine
        self._writes = writes
        self._connection = connection
        self._key = key
        # A cancelled poll leaves its thread running; this keeps the release from using the connection meanwhile.
        self._guard = threading.Lock()
        self._released = False
        self.state = cursors.ChannelCursor(channel_id="")

    @classmethod
    def acquire(cls, engine: Engine, writes: WriteQueue, channel_id: str) -> _Lease | None:
        """Take the channel (None when another process holds it) and read its state. Blocking."""
        if not is_sqlite(engine):
            key = advisory_lock_key(channel_id)
            connection = engine.connect()
            try:
                if not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
                    connection.rollback()
                    connection.close()
                    return None
                lease = cls(engine, writes, connection, key)
                # Read under the lock: the previous holder's cursor is committed by the time it let go.
                lease.state = cursors.read_state(connection, channel_id)
                connection.commit()
            except BaseException:
                connection.invalidate()  # closing the session is what drops a lock we may hold
                connection.close()
                raise
            return lease
        lease = cls(engine, writes, None, 0)
        with engine.connect() as connection:
            lease.state = cursors.read_state(connection, channel_id)
        return lease

    async def write(self, change: Callable[[Connection], None]) -> None:
        """Run `change` in one committed transaction, under the lease."""
        if self._connection is None:
            # SQLite: through this process's single writer, like every other write.
            await self._writes.run(lambda: self._write_sqlite(change))
        else:
            await asyncio.to_thread(self._write_locked, change)

    def _write_sqlite(self, change: Callable[[Connection], None]) -> None:
        with write_connection(self._engine) as connection:
            change(connection)

    def _write_locked(self, change: Callable[[Connection], None]) -> None:
        with self._guard:
            if self._released or self._connection is None:
                raise RuntimeError("the channel's lease was already released")
            with self._connection.begin():
                change(self._connection)

    def release(self) -> None:
        """Let go of the channel. Blocking; safe to call twice."""
        with self._guard:
            if self._released:
                return
            self._released = True
            connection = self._connection
            if connection is None:
                return
            try:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                connection.commit()
            except Exception:
                # Never hand a connection that may still hold the lock back to the pool.
                log.warning("pull: could not unlock cleanly; dropping the connection instead", exc_info=True)
                connection.invalidate()
            finally:
                connection.close()


class PullScheduler:
    """Polls this process's pull channels on an AsyncIOScheduler running on the app's event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._channels = pull_channels(runtime.channels)
        self._scheduler: AsyncIOScheduler | None = None
        self._in_flight: set[asyncio.Task[object]] = set()

    def job_ids(self) -> list[str]:
        """The scheduled jobs, `pull:<channel id>` each; empty before start and after stop."""
        if self._scheduler is None:
            return []
        return sorted(job.id for job in self._scheduler.get_jobs())

    async def start(self) -> None:
        # APScheduler logs each run at INFO: a line per poll per channel would bury everything else.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        now = datetime.now(UTC)
        for channel_id, channel in sorted(self._channels.items()):
            interval = channel.config.poll_interval_seconds
            scheduler.add_job(
                self._run_job,
                "interval",
                args=[channel_id],
                id=job_id(channel_id),
                name=job_id(channel_id),
                seconds=interval,
                jitter=interval * INTERVAL_JITTER_SHARE,
                # The first poll comes soon after start, not one whole interval later.
                next_run_time=now + timedelta(seconds=random.uniform(0, min(interval, 5.0))),
                max_instances=1,
                coalesce=True,
                # A round that fired late is still worth running; coalesce keeps it to one.
                misfire_grace_time=max(1, int(interval)),
            )
        scheduler.start()
        self._scheduler = scheduler
        if self._channels:
            log.info("pull scheduler: polling %s", ", ".join(sorted(self._channels)))

    async def stop(self) -> None:
        """Stop scheduling, let polls under way finish (briefly), then shut the scheduler down."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_SECONDS)
        # Cancels what is still running; a cancelled poll has not saved its cursor, so it is fetched again.
        scheduler.shutdown(wait=False)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run_job(self, channel_id: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self.poll(channel_id)
        except Exception:
            # Errors are already recorded per channel; anything reaching here is a database problem.
            log.exception("pull %s: poll failed; trying again next round", channel_id)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def poll(self, channel_id: str) -> PollOutcome:
        """One round for one channel. The scheduler calls it; tests may too."""
        rt = self._runtime
        channel = self._channels[channel_id]
        lease = await asyncio.to_thread(_Lease.acquire, rt.engine, rt.writes, channel_id)
        if lease is None:
            return PollOutcome.LOCKED
        try:
            state = lease.state
            now = utcnow()
            if state.next_attempt_at is not None and state.next_attempt_at > now:
                return PollOutcome.BACKING_OFF
            try:
                result = await channel.adapter.fetch(state.cursor)
            except Exception as exc:
                await self._record_failure(lease, channel, exc)
                return PollOutcome.FAILED
            if result.messages:
                delivery = Delivery(
                    channel_id=channel_id,
                    received_at=utcnow(),
                    content_type="application/json",
                    headers={},
                    # The fetched batch is the evidence for what was stored, as a push body is.
                    body=json.dumps(
                        [m.model_dump(mode="json", exclude_none=True) for m in result.messages], ensure_ascii=False
                    ).encode(),
                    messages=result.messages,
                )
                try:
                    # Commits the messages (group commit with push deliveries) and pokes the normalizer.
                    outcomes = await rt.writer.store(delivery)
                except StorageUnavailable:
                    log.warning(
                        "pull %s: %d message(s) not stored; fetching again next round", channel_id, len(result.messages)
                    )
                    return PollOutcome.NOT_STORED
                rt.ingestor.after.start(channel, None, result.messages, outcomes)
            if result.rejected and not await self._quarantine(channel_id, result.rejected):
                return PollOutcome.NOT_STORED
            # Only now, with the messages committed, may the cursor move past them.
            cursor, done_at = result.cursor, utcnow()
            await lease.write(lambda c: cursors.record_success(c, channel_id=channel_id, cursor=cursor, now=done_at))
            if state.consecutive_failures:
                log.info("pull %s: recovered after %d failed poll(s)", channel_id, state.consecutive_failures)
            return PollOutcome.STORED
        finally:
            await asyncio.shield(asyncio.to_thread(lease.release))

    async def _quarantine(self, channel_id: str, rejected: list[RejectedItem]) -> bool:
        """Keep the items the adapter could not use; False when they were not stored (the cursor stays)."""
        now = utcnow()
        for item in rejected:
            reason = f"{item.external_id}: {item.reason}" if item.external_id else item.reason
            try:
                await self._runtime.writer.quarantine(
                    Quarantine(
                        channel_id=channel_id,
                        received_at=now,
                        status_code=422,
                        reason=reason[:2000],
                        client_ip=None,
                        headers={"content-type": item.content_type} if item.content_type else {},
                        body=item.body,
                        body_size=len(item.body),
                    )
                )
            except StorageUnavailable:
                log.warning("pull %s: could not quarantine a rejected item; fetching again next round", channel_id)
                return False
        log.warning("pull %s: %d item(s) could not be used and were quarantined", channel_id, len(rejected))
        return True

    async def _record_failure(self, lease: _Lease, channel: Channel, exc: Exception) -> None:
        config = channel.config
        failures = lease.state.consecutive_failures + 1
        retryable = not isinstance(exc, ChannelUnavailable) or exc.retryable
        if retryable:
            delay = backoff_seconds(failures, base=config.poll_interval_seconds, cap=config.poll_backoff_cap_seconds)
            if isinstance(exc, ChannelUnavailable) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
        else:
            # Retrying will not help until someone fixes something, but a fix must not need a restart.
            delay = config.poll_backoff_cap_seconds
        error = describe_error(exc, secret_values(channel.adapter.settings))
        now = utcnow()
        next_attempt = now + timedelta(seconds=delay)
        log.warning(
            "pull %s: fetch failed (%d in a row); next attempt in %.1f s: %s", channel.id, failures, delay, error
        )
        await lease.write(
            lambda c: cursors.record_failure(
                c,
                channel_id=channel.id,
                error=error,
                retryable=retryable,
                failures=failures,
                next_attempt_at=next_attempt,
                now=now,
            )
        )
