"""Working days in Jakarta: Monday to Friday, minus Indonesian public holidays and cuti bersama.

Instants are aware UTC datetimes everywhere else in Kanal; this module counts in Asia/Jakarta (WIB)
dates, because "one working day" is a day in the city's offices, not 24 hours.

The convention, shared by `add_working_days` and `working_days_between`: the day something arrives
does not count (it may arrive at 23:55), and a deadline of N working days falls at the end (24:00 WIB)
of the Nth working day after that day. A report received on Friday at 10:00 with one working day to
go is due at the end of Monday, unless Monday is a holiday; one received on Saturday is due then too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

WIB = ZoneInfo("Asia/Jakarta")
#: The shipped holiday list; see its header for the source and the yearly review it needs.
DEFAULT_HOLIDAYS_FILE = Path(__file__).resolve().parent / "data" / "hari_libur.yaml"

log = logging.getLogger(__name__)


class HolidayFileError(ValueError):
    """The holiday file cannot be used; the message names the file, the key and what was expected."""


class Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: date
    name: str
    kind: Literal["libur", "cuti_bersama"]
    #: An estimate (the year's decree was not out yet): counted like the others, but worth replacing.
    provisional: bool = False


class _HolidayFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    years: dict[int, list[Holiday]]

    @model_validator(mode="after")
    def _dates_in_their_year_once(self) -> _HolidayFile:
        seen: set[date] = set()
        for year, holidays in self.years.items():
            for index, holiday in enumerate(holidays):
                if holiday.date.year != year:
                    raise ValueError(f"years.{year}.{index}.date: {holiday.date} is not in {year}")
                if holiday.date in seen:
                    raise ValueError(f"years.{year}.{index}.date: {holiday.date} is listed twice")
                seen.add(holiday.date)
        return self


@dataclass(frozen=True)
class WorkCalendar:
    """Which WIB dates are working days; years not in `years` know only weekends (see `covers`)."""

    holidays: dict[date, Holiday] = field(default_factory=dict)
    years: frozenset[int] = frozenset()
    source: str = "(none)"

    def covers(self, day: date) -> bool:
        """Whether the holiday list has `day`'s year; outside it only weekends are skipped."""
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end (24:00 WIB, as aware UTC) of the `days`-th working day after `start`'s WIB date.

        With `days` = 0 the deadline is the end of `start`'s own day.
        """
        day = _wib_date(start)
        for _ in range(days):
            day = self.next_working_day(day)
        return _start_of_wib_day(day + timedelta(days=1))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s WIB date up to and including `end`'s: an age in working days.

        Received Friday, asked on Tuesday after a Monday holiday: 1. Zero when `end` is not later.
        """
        first, last = _wib_date(start), _wib_date(end)
        count, day = 0, first + timedelta(days=1)
        while day <= last:
            if self.is_working_day(day):
                count += 1
            day += timedelta(days=1)
        return count


def _wib_date(instant: datetime) -> date:
    if instant.tzinfo is None:
        raise ValueError("naive datetime; the working-day calendar takes aware times only")
    return instant.astimezone(WIB).date()


def _start_of_wib_day(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)


def load_calendar(path: Path | None = None) -> WorkCalendar:
    """Read and check a holiday file (default: the shipped one); raise `HolidayFileError`."""
    path = path or DEFAULT_HOLIDAYS_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HolidayFileError(f"{path}: cannot read the holiday file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise HolidayFileError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    try:
        parsed = _HolidayFile.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{path}: {key}: {err['msg']}")
        raise HolidayFileError("\n".join(lines)) from None
    holidays = {h.date: h for year in parsed.years.values() for h in year}
    return WorkCalendar(holidays=holidays, years=frozenset(parsed.years), source=str(path))


@lru_cache(maxsize=8)
def cached_calendar(path: Path | None = None) -> WorkCalendar:
    """`load_calendar`, read once per file per process: the sweeper asks for it every round."""
    return load_calendar(path)


def warn_if_uncovered(calendar: WorkCalendar, days: Iterable[date]) -> bool:
    """Log once per call when a date's year is missing from the holiday list; return whether any was."""
    missing = sorted({d.year for d in days if not calendar.covers(d)})
    if missing:
        log.warning(
            "sla: %s has no holidays for %s; only weekends are skipped. Add the year's SKB dates.",
            calendar.source,
            ", ".join(map(str, missing)),
        )
    return bool(missing)
