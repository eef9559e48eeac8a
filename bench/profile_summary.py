"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the samples go, per thread.

    python bench/profile_summary.py /tmp/kanal.prof [--top 25] [--match SUBSTRING]

Prints, per thread, the share of samples, then the top functions by inclusive share (any frame in the
stack) and by self share (the innermost frame). With --match, only stacks containing SUBSTRING count.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('func')} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    args = parser.parse_args()

    per_thread: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    self_time: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    with open(args.profile, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if args.match and args.match not in stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        # With `py-spy record --threads` the first frame names the thread.
        thread = frames.pop(0) if frames[0].startswith("thread (") else "all threads"
        frames = [short(f) for f in frames]
        total += count
        per_thread[thread] += count
        for frame in set(frames):
            inclusive[thread][frame] += count
        if frames:
            self_time[thread][frames[-1]] += count
    print(f"{total} samples")
    for thread, count in per_thread.most_common():
        print(f"\n== {thread}: {count} samples ({100 * count / total:.1f}% of all)")
        print("  inclusive (share of this thread's samples):")
        for frame, n in inclusive[thread].most_common(args.top):
            print(f"    {100 * n / count:5.1f}%  {frame}")
        print("  self:")
        for frame, n in self_time[thread].most_common(12):
            print(f"    {100 * n / count:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
