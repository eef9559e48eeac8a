"""Where this process runs its writing transactions.

SQLite has one writer. If the inbox writer, the normalizer, the dispatcher and the review API each
opened write transactions from their own threads, they would queue inside SQLite's busy handler,
which sleeps up to 100 ms between tries, and every acknowledgement would wait behind those sleeps.
So on SQLite all of them run on one thread, one after another, and none ever waits for a lock this
process holds. Jobs marked `urgent` (storing deliveries a channel is waiting on) go before the
background work queued at the time. PostgreSQL takes concurrent writers, so there each job gets a
thread of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from gateway.db import is_sqlite

T = TypeVar("T")

_URGENT, _BACKGROUND = 0, 1


class WriteQueue:
    def __init__(self, engine: Engine) -> None:
        self.serial = is_sqlite(engine)
        self._jobs: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()  # keeps jobs of one priority in arrival order
        self._thread: threading.Thread | None = None
        if self.serial:
            self._thread = threading.Thread(target=self._work, name="kanal-writer", daemon=True)
            self._thread.start()

    async def run(self, job: Callable[[], T], *, urgent: bool = False) -> T:
        """Run `job` (which opens and commits its own write session) and return its result."""
        if self._thread is None:
            return await asyncio.to_thread(job)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((_URGENT if urgent else _BACKGROUND, next(self._order), (job, future, loop)))
        return await future

    def shutdown(self) -> None:
        """Finish the queued jobs, then stop the writer thread."""
        if self._thread is not None:
            self._jobs.put((_BACKGROUND + 1, next(self._order), None))
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while True:
            _priority, _order, entry = self._jobs.get()
            if entry is None:
                return
            job, future, loop = entry
            try:
                result = job()
            except BaseException as exc:  # handed to the awaiting coroutine, which decides
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
