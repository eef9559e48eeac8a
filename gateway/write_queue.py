"""Where this process runs its writing transactions.

SQLite has one writer. If the inbox writer, the normalizer, the dispatcher and the review API each
opened write transactions from their own threads, they would queue inside SQLite's busy handler,
which sleeps up to 100 ms between tries, and every acknowledgement would wait behind those sleeps.
So on SQLite all of them run on one thread, one after another, and none ever waits for a lock this
process holds. PostgreSQL takes concurrent writers, so there each job gets a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine

from gateway.db import is_sqlite

T = TypeVar("T")


class WriteQueue:
    def __init__(self, engine: Engine) -> None:
        self.serial = is_sqlite(engine)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kanal-writer") if self.serial else None

    async def run(self, job: Callable[[], T]) -> T:
        """Run `job` (which opens and commits its own write session) and return its result."""
        if self._executor is None:
            return await asyncio.to_thread(job)
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
