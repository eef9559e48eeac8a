"""Put parsed messages straight into the inbox and run the normalizer over them, as the worker does.

For tests of what the normalizer stores (duplicates, follow-ups, replays) without a web server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine, insert

from adapters.contract import InboundMessage
from gateway import normalize_worker
from gateway.db import write_connection
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.media import MediaLinks
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.pipeline import default_pipeline

MEDIA = MediaLinks(secret=b"test-media-secret", public_base_url="http://127.0.0.1:9/")


def put_message(
    engine: Engine, channel_id: str, message: InboundMessage, *, received_at: datetime, ticket: str | None = None
) -> str:
    """Store `message` as a new inbox row received at `received_at`; return the citizen's ticket code."""
    delivery_id, ticket = new_id(), ticket or new_ticket_code()
    with write_connection(engine) as connection:
        connection.execute(
            insert(RawDelivery),
            [
                {
                    "id": delivery_id,
                    "channel_id": channel_id,
                    "received_at": received_at,
                    "headers": {},
                    "body": json.dumps(message.model_dump(mode="json")).encode(),
                }
            ],
        )
        connection.execute(
            insert(InboundMessageRow),
            [
                {
                    "id": new_id(),
                    "channel_id": channel_id,
                    "external_id": message.external_id,
                    "ticket_code": ticket,
                    "delivery_id": delivery_id,
                    "received_at": received_at,
                    "message": message.model_dump(mode="json"),
                    "state": "new",
                    "delivery_count": 1,
                    "attempts": 0,
                }
            ],
        )
    return ticket


def normalize_pending(engine: Engine, *, channels: Mapping[str, ChannelConfig] | None = None, limit: int = 200) -> int:
    """Normalize every new inbox row in arrival order, in batches of `limit`; return reports made."""
    pipeline, made = default_pipeline(), 0
    while rows := normalize_worker.read_new(engine, limit=limit):
        outcomes = normalize_worker.run_pipeline(rows, pipeline, channels or {}, MEDIA)
        made += normalize_worker.store_batch(
            engine, outcomes, channels=channels or {}, crm=CRMConfig(), worker_id="test"
        )
    return made
