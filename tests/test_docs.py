"""The channel owners' guide (docs/adapters.md) documents every hook and every part of the adapter contract."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from adapters.contract import Adapter
from gateway import hookspecs

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "adapters.md"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _summary(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return _flat(doc.split("\n\n")[0])


HOOKS = [name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, "kanal_spec")]
METHODS = [name for name, value in vars(Adapter).items() if not name.startswith("_") and inspect.isfunction(value)]
# Class attributes with a value, properties, and the ones only declared (channel_type).
ATTRIBUTES = sorted(
    ({name for name, value in vars(Adapter).items() if not inspect.isfunction(value)} | set(Adapter.__annotations__))
    - {name for name in vars(Adapter) if name.startswith("_")}
)


def test_the_contract_has_hooks_and_methods_to_check() -> None:
    assert "kanal_register_adapters" in HOOKS
    assert {"verify", "parse", "fetch", "send", "answer_get"} <= set(METHODS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_docstring(name: str) -> None:
    hook = getattr(hookspecs, name)
    summary = _summary(hook)
    assert summary, f"hook {name} has no docstring; write one: the guide quotes it"
    guide = _flat(GUIDE.read_text(encoding="utf-8"))
    assert f"### `{name}`" in GUIDE.read_text(encoding="utf-8"), f"docs/adapters.md lacks a section for hook {name}"
    assert summary in guide, f"docs/adapters.md does not quote hook {name}'s docstring: {summary!r}"


@pytest.mark.parametrize("name", METHODS)
def test_every_adapter_method_is_documented_with_its_docstring(name: str) -> None:
    summary = _summary(getattr(Adapter, name))
    assert summary, f"Adapter.{name} has no docstring; write one: the guide quotes it"
    guide = _flat(GUIDE.read_text(encoding="utf-8"))
    assert f"`{name}(" in guide, f"docs/adapters.md does not document Adapter.{name}"
    assert summary in guide, f"docs/adapters.md does not quote Adapter.{name}'s docstring: {summary!r}"


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_every_adapter_attribute_is_documented(name: str) -> None:
    assert f"| `{name}` |" in GUIDE.read_text(encoding="utf-8"), f"docs/adapters.md lacks attribute {name}"
