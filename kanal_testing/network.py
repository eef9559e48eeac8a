"""A socket guard that refuses (and records) every connection leaving loopback.

Adapter tests talk to Kanal and to peers the test started on 127.0.0.1; a connection anywhere else
means a test depends on the internet, or an adapter phones home, and either is a bug to see.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest


class LoopbackOnly:
    """Patches `socket.socket.connect` for one test; `blocked` lists the refused `host:port`s."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def check(self, address: Any) -> None:
        """Raise `OSError` for an address off this machine; AF_UNIX paths and loopback pass."""
        if not isinstance(address, tuple):  # AF_UNIX paths stay on this machine
            return
        host = str(address[0])
        if host == "localhost":
            return
        try:
            if ipaddress.ip_address(host.split("%")[0]).is_loopback:
                return
        except ValueError:
            pass
        self.blocked.append(f"{host}:{address[1]}")
        raise OSError(f"test network guard: connection to {host}:{address[1]} refused (tests stay on loopback)")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Guard every socket of the process (the gateway's threads too) until `monkeypatch` undoes it."""
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(address)
            original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(address)
            return original_connect_ex(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
