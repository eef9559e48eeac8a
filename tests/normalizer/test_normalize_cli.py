"""`kanal normalize` shows what Kanal makes of a message; the taxonomy is part of the checked configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.settings import REPO_CONFIG_DIR, ConfigError, load_settings

SLANG = "jln rusak parah gk diperbaiki2 di jl kramat raya kel kenari jakpus, tolong di TL pak. wa 0812-3456-7890"


def _kanal(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "normalize", *args],
        input=stdin,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_text_in_json_out_with_place_routing_masking_and_reasons(tmp_path: Path) -> None:
    done = _kanal("--text", SLANG, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "3456-7890" not in result["text"] and result["masked"] == ["phone"]
    assert result["place"]["kelurahan_code"] == "31.71.04.1002"
    assert result["place"]["street"] == "Jl. Kramat Raya"
    assert result["routing"]["agency_code"] == "bina_marga"
    assert result["routing"]["agency_unit"] == "Suku Dinas Bina Marga Jakarta Pusat"
    assert result["routing"]["reasons"], "every decision says why"
    assert {d["step"] for d in result["decisions"]} >= {"place", "routing", "masking", "completeness"}


def test_text_output_reads_as_an_explanation(tmp_path: Path) -> None:
    done = _kanal("--text", SLANG, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Kenari" in done.stdout and "because" in done.stdout and "Suku Dinas Bina Marga" in done.stdout


def test_a_file_streams_one_result_per_line_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        "Sampah menumpuk di pinggir kali Ciliwung, Kel. Kampung Melayu, Jatinegara, sudah seminggu",
        json.dumps({"text": "Lampu PJU mati sejak 3 hari", "lat": -6.17638, "lng": 106.82670}),
        '{"text": 12}',
        "",
        "halo min",
    ]
    (tmp_path / "export.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _kanal("--file", "export.txt", cwd=tmp_path)
    assert done.returncode == 1, "a bad line makes the run fail, after the other lines are done"
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 5]
    assert results[0]["place"]["kelurahan_name"] == "Kampung Melayu"
    assert results[1]["place"]["kelurahan_code"] == "31.71.01.1001"  # Gambir, from the coordinates
    assert "text" in results[2]["error"] and "fix the line" in results[2]["error"]
    assert results[3]["routing"]["needs_choice"] is True
    assert "done, 4 messages, 1 failed" in done.stderr


def test_a_missing_file_says_what_to_check(tmp_path: Path) -> None:
    done = _kanal("--file", "nope.txt", cwd=tmp_path)
    assert done.returncode == 2 and "cannot read nope.txt" in done.stderr and "Traceback" not in done.stderr


def test_the_shipped_configuration_includes_a_valid_taxonomy() -> None:
    settings = load_settings(REPO_CONFIG_DIR, environ={})
    assert settings.taxonomy is not None
    assert len(settings.taxonomy.categories) >= 32


def test_a_taxonomy_naming_an_unknown_agency_stops_start_up_with_the_file_and_key(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    taxonomy = yaml.safe_load((REPO_CONFIG_DIR / "taxonomy.yaml").read_text(encoding="utf-8"))
    taxonomy["taxonomy"]["categories"][3]["agency"] = "dinas_x"
    (folder / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(folder, environ={})
    message = str(error.value)
    assert str(folder / "taxonomy.yaml") in message
    assert "taxonomy.categories[3].agency: unknown agency 'dinas_x'" in message
