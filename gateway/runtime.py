"""Everything one Kanal process holds while it runs, built from settings; kept on `app.state.kanal`."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field

import pluggy
from sqlalchemy import Engine

from gateway import metrics
from gateway.db import make_engine
from gateway.inbox_writer import InboxWriter
from gateway.ingest import Ingestor
from gateway.media import MediaLinks
from gateway.plugins import Channel, build_channels, derive_secret, get_plugin_manager
from gateway.settings import ConfigError, KanalSettings
from gateway.ticket_lookup import make_ticket_lookup
from gateway.write_queue import WriteQueue
from normalizer.pipeline import Pipeline, default_pipeline
from normalizer.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: KanalSettings
    engine: Engine
    #: Every write transaction of this process goes through here (one thread on SQLite).
    writes: WriteQueue
    plugins: pluggy.PluginManager
    channels: dict[str, Channel]
    counters: metrics.Counters
    writer: InboxWriter
    ingestor: Ingestor
    pipeline: Pipeline
    #: Categories and agencies: what admins may choose from when they correct the routing.
    taxonomy: Taxonomy
    worker_id: str
    media: MediaLinks
    #: Loop name -> monotonic time of its last completed round, for /healthz.
    heartbeats: dict[str, float] = field(default_factory=dict)

    def beat(self, loop: str) -> None:
        self.heartbeats[loop] = time.monotonic()


def build_runtime(settings: KanalSettings) -> Runtime:
    """Check the configuration and build the pieces; nothing starts running yet."""
    if not settings.secret_key.get_secret_value():
        raise ConfigError(
            "secret_key: not set; set KANAL_SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    plugins = get_plugin_manager(disabled=settings.adapters.disabled)
    engine = make_engine(settings.database_url)
    channels = build_channels(
        settings, plugins, lookup_ticket=make_ticket_lookup(engine, settings.public_base_url)
    )
    counters = metrics.new_counters()
    writes = WriteQueue(engine)
    writer = InboxWriter(engine, writes, max_batch=settings.ingest.max_batch)
    return Runtime(
        settings=settings,
        engine=engine,
        writes=writes,
        plugins=plugins,
        channels=channels,
        counters=counters,
        writer=writer,
        ingestor=Ingestor(writer, counters),
        pipeline=default_pipeline(settings.taxonomy),
        taxonomy=settings.taxonomy or load_taxonomy(),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        media=MediaLinks(secret=derive_secret(settings, "media"), public_base_url=settings.public_base_url),
    )
