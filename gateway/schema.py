"""Every table Kanal owns, gathered on one metadata for Alembic and for tests."""

from __future__ import annotations

from sqlmodel import SQLModel

import crm_client.notifications
import crm_client.tables
import gateway.cursors
import gateway.inbox
import gateway.media_fetch
import review_queue.audit
import review_queue.feed
import review_queue.tables

metadata = SQLModel.metadata

__all__ = ["metadata", "gateway", "review_queue", "crm_client"]
