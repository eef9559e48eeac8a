"""Kanal itself, for adapter tests: the real app served by uvicorn in a thread, and minimal settings for it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import uvicorn

from gateway.app import create_app
from gateway.runtime import Runtime
from gateway.settings import KanalSettings

#: The deployment secret of a Kanal under test; the contract suite checks it never reaches logs.
TEST_SECRET_KEY = "kanal-testing-secret-key-0123456789abcdef"  # noqa: S105 (a test deployment's key)
TEST_CRM_API_KEY = "kanal-testing-crm-key"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy and return that; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def kanal_settings(database_url: str, channels: Mapping[str, Mapping[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A minimal valid settings dict: `channels` on `database_url`, fast workers, a CRM nobody answers.

    The CRM is an unused loopback port: adapter tests stop before anything is forwarded, and a report
    that is forwarded by mistake fails quietly on this machine instead of reaching a real CRM.
    `overrides` are merged key by key into the result (`workers={"enabled": False}` keeps the rest).
    """
    settings: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "log_level": "INFO",
        "channels": {key: dict(value) for key, value in channels.items()},
        "crm": {
            "base_url": f"http://127.0.0.1:{free_port()}/",
            "api_key": TEST_CRM_API_KEY,
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "timeout_seconds": 5,
        },
        "workers": {"poll_interval_seconds": 0.05},
    }
    return _merge(settings, overrides)


class KanalUnderTest:
    """The real app served by uvicorn in a background thread; use as a context manager.

    `url` answers once `__enter__` returns; `public_base_url` is set to it, as a deployment would
    configure it. `runtime` gives the engine and counters for assertions.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = KanalSettings.model_validate({**settings, "public_base_url": self.url})
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="kanal-test-gateway", daemon=True)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.kanal
        return runtime

    def __enter__(self) -> KanalUnderTest:
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=20, what="gateway start")
        if not self._server.started:
            raise RuntimeError("the gateway failed to start; see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
