"""One delivery on a push route: verify, parse, store durably, then answer. Never a 500 for bad input."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from pydantic import ValidationError

from adapters.contract import ALWAYS_SECRET_HEADERS, AdapterResponse, InboundMessage, RawRequest, StoredOutcome
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid, Throttled
from gateway import metrics
from gateway.inbox_writer import Delivery, InboxWriter, Quarantine, StorageUnavailable
from gateway.plugins import Channel

log = logging.getLogger(__name__)

#: An unauthenticated or oversized body is kept only this far: enough to see what it was, not a disk filler.
QUARANTINE_PREVIEW_BYTES = 4096
STORAGE_RETRY_AFTER_SECONDS = 5
#: A bot's follow-up work (the next question, a ticket number) gets this long before it is abandoned.
AFTER_DELIVERY_TIMEOUT_SECONDS = 30.0


class AfterDelivery:
    """Runs adapters' `after_delivery` in the background, so the platform's answer never waits for it.

    What it does is best effort (nothing stored depends on it); failures are logged, never raised.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        channel: Channel,
        request: RawRequest | None,
        messages: list[InboundMessage],
        outcomes: list[StoredOutcome],
    ) -> None:
        task = asyncio.create_task(self._run(channel, request, messages, outcomes), name=f"after-delivery:{channel.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        channel: Channel,
        request: RawRequest | None,
        messages: list[InboundMessage],
        outcomes: list[StoredOutcome],
    ) -> None:
        try:
            await asyncio.wait_for(
                channel.adapter.after_delivery(request, messages, outcomes), AFTER_DELIVERY_TIMEOUT_SECONDS
            )
        except Exception:
            log.exception("channel %s: after_delivery failed (the delivery itself is stored)", channel.id)

    async def drain(self, timeout: float = 5.0) -> None:
        """Let work under way finish (briefly) before the process stops."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


class Ingestor:
    """Runs the adapter contract for push deliveries and keeps the outcome counters."""

    def __init__(self, writer: InboxWriter, counters: metrics.Counters, after: AfterDelivery | None = None) -> None:
        self._writer = writer
        self._counters = counters
        self.after = after or AfterDelivery()

    async def deliver(self, channel: Channel, request: RawRequest) -> AdapterResponse:
        adapter = channel.adapter
        try:
            adapter.verify(request)
        except SignatureInvalid as exc:
            await self._quarantine(channel, request, exc.status_code, exc.message, preview_only=True)
            return self._count(channel, "rejected", adapter.reject(request, exc.status_code, exc.message))
        except Throttled as exc:
            response = adapter.reject(request, 429, exc.message)
            throttled = replace(response, headers={**response.headers, "Retry-After": str(exc.retry_after)})
            return self._count(channel, "throttled", throttled)
        except Exception:
            # An adapter bug while checking a stranger's request is still the stranger's 4xx, not our 500.
            log.exception("channel %s: adapter %s failed to verify a delivery", channel.id, channel.config.type)
            reason = "the delivery could not be verified; it is kept for inspection"
            await self._quarantine(channel, request, 400, reason, preview_only=True)
            return self._count(channel, "rejected", adapter.reject(request, 400, reason))

        try:
            messages = adapter.parse(request)
        except PayloadIgnored as exc:
            self.after.start(channel, request, [], [])
            return self._count(channel, "ignored", adapter.ignored(request, exc.reason))
        except PayloadRejected as exc:
            await self._quarantine(channel, request, exc.status_code, exc.message)
            return self._count(channel, "rejected", adapter.reject(request, exc.status_code, exc.message))
        except ValidationError as exc:
            message = f"payload does not fit the channel's format: {exc.error_count()} problem(s)"
            await self._quarantine(channel, request, 422, f"{message}: {exc}")
            return self._count(channel, "rejected", adapter.reject(request, 422, message))
        except Exception:
            # A parser bug must not turn a stranger's payload into a 500 or lose it: keep it, say so.
            log.exception("channel %s: adapter %s failed to parse a delivery", channel.id, channel.config.type)
            reason = "the adapter could not parse this payload; it is kept for inspection"
            await self._quarantine(channel, request, 400, reason)
            return self._count(channel, "rejected", adapter.reject(request, 400, reason))

        if not messages:
            return self._count(channel, "ignored", adapter.ignored(request, "no messages in delivery"))

        delivery = Delivery(
            channel_id=channel.id,
            received_at=request.received_at,
            content_type=request.header("content-type"),
            headers=stored_headers(request, adapter.secret_headers),
            body=request.body,
            messages=messages,
        )
        try:
            outcomes = await self._writer.store(delivery)
        except StorageUnavailable as exc:
            unavailable = replace(
                AdapterResponse.json({"detail": f"not stored: {exc}; deliver again in a few seconds"}, 503),
                headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
            )
            return self._count(channel, "unavailable", unavailable)
        for outcome in outcomes:
            self._counters.inc(
                metrics.INBOUND, channel=channel.id, outcome="duplicate" if outcome.duplicate else "accepted"
            )
        self.after.start(channel, request, messages, outcomes)
        return adapter.acknowledge(request, outcomes)

    async def reject_oversized(self, channel: Channel, request: RawRequest, size: int) -> AdapterResponse:
        limit = channel.adapter.max_body_bytes
        message = f"body too large: {size} bytes or more, limit {limit}; send smaller deliveries"
        await self._quarantine(channel, request, 413, message, preview_only=True, size=size)
        return self._count(channel, "rejected", channel.adapter.reject(request, 413, message))

    async def _quarantine(
        self,
        channel: Channel,
        request: RawRequest,
        status_code: int,
        reason: str,
        *,
        preview_only: bool = False,
        size: int | None = None,
    ) -> None:
        body = request.body[:QUARANTINE_PREVIEW_BYTES] if preview_only else request.body
        item = Quarantine(
            channel_id=channel.id,
            received_at=request.received_at,
            status_code=status_code,
            reason=reason[:2000],
            client_ip=request.client_ip,
            headers=stored_headers(request, channel.adapter.secret_headers),
            body=body,
            body_size=size if size is not None else len(request.body),
        )
        try:
            await self._writer.quarantine(item)
        except StorageUnavailable:
            log.warning("channel %s: could not quarantine a rejected delivery (storage unavailable)", channel.id)

    def _count(self, channel: Channel, outcome: str, response: AdapterResponse) -> AdapterResponse:
        self._counters.inc(metrics.INBOUND, channel=channel.id, outcome=outcome)
        return response


def stored_headers(request: RawRequest, secret_headers: frozenset[str]) -> dict[str, str]:
    """The request's headers minus the ones that carry credentials."""
    dropped = ALWAYS_SECRET_HEADERS | secret_headers
    return {name: value for name, value in request.headers.items() if name not in dropped}
