"""Run a pull adapter's `fetch` once, outside Kanal, against a peer the test started."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from collections.abc import Mapping
from typing import Any

from adapters.contract import Adapter, AdapterContext, FetchResult


def build_adapter(
    adapter_cls: type[Adapter[Any]],
    settings: Mapping[str, Any],
    *,
    channel_id: str = "x:test",
    public_base_url: str = "http://127.0.0.1:8080",
) -> Adapter[Any]:
    """An adapter instance as Kanal builds one: `settings` validated by its `settings_model`, a context."""
    validated = adapter_cls.settings_model.model_validate(dict(settings))
    context = AdapterContext(
        channel_id=channel_id,
        # Stable per channel id, as Kanal's derived secrets are per deployment and channel.
        instance_secret=hashlib.sha256(f"kanal-testing:{channel_id}".encode()).digest(),
        public_base_url=public_base_url,
    )
    return adapter_cls(settings=validated, context=context)


def run_fetch(
    adapter_cls: type[Adapter[Any]],
    settings: Mapping[str, Any],
    cursor: str | None = None,
    *,
    channel_id: str = "x:test",
) -> FetchResult:
    """Build the adapter and run its async `fetch(cursor)` once; return what it fetched.

    Raises `pydantic.ValidationError` for settings the adapter refuses, `TypeError` for an adapter that
    does not pull (with these settings: `pulls` is read from the instance), and whatever `fetch` raises
    (`ChannelUnavailable`, ...).
    """
    adapter = build_adapter(adapter_cls, settings, channel_id=channel_id)
    if not adapter.pulls:
        raise TypeError(
            f"{adapter_cls.__name__} does not pull with these settings: set `pulls = True` and implement `fetch`"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(adapter.fetch(cursor))
    # Called from async code (an asyncio test): the running loop cannot be blocked on, so use a thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, adapter.fetch(cursor)).result()
