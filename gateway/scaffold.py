"""`kanal adapters new NAME`: a ready-to-test adapter package for a channel owner to fill in.

The templates live in `gateway/templates/scaffold/` (package data, `string.Template` syntax). The
generated package passes its own tests as generated, so an owner starts from green and changes one
thing at a time.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from gateway.plugins import BUILTIN_PLUGINS

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
TEMPLATE_SUFFIX = ".tmpl"


class ScaffoldError(Exception):
    """The package cannot be generated; the message says what to do instead."""


@dataclass(frozen=True)
class Names:
    """Every spelling of a channel type name the templates use."""

    name: str  # the channel type: "city_app"

    @property
    def camel(self) -> str:  # "CityApp": class names
        return "".join(part.capitalize() for part in self.name.split("_") if part)

    @property
    def package(self) -> str:  # "kanal_adapter_city_app"
        return f"kanal_adapter_{self.name}"

    @property
    def dist(self) -> str:  # "kanal-adapter-city_app": the folder and the distribution
        return f"kanal-adapter-{self.name}"

    @property
    def header(self) -> str:  # "X-City-App-Signature"
        return "X-" + "-".join(part.capitalize() for part in self.name.split("_") if part) + "-Signature"

    def substitutions(self) -> dict[str, str]:
        return {
            "name": self.name,
            "Name": self.camel,
            "package": self.package,
            "dist": self.dist,
            "header": self.header,
            "header_lower": self.header.lower(),
            "env_prefix": self.name.upper(),
        }


def check_name(name: str) -> Names:
    """Accept a channel type name or raise `ScaffoldError` saying what a valid one looks like."""
    if not NAME_PATTERN.fullmatch(name) or name.endswith("_") or "__" in name:
        raise ScaffoldError(
            f"{name!r} is not a valid channel type name: use lowercase letters, digits and single underscores, "
            "starting with a letter, at most 40 characters (for example: line, city_app, sms2)"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword; choose another channel type name")
    if name in BUILTIN_PLUGINS:
        raise ScaffoldError(
            f"{name!r} is a channel type built into Kanal; configure it under `channels:` instead, "
            "or choose another name for a new adapter"
        )
    return Names(name)


def _target_path(relative: str, names: Names) -> str:
    path = relative.removesuffix(TEMPLATE_SUFFIX)
    if path.startswith("package/"):
        path = names.package + path.removeprefix("package")
    if path == "tests/test_channel.py":
        path = f"tests/test_{names.name}.py"
    if path == "gitignore":
        path = ".gitignore"
    return path


def _templates(folder: Traversable, prefix: str = "") -> list[tuple[str, str]]:
    """(relative path, text) of every template under `folder`."""
    found: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            found += _templates(entry, relative + "/")
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append((relative, entry.read_text(encoding="utf-8")))
    return found


def render(names: Names) -> dict[str, str]:
    """Relative path -> content of every file of the package for `names`."""
    root = resources.files("gateway") / "templates" / "scaffold"
    values = names.substitutions()
    return {_target_path(rel, names): Template(text).substitute(values) for rel, text in _templates(root)}


def create_package(name: str, directory: Path) -> Path:
    """Write `kanal-adapter-<name>/` inside `directory` and return its path; never overwrites anything."""
    names = check_name(name)
    target = directory / names.dist
    if target.exists():
        raise ScaffoldError(f"{target} already exists; remove it or choose another --dir (nothing was written)")
    files = render(names)
    for relative, content in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return target
