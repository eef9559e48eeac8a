#!/usr/bin/env python3
"""A small consumer of Kanal's unified feed: pages through `GET /api/v1/feed` and prints each report.

Each entry's report is printed to standard output as one JSON line (with the entry's id, position and
kind beside it); progress goes to standard error. Needs only httpx (`pip install httpx`).

Two ways to keep one's place:

* own cursor (default): the cursor is kept in `--state` (a JSON file) and written only after the
  page's reports were printed, so a crash repeats a page rather than losing one. The ids of recently
  seen entries are kept too, so a repeated entry is printed once.
* `--server-cursor`: Kanal keeps the cursor; the script reads `cursor=server` and acknowledges each
  page with `POST /api/v1/feed/ack` after printing it.

    KANAL_FEED_KEY=kfeed_... python examples/feed_consumer.py --url http://127.0.0.1:8080 --once
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx

#: How many entry ids the state file remembers for de-duplication; a replay is never longer than a page or two.
SEEN_IDS_KEPT = 10_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read Kanal's report feed; print each report as a JSON line.")
    parser.add_argument("--url", default=os.environ.get("KANAL_URL", "http://127.0.0.1:8080"), help="Kanal's base URL")
    parser.add_argument("--key", default=os.environ.get("KANAL_FEED_KEY"), help="feed key (or $KANAL_FEED_KEY)")
    parser.add_argument("--state", type=Path, default=Path("feed_consumer_state.json"), help="cursor and seen ids")
    parser.add_argument("--limit", type=int, default=100, help="entries per page (1..1000)")
    parser.add_argument("--server-cursor", action="store_true", help="let Kanal keep the cursor (ack each page)")
    parser.add_argument("--once", action="store_true", help="stop when caught up instead of polling")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="wait between polls when caught up")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("a feed key is needed: --key or $KANAL_FEED_KEY (`kanal feed consumer create --name NAME`)")

    state = _load(args.state)
    seen: deque[str] = deque(state.get("seen", []), maxlen=SEEN_IDS_KEPT)
    seen_set = set(seen)
    cursor: str | None = state.get("cursor")
    printed = 0
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {args.key}"}, timeout=30) as http:
        while True:
            params: dict[str, Any] = {"limit": args.limit}
            if args.server_cursor:
                params["cursor"] = "server"
            elif cursor:
                params["cursor"] = cursor
            try:
                response = http.get("/api/v1/feed", params=params)
            except httpx.TransportError as exc:
                print(f"feed: cannot reach {args.url} ({exc}); retrying", file=sys.stderr)
                time.sleep(args.poll_seconds)
                continue
            if response.status_code != 200:
                print(f"feed: {response.status_code} {response.text}", file=sys.stderr)
                return 1
            page = response.json()
            new = 0
            for entry in page["items"]:
                if entry["id"] in seen_set:
                    continue  # delivered again (at least once): already printed
                line = {"entry_id": entry["id"], "position": entry["position"], "kind": entry["kind"]}
                print(json.dumps({**line, "report": entry["report"]}, ensure_ascii=False), flush=True)
                if len(seen) == seen.maxlen:
                    seen_set.discard(seen[0])
                seen.append(entry["id"])
                seen_set.add(entry["id"])
                new += 1
            printed += new
            cursor = page["next_cursor"]
            # Progress is saved only after the page's reports are out: a crash repeats, never skips.
            if args.server_cursor and page["items"]:
                ack = http.post("/api/v1/feed/ack", json={"cursor": cursor})
                if ack.status_code != 200:
                    print(f"feed: acknowledging failed: {ack.status_code} {ack.text}", file=sys.stderr)
                    return 1
            _save(args.state, {"cursor": cursor, "seen": list(seen)})
            print(
                f"feed: {len(page['items'])} entries ({new} new), {printed} printed in all, "
                f"{'more waiting' if page['has_more'] else 'caught up'}",
                file=sys.stderr,
            )
            if page["has_more"]:
                continue
            if args.once:
                return 0
            time.sleep(args.poll_seconds)


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    except FileNotFoundError:
        return {}


def _save(path: Path, state: dict[str, Any]) -> None:
    # Write then rename: a crash mid-write leaves the previous state, not half a file.
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.replace(path)


if __name__ == "__main__":
    sys.exit(main())
