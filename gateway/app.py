"""The FastAPI application: routes, and the lifespan that migrates, starts and stops the workers."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from crm_client import api as outbox_api
from crm_client import status_webhook
from crm_client.notifications import NotificationSender
from crm_client.status_sync import StatusPoller
from gateway import migrate
from gateway.db import checkpoint_sqlite, is_sqlite
from gateway.plugins import close_adapters
from gateway.routes import channels, health, media, quarantine, status
from gateway.runtime import build_runtime
from gateway.scheduler import PullScheduler
from gateway.settings import KanalSettings
from gateway.workers import Workers
from review_queue import api as review_api
from review_queue import feed_api
from review_queue import web as admin_web

log = logging.getLogger(__name__)


#: How often the SQLite write-ahead log is folded into the database file.
CHECKPOINT_INTERVAL_SECONDS = 2.0


async def _checkpoint_forever(engine: Engine) -> None:
    while True:
        await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS)
        try:
            await asyncio.to_thread(checkpoint_sqlite, engine)
        except Exception:
            log.warning("sqlite: checkpoint failed; will try again", exc_info=True)


def create_app(settings: KanalSettings) -> FastAPI:
    """Build the app for `settings`. Configuration errors raise here, before anything listens."""
    runtime = build_runtime(settings)
    workers = Workers(runtime)
    runtime.writer.on_stored = workers.poke_normalizer
    pulls = PullScheduler(runtime)
    status_poller = StatusPoller(runtime.engine, settings)
    notifier = NotificationSender(
        runtime.engine, runtime.channels, settings.notifications, public_base_url=settings.public_base_url
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate.upgrade(runtime.engine)
        await runtime.writer.start()
        checkpointer = asyncio.create_task(_checkpoint_forever(runtime.engine)) if is_sqlite(runtime.engine) else None
        if settings.workers.enabled:
            await workers.start()
            # Pull channels are polled where the workers run; a web-only process (--no-workers) leaves them be.
            await pulls.start()
            await status_poller.start()
            await notifier.start()
        # Everything built so far lives as long as the process. Taking it out of the collector's view keeps
        # full collections short: measured, they otherwise stalled acknowledgements by over 100 ms (bench/).
        gc.freeze()

        log.info(
            "kanal: %d channel(s) ready: %s",
            len(runtime.channels),
            ", ".join(sorted(runtime.channels)) or "none",
        )
        try:
            yield
        finally:
            if checkpointer is not None:
                checkpointer.cancel()
            # Before the inbox writer: a poll under way still stores its messages, then saves its cursor.
            await notifier.stop()
            await status_poller.stop()
            await pulls.stop()
            await runtime.ingestor.after.drain()
            await runtime.writer.stop()
            await workers.stop()
            await close_adapters(runtime.channels)
            runtime.writes.shutdown()
            runtime.engine.dispose()

    app = FastAPI(
        title="Kanal",
        summary="Channel-integration gateway for city complaint systems",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.kanal = runtime
    app.state.workers = workers
    app.state.pull_scheduler = pulls
    app.state.status_poller = status_poller
    app.state.notifier = notifier
    app.add_middleware(channels.ChannelInbound, runtime=runtime)
    app.include_router(review_api.router)
    app.include_router(outbox_api.router)
    app.include_router(feed_api.router)
    app.include_router(health.router)
    app.include_router(quarantine.router)
    app.include_router(media.router)
    app.include_router(status.router)
    app.include_router(status_webhook.router)
    admin_web.install(app, settings)  # the admin pages under /admin (docs/admin.md)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is fine but echoes the input back; ours names the field and the fix only.
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    return app
