"""The Kanal adapter kit: test a channel adapter against a real Kanal, from any package.

A channel owner describes how to sign a delivery (`ChannelProfile`) and subclasses `ContractSuite`;
pytest then runs the cases every adapter must pass. `Case`/`run_case` drive labelled fixtures through
the real route, and `run_fetch` runs a pull adapter's `fetch` once. Nothing here imports Kanal's tests.

Names are imported on first use: the pytest plugin lives in this package and is loaded into every
pytest run, which must not pay for starting Kanal's web stack unless a test uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kanal_testing.cases import Case, run_case
    from kanal_testing.fetch import build_adapter, run_fetch
    from kanal_testing.network import LoopbackOnly
    from kanal_testing.profile import ChannelProfile, Prepared
    from kanal_testing.pull_suite import PullChannelProfile, PullContractSuite
    from kanal_testing.server import KanalUnderTest, free_port, kanal_settings, wait_until
    from kanal_testing.signatures import hmac_sha256_base64, hmac_sha256_hex
    from kanal_testing.store import inbound_messages, inbox_count, quarantine_rows, raw_deliveries, reports
    from kanal_testing.suite import ContractSuite

_HOMES = {
    "Case": "cases",
    "run_case": "cases",
    "build_adapter": "fetch",
    "run_fetch": "fetch",
    "LoopbackOnly": "network",
    "ChannelProfile": "profile",
    "Prepared": "profile",
    "KanalUnderTest": "server",
    "free_port": "server",
    "kanal_settings": "server",
    "wait_until": "server",
    "hmac_sha256_base64": "signatures",
    "hmac_sha256_hex": "signatures",
    "inbound_messages": "store",
    "inbox_count": "store",
    "quarantine_rows": "store",
    "raw_deliveries": "store",
    "reports": "store",
    "ContractSuite": "suite",
    "PullChannelProfile": "pull_suite",
    "PullContractSuite": "pull_suite",
}

__all__ = [
    "Case",
    "ChannelProfile",
    "ContractSuite",
    "KanalUnderTest",
    "LoopbackOnly",
    "Prepared",
    "PullChannelProfile",
    "PullContractSuite",
    "build_adapter",
    "free_port",
    "hmac_sha256_base64",
    "hmac_sha256_hex",
    "inbound_messages",
    "inbox_count",
    "kanal_settings",
    "quarantine_rows",
    "raw_deliveries",
    "reports",
    "run_case",
    "run_fetch",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kanal_testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kanal_testing.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
