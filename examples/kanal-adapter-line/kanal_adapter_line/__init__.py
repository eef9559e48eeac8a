"""A Kanal channel adapter for LINE Official Accounts, installed as a plugin through the `kanal` entry point."""

from kanal_adapter_line.adapter import LineAdapter, LineSettings

__all__ = ["LineAdapter", "LineSettings"]
