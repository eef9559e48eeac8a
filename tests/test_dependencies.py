"""pip backtracks silently when pins clash (it once resolved python-telegram-bot to 12.8): catch that here."""

from __future__ import annotations

from importlib.metadata import version


def _major_minor(package: str) -> tuple[int, int]:
    major, minor = version(package).split(".")[:2]
    return int(major), int(minor)


def test_core_dependencies_resolved_to_the_chosen_major_versions() -> None:
    assert _major_minor("python-telegram-bot")[0] == 22
    assert (3, 0) <= _major_minor("apscheduler") < (3, 12), "APScheduler 4 is an unsupported pre-release"
    assert _major_minor("pydantic")[0] == 2
    assert _major_minor("sqlalchemy")[0] == 2
