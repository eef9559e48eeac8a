"""Every adapter that ships with Kanal goes through the adapter kit, as a channel owner's would.

A built-in channel type must have `tests/adapters/test_<type>.py` with a `kanal_testing.ContractSuite`
subclass (a `PullContractSuite` one for a pull channel) whose profile is for that type; otherwise a new
adapter could skip the common cases.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from adapters.contract import Adapter
from gateway.plugins import BUILTIN_PLUGINS, get_plugin_manager
from kanal_testing import ContractSuite, PullContractSuite

ADAPTER_TESTS = Path(__file__).resolve().parents[1] / "adapters"


def builtin_types() -> list[str]:
    """Channel types registered by Kanal's own plugins (installed third-party ones have their own tests)."""
    manager = get_plugin_manager()
    kinds: list[str] = []
    for name in BUILTIN_PLUGINS:
        adapters: list[type[Adapter]] = manager.get_plugin(name).kanal_register_adapters()  # type: ignore[type-arg]
        kinds += [cls.channel_type for cls in adapters]
    return sorted(kinds)


def suites_in(module: ModuleType) -> list[type[ContractSuite | PullContractSuite]]:
    kits = (ContractSuite, PullContractSuite)
    return [cls for cls in vars(module).values() if inspect.isclass(cls) and issubclass(cls, kits) and cls not in kits]


def _load(path: Path) -> ModuleType:
    if path.parent == ADAPTER_TESTS:
        # The module pytest collects: importing it again by path would define its classes twice.
        return importlib.import_module(f"tests.adapters.{path.stem}")
    spec = importlib.util.spec_from_file_location(f"kit_check_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems_for(kind: str, folder: Path = ADAPTER_TESTS) -> list[str]:
    """What keeps channel type `kind` from running the contract suite; empty when nothing does."""
    path = folder / f"test_{kind}.py"
    if not path.exists():
        return [f"{path} is missing; add it with a ContractSuite subclass for channel type {kind!r}"]
    suites = suites_in(_load(path))
    if not suites:
        return [f"{path} has no kanal_testing.ContractSuite subclass (nor a PullContractSuite one, for a pull channel)"]
    if not any(getattr(getattr(s, "profile", None), "channel_type", None) == kind for s in suites):
        found = {s.__name__: getattr(getattr(s, "profile", None), "channel_type", None) for s in suites}
        return [f"{path}: no ContractSuite's profile has channel_type {kind!r} (found {found})"]
    return []


def test_builtin_types_are_found() -> None:
    assert {"api", "web_form"} <= set(builtin_types())


@pytest.mark.parametrize("kind", builtin_types())
def test_builtin_adapter_runs_the_contract_suite(kind: str) -> None:
    assert problems_for(kind) == []


def test_a_missing_test_file_is_reported(tmp_path: Path) -> None:
    [problem] = problems_for("carrier_pigeon", folder=tmp_path)
    assert "test_carrier_pigeon.py is missing" in problem


def test_a_test_file_without_a_suite_is_reported(tmp_path: Path) -> None:
    (tmp_path / "test_carrier_pigeon.py").write_text("def test_nothing() -> None:\n    pass\n")
    [problem] = problems_for("carrier_pigeon", folder=tmp_path)
    assert "has no kanal_testing.ContractSuite subclass" in problem


def test_a_suite_for_another_channel_type_is_reported(tmp_path: Path) -> None:
    (tmp_path / "test_carrier_pigeon.py").write_text(
        "from kanal_testing import ContractSuite\n"
        "class Copied:\n"
        "    channel_type = 'api'\n"
        "class TestCarrierPigeonContract(ContractSuite):\n"
        "    profile = Copied()\n"
    )
    [problem] = problems_for("carrier_pigeon", folder=tmp_path)
    assert "no ContractSuite's profile has channel_type 'carrier_pigeon'" in problem
    assert "'TestCarrierPigeonContract': 'api'" in problem
