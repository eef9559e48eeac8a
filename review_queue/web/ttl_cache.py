"""A small per-app cache of recently read figures (the dashboard's, the queue's filter counts).

Only a speed-up: each process reads the database itself, and an entry is at most `ttl` seconds old.
One cache per app (kept on `app.state`), so two gateways in one process (the tests) never share one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from fastapi import Request

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Values by key, each kept `ttl` seconds, at most `size` of them; thread-safe."""

    def __init__(self, ttl: float, size: int = 64) -> None:
        self.ttl, self.size = ttl, size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, key: Hashable, read: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = read()  # outside the lock: two readers of one key may both read, once
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[key] = (now + self.ttl, value)
        return value


def app_cache(request: Request, name: str, ttl: float) -> TTLCache[V]:
    """The app's cache called `name` (made on first use with `ttl`)."""
    state = request.app.state
    with _CREATE_LOCK:
        cache: TTLCache[V] | None = getattr(state, name, None)
        if cache is None:
            cache = TTLCache(ttl)
            setattr(state, name, cache)
    return cache


_CREATE_LOCK = threading.Lock()
