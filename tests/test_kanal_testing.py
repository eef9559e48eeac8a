"""The adapter kit itself (`kanal_testing`): what a channel owner relies on beyond the contract suite."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from pydantic import Field, ValidationError

from adapters.contract import Adapter, ChannelSettings, FetchResult, InboundMessage, RawRequest
from adapters.errors import ChannelUnavailable
from kanal_testing import (
    ChannelProfile,
    LoopbackOnly,
    Prepared,
    hmac_sha256_base64,
    hmac_sha256_hex,
    kanal_settings,
    run_fetch,
)
from kanal_testing.server import KanalUnderTest

REPO_ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------- run_fetch


class FeedSettings(ChannelSettings):
    base_url: str
    page_size: int = Field(default=2, ge=1)


class FeedAdapter(Adapter[FeedSettings]):
    """A pull channel reading a JSON feed `GET /items?after=<cursor>`."""

    channel_type: ClassVar[str] = "feed"
    settings_model = FeedSettings
    pulls = True

    def verify(self, request: RawRequest) -> None:
        return None

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        return []

    async def fetch(self, cursor: str | None) -> FetchResult:
        params = {"after": cursor or "", "limit": str(self.settings.page_size)}
        async with httpx.AsyncClient(base_url=self.settings.base_url) as client:
            response = await client.get("/items", params=params)
        if response.status_code != 200:
            raise ChannelUnavailable(f"feed answered {response.status_code}")
        items = response.json()
        messages = [InboundMessage(external_id=i["id"], text=i["text"]) for i in items]
        return FetchResult(messages=messages, cursor=items[-1]["id"] if items else cursor)


class NotAPuller(FeedAdapter):
    pulls = False


ITEMS = [{"id": f"{n:03d}", "text": f"Lampu jalan mati nomor {n}"} for n in range(1, 6)]


class _Feed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path.startswith("/broken"):
            self.send_response(503)
            self.end_headers()
            return
        query = dict(part.split("=", 1) for part in self.path.split("?", 1)[1].split("&"))
        page = [i for i in ITEMS if i["id"] > query["after"]][: int(query["limit"])]
        body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_run_fetch_pages_through_a_local_peer_with_the_cursor(feed: str) -> None:
    first = run_fetch(FeedAdapter, {"base_url": feed})
    assert [m.external_id for m in first.messages] == ["001", "002"] and first.cursor == "002"
    second = run_fetch(FeedAdapter, {"base_url": feed, "page_size": 10}, first.cursor, channel_id="feed:city")
    assert [m.external_id for m in second.messages] == ["003", "004", "005"] and second.cursor == "005"


def test_run_fetch_works_from_async_tests_too(feed: str) -> None:
    async def inside_a_loop() -> FetchResult:
        return run_fetch(FeedAdapter, {"base_url": feed})

    assert len(asyncio.run(inside_a_loop()).messages) == 2


def test_run_fetch_validates_settings_and_passes_platform_errors_on(feed: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        run_fetch(FeedAdapter, {"page_size": 2})
    with pytest.raises(ValidationError, match="Extra inputs"):
        run_fetch(FeedAdapter, {"base_url": feed, "pagesize": 2})
    with pytest.raises(ChannelUnavailable, match="503"):
        run_fetch(FeedAdapter, {"base_url": feed + "/broken"})


def test_run_fetch_refuses_an_adapter_that_does_not_pull() -> None:
    with pytest.raises(TypeError, match="pulls = True"):
        run_fetch(NotAPuller, {"base_url": "http://127.0.0.1:1"})


# ------------------------------------------------------------------------------- profiles and signing


def test_signing_helpers_match_published_examples() -> None:
    # RFC 4231 test case 2.
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac_sha256_hex("Jefe", b"what do ya want for nothing?") == digest
    assert (
        hmac_sha256_base64(b"Jefe", b"what do ya want for nothing?") == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    )


class _Profile(ChannelProfile):
    channel_type = "feed"
    channel_id = "feed:test"
    channel_settings: ClassVar[dict[str, object]] = {
        "channel_secret": "s3cret-value-0001",
        "access_token": "tok-0002",
        "previous_keys": ["old-key-0003", 4],
        "oauth": {"password": "pw-0004", "user": "kanal"},
        "base_url": "http://127.0.0.1",
        "page_size": 2,
    }
    fixtures = Path("/nonexistent")

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body)

    def tamper(self, prepared: Prepared) -> Prepared:
        return prepared

    def strip(self, prepared: Prepared) -> Prepared:
        return prepared


def test_default_secrets_are_the_credential_settings() -> None:
    assert sorted(_Profile().secrets()) == ["old-key-0003", "pw-0004", "s3cret-value-0001", "tok-0002"]


def test_profile_defaults_route_and_config() -> None:
    profile = _Profile()
    assert profile.url() == "/channels/feed:test/inbound"
    assert profile.channel_config()["type"] == "feed" and profile.extra_channels() == {}


def test_kanal_settings_are_valid_and_merge_overrides(tmp_path: Path) -> None:
    settings = kanal_settings(
        f"sqlite:///{tmp_path / 'k.sqlite3'}",
        {"api:x": {"type": "api", "settings": {"secret": "x" * 16}}},
        workers={"enabled": False},
    )
    assert settings["workers"] == {"poll_interval_seconds": 0.05, "enabled": False}
    assert settings["crm"]["base_url"].startswith("http://127.0.0.1:")
    with KanalUnderTest(settings) as gateway:
        assert httpx.get(f"{gateway.url}/channels/api:x/inbound").status_code == 405


# ---------------------------------------------------------------------------------------- the plugin


def test_plugin_is_declared_and_imports_nothing_heavy() -> None:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {"kanal": "kanal_testing.plugin"}
    assert "kanal_testing*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    heavy = "('gateway.app', 'fastapi', 'sqlalchemy')"
    probe = f"import sys, kanal_testing.plugin; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_plugin_leaves_an_unrelated_test_run_alone(tmp_path: Path) -> None:
    # A project that knows nothing of Kanal: the plugin loaded explicitly must not change its outcome.
    (tmp_path / "test_other.py").write_text(
        "import socket\n\n"
        "def test_sockets_are_untouched():\n"
        "    assert socket.socket.connect.__qualname__ == 'socket.connect'\n"
    )
    # `no:kanal` first: where Kanal is installed, its entry point loads the same module under that name.
    pytest_args = ["-p", "no:kanal", "-p", "kanal_testing.plugin", "-p", "no:cacheprovider", "--strict-markers"]
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}

    def pytest(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest", *args, *pytest_args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    done = pytest("-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "@pytest.mark.kanal_contract" in pytest("--markers").stdout


def test_plugin_fixtures_start_kanal_and_guard_the_network(
    kanal_start: Callable[..., KanalUnderTest], kanal_network_guard: LoopbackOnly
) -> None:
    # Only available where Kanal is installed with its `pytest11` entry point, as a channel owner has it.
    gateway = kanal_start({"api:x": {"type": "api", "settings": {"secret": "y" * 16}}})
    assert httpx.get(f"{gateway.url}/channels/api:x/inbound").status_code == 405
    with pytest.raises(OSError, match="tests stay on loopback"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    assert kanal_network_guard.blocked == ["192.0.2.1:80"]
