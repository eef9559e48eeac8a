"""`kanal normalize`: run the normalizer over text from the command line, without a database.

Each message runs through the same pipeline the workers use; duplicates and follow-ups are not
looked up (they need the stored history), but the ticket codes a message quotes are shown.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from pydantic import ValidationError

from adapters.contract import InboundMessage, Location
from normalizer.explain import draft_summary, render_text
from normalizer.pipeline import Pipeline, default_pipeline

#: The channel the messages are treated as coming from: a generic one, no trusted shortcut.
CLI_CHANNEL = "cli:normalize"
PROGRESS_EVERY = 1000


def _message(text: str, lat: float | None, lng: float | None, external_id: str) -> InboundMessage:
    location = Location(lat=lat, lng=lng) if lat is not None and lng is not None else None
    return InboundMessage(external_id=external_id, text=text, location=location)


def normalize_text(text: str, *, lat: float | None, lng: float | None, as_json: bool) -> int:
    if (lat is None) != (lng is None):
        print("kanal normalize: give both --lat and --lng, or neither", file=sys.stderr)
        return 2
    try:
        message = _message(text, lat, lng, "cli-1")
    except ValidationError as exc:
        print(f"kanal normalize: {exc.errors()[0]['msg']}; check --text, --lat and --lng", file=sys.stderr)
        return 2
    draft = default_pipeline().run(message, channel_id=CLI_CHANNEL)
    print(json.dumps(draft_summary(draft), ensure_ascii=False, indent=2) if as_json else render_text(draft))
    return 0


def _parse_line(line: str, number: int) -> InboundMessage:
    stripped = line.strip()
    if stripped.startswith("{"):
        item: Any = json.loads(stripped)
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError("a JSON line needs a 'text' string")
        return _message(item["text"], item.get("lat"), item.get("lng"), str(item.get("id", number)))
    return _message(stripped, None, None, str(number))


def normalize_stream(lines: IO[str], out: IO[str], pipeline: Pipeline, *, progress: IO[str] | None = None) -> int:
    """One JSON object per non-blank input line, in order; a bad line gets an `error` object, not a stop.

    Returns how many lines failed.
    """
    failed = done = 0
    started = time.monotonic()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            message = _parse_line(line, number)
            result: dict[str, Any] = {"line": number, **draft_summary(pipeline.run(message, channel_id=CLI_CHANNEL))}
        except (ValueError, ValidationError) as exc:
            failed += 1
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            result = {"line": number, "error": f"{detail}; fix the line or remove it"}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"kanal normalize: {done} messages ({rate:.0f}/s), {failed} failed", file=progress, flush=True)
    if progress is not None:
        print(f"kanal normalize: done, {done} messages, {failed} failed", file=progress, flush=True)
    return failed


def normalize_file(path: str) -> int:
    pipeline = default_pipeline()
    try:
        if path == "-":
            failed = normalize_stream(sys.stdin, sys.stdout, pipeline, progress=sys.stderr)
        else:
            with open(path, encoding="utf-8") as lines:
                failed = normalize_stream(lines, sys.stdout, pipeline, progress=sys.stderr)
    except OSError as exc:
        print(f"kanal normalize: cannot read {path}: {exc.strerror}; check the path", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"kanal normalize: {path} is not UTF-8 text; convert it (e.g. iconv -t UTF-8)", file=sys.stderr)
        return 2
    return 1 if failed else 0
