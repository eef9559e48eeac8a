"""Dotted paths into a partner's JSON: `data.items`, `reporter.name`, `attachments.0.url`.

Partner systems whose API we do not control (LAPOR!, regional complaint apps) are configured by naming
where each field lives in their answer, instead of by code. A path is a dot-separated list of object
keys; a segment of digits also indexes a list. Paths are checked when the settings load, so a typo
fails at start with the setting's name, not at the first poll.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator

_SEGMENT = re.compile(r"^[A-Za-z0-9_\-@$:]+$")
MAX_SEGMENTS = 12


class Missing:
    """What `get_path` returns when the path does not lead anywhere (distinct from a JSON null)."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = Missing()


def split_path(path: str) -> tuple[str, ...]:
    """The segments of `path`; raises ValueError saying what is wrong with it."""
    if not path or not path.strip():
        raise ValueError("a dotted path must not be empty; write e.g. 'data.items' or 'reporter.name'")
    segments = tuple(path.split("."))
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"{path!r} has more than {MAX_SEGMENTS} segments")
    for segment in segments:
        if not segment:
            raise ValueError(f"{path!r} has an empty segment (two dots, or a dot at an end); write e.g. 'a.b.c'")
        if not _SEGMENT.match(segment):
            raise ValueError(
                f"{path!r}: segment {segment!r} may hold only letters, digits and _ - @ $ : (no spaces or brackets; "
                "index a list with a number segment, e.g. 'photos.0.url')"
            )
    return segments


def _validated(path: str) -> str:
    split_path(path)
    return path


#: A settings field holding a dotted path: validated when the settings load.
DottedPath = Annotated[str, AfterValidator(_validated)]


def get_path(document: Any, path: str) -> Any:
    """The value at `path` in `document`, or `MISSING`. Never raises, whatever `document` is."""
    current = document
    for segment in split_path(path):
        if isinstance(current, Mapping):
            if segment not in current:
                return MISSING
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit():
            index = int(segment)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Put `value` at `path` in `document`, creating nested objects on the way (for request bodies)."""
    segments = split_path(path)
    current = document
    for segment in segments[:-1]:
        child = current.get(segment)
        if not isinstance(child, dict):
            child = current[segment] = {}
        current = child
    current[segments[-1]] = value


def scalar_text(value: Any, *, max_length: int | None = None) -> str | None:
    """`value` as trimmed text when it is a string or a number (not a bool); None for anything else or blank."""
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, int | float):
        try:
            text = str(value)
        except ValueError:  # an integer beyond Python's digit limit for str()
            return None
    elif isinstance(value, str):
        text = value.replace("\x00", "").strip()
    else:
        return None
    if not text:
        return None
    return text[:max_length] if max_length is not None else text
