"""`kanal worker`: the normalizer, the CRM dispatcher and the pull scheduler without a web server.

With PostgreSQL, web processes (`kanal run --no-workers`) can acknowledge deliveries while worker
processes do the rest; rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of each may run.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from crm_client.notifications import NotificationSender
from crm_client.status_sync import StatusPoller
from gateway import migrate
from gateway.plugins import close_adapters
from gateway.runtime import build_runtime
from gateway.scheduler import PullScheduler
from gateway.settings import KanalSettings
from gateway.workers import Workers

log = logging.getLogger(__name__)


async def run_workers(settings: KanalSettings) -> None:
    """Run until SIGINT or SIGTERM; claimed work is handed back on the way out."""
    runtime = build_runtime(settings)
    migrate.upgrade(runtime.engine)
    await runtime.writer.start()
    workers = Workers(runtime)
    runtime.writer.on_stored = workers.poke_normalizer  # pulled messages are normalized without waiting a poll
    await workers.start()
    pulls = PullScheduler(runtime)
    await pulls.start()
    # Several workers may poll the CRM's statuses at once: applying a change is idempotent, so the
    # only cost is a duplicate question, never a duplicate event.
    status_poller = StatusPoller(runtime.engine, settings)
    await status_poller.start()
    notifier = NotificationSender(
        runtime.engine, runtime.channels, settings.notifications, public_base_url=settings.public_base_url
    )
    await notifier.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("kanal worker %s: normalizer and dispatcher running; stop with Ctrl-C", runtime.worker_id)
    try:
        await stop.wait()
    finally:
        await notifier.stop()
        await status_poller.stop()
        await pulls.stop()  # before the inbox writer, which stores what a poll under way fetched
        await workers.stop()
        await runtime.writer.stop()
        await close_adapters(runtime.channels)
        runtime.writes.shutdown()
        runtime.engine.dispose()
        log.info("kanal worker %s: stopped", runtime.worker_id)
