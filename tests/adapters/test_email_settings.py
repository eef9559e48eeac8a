"""An `email` channel's settings: mistakes that would leak a password or lose replies are refused at start."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.email_settings import EmailSettings

BASE: dict[str, Any] = {"imap_host": "imap.jakarta.go.id", "username": "dki@jakarta.go.id", "password": "x" * 12}


def test_defaults_are_tls_on_the_standard_ports() -> None:
    settings = EmailSettings.model_validate({**BASE, "smtp_host": "smtp.jakarta.go.id"})
    assert (settings.imap_port_or_default, settings.smtp_port_or_default) == (993, 587)
    assert settings.sender_address == "dki@jakarta.go.id"
    assert settings.own_addresses == frozenset({"dki@jakarta.go.id"})


@pytest.mark.parametrize(
    ("change", "fix"),
    [
        ({"imap_ssl": False}, "imap_starttls: true"),
        ({"imap_starttls": True}, "not both"),
        ({"smtp_host": "smtp.jakarta.go.id", "smtp_ssl": True}, "not both"),
        ({"smtp_host": "smtp.jakarta.go.id", "smtp_username": "dki"}, "both smtp_username and smtp_password"),
        (
            {"smtp_host": "smtp.jakarta.go.id", "smtp_starttls": False, "smtp_username": "u", "smtp_password": "p"},
            "smtp_starttls: true",
        ),
        ({"smtp_host": "smtp.jakarta.go.id", "username": "pengaduan"}, "set from_address"),
        ({"from_address": "Pengaduan <dki@jakarta.go.id>"}, "one bare address"),
        ({"imap_hots": "typo.example"}, "imap_hots"),
    ],
    ids=[
        "plain imap",
        "ssl and starttls",
        "smtp ssl and starttls",
        "smtp user without password",
        "smtp auth in clear",
        "no sender address",
        "display name in from_address",
        "unknown key",
    ],
)
def test_a_risky_or_incomplete_setting_is_refused_with_the_fix(change: dict[str, Any], fix: str) -> None:
    with pytest.raises(ValidationError) as refused:
        EmailSettings.model_validate({**BASE, **change})
    assert fix in str(refused.value)


def test_plain_connections_are_allowed_on_this_machine() -> None:
    settings = EmailSettings.model_validate({**BASE, "imap_host": "127.0.0.1", "imap_ssl": False})
    assert settings.imap_port_or_default == 143
