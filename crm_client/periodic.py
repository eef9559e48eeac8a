"""A background loop that does one round, then waits for its interval or a poke: status sync, notifications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicLoop(ABC):
    """Subclasses name the loop and implement `run_once`; an error in a round is logged and the loop goes on."""

    name: str

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @abstractmethod
    async def run_once(self) -> int:
        """One round of work; returns how much was done."""

    def describe_error(self, exc: Exception) -> str | None:
        """A one-line warning for an expected failure (the other side is down), or None to log a traceback."""
        return None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a failed round must not end the loop: the next one may succeed
                warning = self.describe_error(exc)
                if warning is None:
                    log.exception("%s: round failed; retrying in %.0f s", self.name, self._interval)
                else:
                    log.warning("%s: %s; retrying in %.0f s", self.name, warning, self._interval)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)

    def poke(self) -> None:
        """Start the next round now rather than at the end of the interval."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"kanal-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
