"""In-process counters for `/metrics` (Prometheus text format); gauges are read from the database."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable


class Counters:
    """Thread-safe labelled counters. Each process counts its own; Prometheus sums across processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._help: dict[str, str] = {}

    def describe(self, name: str, help_text: str) -> None:
        self._help[name] = help_text

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] += amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> Iterable[str]:
        with self._lock:
            items = sorted(self._values.items())
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                seen.add(name)
                yield f"# HELP {name} {self._help.get(name, name)}"
                yield f"# TYPE {name} counter"
            yield f"{name}{format_labels(dict(labels))} {value:g}"


def format_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


INBOUND = "kanal_inbound_deliveries_total"
CRM_SENDS = "kanal_crm_sends_total"
NORMALIZED = "kanal_messages_normalized_total"


def new_counters() -> Counters:
    counters = Counters()
    counters.describe(
        INBOUND,
        "Deliveries on push routes by channel and outcome "
        "(accepted, duplicate, ignored, rejected, throttled, unavailable).",
    )
    counters.describe(CRM_SENDS, "Attempts to send a report to the CRM by result (sent, retry, dead).")
    counters.describe(NORMALIZED, "Inbound messages turned into reports.")
    return counters
