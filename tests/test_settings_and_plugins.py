"""Configuration errors name the file, the key and what was expected; plugins can be switched off."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.plugins import adapter_types, get_plugin_manager
from gateway.settings import ConfigError, load_settings
from tests.support.api_client import post_api
from tests.support.servers import RunningGateway


def _config(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    (folder / "kanal.yaml").write_text(text, encoding="utf-8")
    return folder


def test_a_wrong_value_names_the_file_the_key_and_the_expectation(tmp_path: Path) -> None:
    folder = _config(tmp_path, "crm:\n  max_attempts: ten\n")
    with pytest.raises(ConfigError) as error:
        load_settings(folder, environ={})
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert str(folder / "kanal.yaml") in message and "crm.max_attempts" in message and "integer" in message
    assert "'ten'" in message


def test_an_unknown_key_is_an_error_not_silently_ignored(tmp_path: Path) -> None:
    folder = _config(tmp_path, "crm:\n  base_ulr: http://crm/\n")
    with pytest.raises(ConfigError, match=r"crm\.base_ulr: Extra inputs are not permitted"):
        load_settings(folder, environ={})


def test_environment_interpolation_and_overrides(tmp_path: Path) -> None:
    folder = _config(tmp_path, "crm:\n  api_key: ${CRM_KEY}\n  max_attempts: 3\n")
    with pytest.raises(ConfigError, match=r"crm\.api_key: environment variable CRM_KEY is not set"):
        load_settings(folder, environ={})
    settings = load_settings(folder, environ={"CRM_KEY": "k-123", "KANAL_CRM__MAX_ATTEMPTS": "7"})
    assert settings.crm.api_key.get_secret_value() == "k-123" and settings.crm.max_attempts == 7
    assert "k-123" not in repr(settings), "secrets are not shown when settings are printed"


def test_files_merge_in_name_order(tmp_path: Path) -> None:
    folder = _config(tmp_path, "crm:\n  max_attempts: 3\n  timeout_seconds: 4\n")
    (folder / "zz-site.yaml").write_text("crm:\n  max_attempts: 9\n", encoding="utf-8")
    settings = load_settings(folder, environ={})
    assert (settings.crm.max_attempts, settings.crm.timeout_seconds) == (9, 4)


def _channels(**channels: Any) -> dict[str, Any]:
    return {"database_url": "sqlite:///:memory:", "secret_key": "k" * 32, "channels": channels}


def test_channel_settings_are_checked_by_their_adapter() -> None:
    from gateway.plugins import build_channels
    from gateway.settings import KanalSettings

    manager = get_plugin_manager()
    short = KanalSettings.model_validate(_channels(**{"api:x": {"type": "api", "settings": {"secret": "short"}}}))
    with pytest.raises(ConfigError, match=r"channels\.api:x\.settings\.secret: .*at least 16") as error:
        build_channels(short, manager)
    assert "short" not in str(error.value), "a secret's value is never echoed in an error"
    unknown = KanalSettings.model_validate(_channels(**{"fax:1": {"type": "fax"}}))
    with pytest.raises(ConfigError, match=r"channels\.fax:1\.type: no adapter for channel type 'fax'"):
        build_channels(unknown, manager)


def test_kanal_run_with_a_broken_config_exits_with_the_problem(tmp_path: Path) -> None:
    folder = _config(tmp_path, "workers:\n  poll_interval_seconds: -1\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}, "KANAL_CONFIG_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "workers.poll_interval_seconds: Input should be greater than 0 (got -1)" in done.stderr
    assert "Traceback" not in done.stderr


def test_builtin_adapters_are_ordinary_plugins_and_can_be_disabled() -> None:
    manager = get_plugin_manager()
    assert {"api", "web_form"} <= set(adapter_types(manager))
    assert manager.get_plugin("api") is not None, "built-ins are registered under their entry-point names"
    off = get_plugin_manager(disabled=["web_form"])
    assert "web_form" not in adapter_types(off) and manager.is_registered(manager.get_plugin("web_form"))


def test_a_disabled_adapter_has_no_route(settings: dict[str, Any]) -> None:
    settings["adapters"] = {"disabled": ["web_form"]}
    with RunningGateway(settings) as gateway:
        assert httpx.get(f"{gateway.url}/channels/web_form:balaiwarga/inbound").status_code == 404
        assert httpx.get(f"{gateway.url}/healthz").json()["channels"] == ["api:partner", "api:trusted"]


def test_adapters_list_shows_types_and_channels() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "adapters", "list"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "api " in done.stdout and "web_form" in done.stdout and "api:partner" in done.stdout


def test_channel_errors_name_the_file_that_declared_the_channel(tmp_path: Path) -> None:
    from gateway.plugins import build_channels

    folder = _config(tmp_path, "secret_key: " + "k" * 32 + "\nchannels:\n  api:x:\n    type: api\n    settings: {}\n")
    with pytest.raises(ConfigError) as error:
        build_channels(load_settings(folder, environ={}), get_plugin_manager())
    assert str(error.value).startswith(f"{folder / 'kanal.yaml'}: channels.api:x.settings.secret: Field required")


def test_kanal_worker_refuses_sqlite_and_says_what_to_do_instead(tmp_path: Path) -> None:
    folder = _config(tmp_path, f"database_url: sqlite:///{tmp_path}/k.sqlite3\nsecret_key: {'k' * 32}\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}, "KANAL_CONFIG_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "needs PostgreSQL" in done.stderr and "kanal run" in done.stderr


def test_adapters_list_shows_each_channels_health(settings: dict[str, Any], tmp_path: Path) -> None:
    from gateway.cli import _adapters_list

    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url) as http:
        accepted = post_api(http, {"external_id": "h-1", "text": "Lampu jalan mati di Jl. Pramuka"})
        assert accepted.status_code == 200
        refused = http.post("/channels/api:partner/inbound", content=b"{}")
        assert refused.status_code == 401
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "kanal.yaml").write_text(yaml.safe_dump(settings))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KANAL_CONFIG_DIR", str(folder))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert _adapters_list(argparse.Namespace(json=True)) == 0
    listing = {entry["type"]: entry for entry in json.loads(printed.getvalue())}
    [partner] = [c for c in listing["api"]["channels"] if c["id"] == "api:partner"]
    assert partner["mode"] == "push" and partner["last_success_at"] is not None
    assert "signature" in partner["last_error"].lower(), partner["last_error"]
    assert partner["backlog"] == partner["waiting_messages"] + partner["waiting_media"] + partner["waiting_replies"]


def test_a_variable_the_files_interpolate_is_a_value_not_an_override(tmp_path: Path) -> None:
    # The shipped config reads ${KANAL_API_PARTNER_SECRET}: setting it must fill that value, not be taken
    # as a top-level key `api_partner_secret` and stop Kanal at start.
    folder = _config(
        tmp_path,
        "secret_key: " + "k" * 32 + "\nchannels:\n  api:x:\n    type: api\n"
        "    settings: {secret: '${KANAL_X_SECRET:-too-short}'}\n",
    )
    loaded = load_settings(folder, environ={"KANAL_X_SECRET": "partner-secret-0123456789"})
    assert loaded.channels["api:x"].settings["secret"] == "partner-secret-0123456789"
    with pytest.raises(ConfigError, match="KANAL_TYPO: typo: Extra inputs are not permitted"):
        load_settings(folder, environ={"KANAL_TYPO": "1"})
