"""Log lines for operators: one line each, with time, level and source; never payloads or secrets."""

from __future__ import annotations

import logging


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    # httpx logs every request URL at INFO; URLs may carry tokens on some platforms.
    logging.getLogger("httpx").setLevel(logging.WARNING)
