"""Refuses (and records) every socket connection that would leave loopback: the adapter kit's guard."""

from kanal_testing.network import LoopbackOnly

__all__ = ["LoopbackOnly"]
