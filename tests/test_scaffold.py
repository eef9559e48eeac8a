"""`kanal adapters new`: a channel owner's package, installed beside Kanal, passes its own tests at once.

Installing must not change this environment: the package goes into a folder of its own that only
the subprocesses see (PYTHONPATH), and nothing is fetched from a package index.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

from gateway.cli import main
from gateway.scaffold import ScaffoldError, check_name, create_package

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(site: Path, **extra: str) -> dict[str, str]:
    # The repo first after the package: the Kanal under test is this checkout, whatever the venv holds.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO_ROOT)])
    return {**env, **extra}


def _run(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _setuptools_builds_wheels() -> bool:
    # setuptools before 70.1 needs the separate `wheel` package for bdist_wheel.
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def install_into(package: Path, site: Path) -> None:
    """Install `package` into `site` only, offline: with pip when this setuptools can build a wheel.

    Otherwise write what an install leaves behind by hand: the import package, and the metadata
    (entry points included) that setuptools' `egg_info` generates from the same pyproject.toml.
    """
    site.mkdir(parents=True, exist_ok=True)
    if _setuptools_builds_wheels():
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
        done = _run([*pip, "--target", str(site), str(package)], cwd=package, env=_env(site))
        assert done.returncode == 0, done.stdout + done.stderr
        return
    setup = [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info", "--egg-base", str(site)]
    done = _run(setup, cwd=package, env=_env(site))
    assert done.returncode == 0, done.stdout + done.stderr
    for child in package.iterdir():
        if child.name.startswith("kanal_adapter_") and child.is_dir():
            shutil.copytree(child, site / child.name)


def test_generated_package_installs_lists_and_passes_its_own_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["adapters", "new", "city_app", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "kanal-adapter-city_app"
    assert f"created {package}" in capsys.readouterr().out
    site = tmp_path / "site"
    install_into(package, site)

    config = tmp_path / "config"
    config.mkdir()
    (config / "kanal.yaml").write_text(
        "channels:\n  city_app:main:\n    type: city_app\n    settings:\n      secret: a-secret-of-20-chars\n"
    )
    listing = _run(
        [sys.executable, "-m", "gateway.cli", "adapters", "list"],
        cwd=tmp_path,
        env=_env(site, KANAL_CONFIG_DIR=str(config)),
    )
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("city_app ")]
    assert "kanal_adapter_city_app.adapter" in lines[row]
    # Each configured instance is listed under its type with its health (none yet: no database).
    assert lines[row + 1].strip().startswith("city_app:main: push; health not known yet")

    tests = _run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"], cwd=package, env=_env(site))
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    for case in ("test_bad_signature_is_refused", "test_valid_delivery_is_stored_and_becomes_a_report"):
        assert f"TestCityAppContract::{case} PASSED" in tests.stdout
    assert "test_a_signature_made_with_another_secret_is_refused PASSED" in tests.stdout


def test_generated_package_has_the_promised_files(tmp_path: Path) -> None:
    package = create_package("sms2", tmp_path)
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "kanal_adapter_sms2/__init__.py",
        "kanal_adapter_sms2/adapter.py",
        "pyproject.toml",
        "tests/fixtures/full.json",
        "tests/fixtures/missing_text.json",
        "tests/test_sms2.py",
    ]
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "kanal-adapter-sms2" and project["dependencies"] == ["kanal"]
    assert project["entry-points"]["kanal"] == {"sms2": "kanal_adapter_sms2.adapter"}
    readme = (package / "README.md").read_text()
    for step in ("pip install -e .", "pytest", "sms2:main:", "type: sms2"):
        assert step in readme
    adapter = (package / "kanal_adapter_sms2/adapter.py").read_text()
    assert "hmac.compare_digest" in adapter and "class Sms2Adapter(Adapter[Sms2Settings])" in adapter
    assert "class TestSms2Contract(ContractSuite)" in (package / "tests/test_sms2.py").read_text()


def test_generated_code_is_lint_clean(tmp_path: Path) -> None:
    package = create_package("city_app", tmp_path)
    for command in (["check"], ["format", "--check"]):
        lint = _run([sys.executable, "-m", "ruff", *command, "--no-cache", "."], cwd=package, env=dict(os.environ))
        assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("City", "lowercase letters, digits and single underscores"),
        ("2fa", "starting with a letter"),
        ("line-app", "lowercase letters"),
        ("city__app", "single underscores"),
        ("x" * 41, "at most 40 characters"),
        ("api", "built into Kanal"),
        ("web_form", "built into Kanal"),
        ("class", "Python keyword"),
    ],
)
def test_bad_names_are_refused_saying_what_to_do(name: str, says: str) -> None:
    with pytest.raises(ScaffoldError, match=says):
        check_name(name)


def test_an_existing_folder_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "kanal-adapter-line"
    existing.mkdir()
    (existing / "adapter.py").write_text("# my work\n")
    assert main(["adapters", "new", "line", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in existing.iterdir()] == ["adapter.py"]
    assert (existing / "adapter.py").read_text() == "# my work\n"


def test_cli_explains_a_bad_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "new", "Line", "--dir", str(tmp_path)]) == 2
    assert "not a valid channel type name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
