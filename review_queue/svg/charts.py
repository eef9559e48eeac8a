"""Bar charts as SVG: reports per day stacked by channel, and open/overdue bars per agency or area.

Colours are the Okabe-Ito palette, told apart by people with the common colour-vision deficiencies;
every value is also written as a number, so no reading depends on colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from review_queue.svg import coord, document, number, text

#: Okabe-Ito without its yellow, which is too pale to see against white; the biggest series gets blue.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
OTHERS_COLOUR = "#8C8C8C"
OPEN_COLOUR = "#0072B2"
OVERDUE_COLOUR = "#D55E00"
#: Overdue figures written as text: a darker vermillion, readable at 12 px on white (contrast above 4.5:1).
OVERDUE_INK = "#A03800"
INK = "#222222"
MUTED = "#666666"
GRID = "#DDDDDD"
#: Characters of a label shown beside a bar; longer ones are cut with "…" (the full one is in its tooltip).
LABEL_CHARS = 34


def nice_step(value: float, ticks: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten that covers `value` in at most `ticks` steps (1 for nothing)."""
    if value <= 0:
        return 1
    rough = value / ticks
    power = 10 ** math.floor(math.log10(rough))
    for step in (1, 2, 5, 10):
        if rough <= step * power:
            # Counts are whole: a step below 1 would label gridlines 0,2 0,4...
            return max(1, step * power)
    return 10 * power  # pragma: no cover - the loop ends at 10


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def stacked_bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    description: str | None = None,
    max_series: int = len(PALETTE),
    others: str = "Lainnya",
    width: int = 720,
    height: int = 300,
    fmt: Callable[[float], str] = number,
) -> str:
    """One bar per category (e.g. a day), stacked by series (e.g. channels), its total written above it.

    `series` maps a name to one value per category, in the order to stack them (biggest first reads
    best); beyond `max_series` the smallest are summed into one grey series named `others`. `fmt`
    writes the numbers (Indonesian grouping by default).
    """
    names = list(series)
    values = [list(series[name]) for name in names]
    for name, row in zip(names, values, strict=True):
        if len(row) != len(categories):
            raise ValueError(f"series {name!r} has {len(row)} values for {len(categories)} categories")
    colours = [PALETTE[n % len(PALETTE)] for n in range(len(names))]
    if len(names) > max_series:
        keep = max_series - 1
        rest = [sum(column) for column in zip(*values[keep:], strict=True)]
        names, values, colours = [*names[:keep], others], [*values[:keep], rest], [*colours[:keep], OTHERS_COLOUR]
    totals = [sum(column) for column in zip(*values, strict=True)] if values else [0] * len(categories)
    step = nice_step(max(totals, default=0))
    top = step * max(1, math.ceil(max(totals, default=0) / step))

    legend_columns = 3
    legend_rows = math.ceil(len(names) / legend_columns) if names else 0
    left, right, top_pad, bottom = 44, 12, 22, 40 + 20 * legend_rows
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    slot = plot_w / max(1, len(categories))
    bar = max(2.0, slot * 0.7)

    def y(value: float) -> float:
        return top_pad + plot_h - plot_h * value / top

    body: list[str] = []
    for tick in [step * n for n in range(round(top / step) + 1)]:
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{coord(y(tick))}" y2="{coord(y(tick))}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{coord(y(tick) + 4)}" text-anchor="end" fill="{MUTED}">{fmt(tick)}</text>'
        )
    # Label every k-th category so the labels never overlap (about 40 units per label).
    every = max(1, math.ceil(40 / slot))
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        base = 0
        for name, row, colour in zip(names, values, colours, strict=True):
            value = row[i]
            if value:
                body.append(
                    f'<rect x="{coord(x)}" y="{coord(y(base + value))}" width="{coord(bar)}"'
                    f' height="{coord(y(base) - y(base + value))}" fill="{colour}">'
                    f"<title>{text(category)}, {text(name)}: {fmt(value)}</title></rect>"
                )
            base += value
        centre = coord(x + bar / 2)
        if totals[i]:
            body.append(
                f'<text x="{centre}" y="{coord(y(totals[i]) - 4)}" text-anchor="middle" font-size="10"'
                f' fill="{INK}">{fmt(totals[i])}</text>'
            )
        if i % every == 0:
            body.append(
                f'<text x="{centre}" y="{coord(top_pad + plot_h + 16)}" text-anchor="middle" fill="{MUTED}">'
                f"{text(category)}</text>"
            )
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{coord(y(0))}" y2="{coord(y(0))}" stroke="{MUTED}"/>')
    legend_top = top_pad + plot_h + 34
    column = plot_w / legend_columns
    for n, (name, colour) in enumerate(zip(names, colours, strict=True)):
        lx, ly = left + column * (n % legend_columns), legend_top + 20 * (n // legend_columns)
        body.append(
            f'<rect x="{coord(lx)}" y="{coord(ly)}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{coord(lx + 17)}" y="{coord(ly + 10)}" fill="{INK}">{text(_short(name, 24))}'
            f" ({fmt(sum(values[n]))})</text>"
        )
    if not names:
        body.append(
            f'<text x="{coord(left + plot_w / 2)}" y="{coord(top_pad + plot_h / 2)}" text-anchor="middle"'
            f' fill="{MUTED}">{text(description or "—")}</text>'
        )
    return document(width=width, height=height, title=title, description=description, body=body)


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: `part` of `value` is drawn highlighted (e.g. overdue of open)."""

    label: str
    value: int
    part: int = 0


def horizontal_bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    value_name: str = "terbuka",
    part_name: str = "terlambat",
    description: str | None = None,
    width: int = 720,
    row_height: int = 24,
    label_width: int = 230,
    fmt: Callable[[float], str] = number,
) -> str:
    """One bar per row, longest scale first as given; the highlighted part starts at the left edge.

    Each row shows its value and its part in words ("12 terbuka, 3 terlambat") at the bar's end.
    """
    legend, gap = 26, 6
    height = legend + max(1, len(bars)) * row_height + gap
    numbers_w = 150
    plot_w = width - label_width - numbers_w
    top = max((b.value for b in bars), default=0) or 1
    body = [
        f'<rect x="{label_width}" y="4" width="12" height="12" fill="{OPEN_COLOUR}"/>'
        f'<text x="{label_width + 17}" y="14" fill="{INK}">{text(value_name)}</text>'
        f'<rect x="{label_width + 110}" y="4" width="12" height="12" fill="{OVERDUE_COLOUR}"/>'
        f'<text x="{label_width + 127}" y="14" fill="{INK}">{text(part_name)}</text>'
    ]
    for i, item in enumerate(bars):
        y0 = legend + i * row_height
        full = plot_w * item.value / top
        part = plot_w * min(item.part, item.value) / top
        mid = coord(y0 + row_height / 2 + 4)
        words = f"{fmt(item.value)} {value_name}" + (f", {fmt(item.part)} {part_name}" if item.part else "")
        body.append(
            f"<g><title>{text(item.label)}: {text(words)}</title>"
            f'<text x="{label_width - 8}" y="{mid}" text-anchor="end" fill="{INK}">{text(_short(item.label))}</text>'
            f'<rect x="{label_width}" y="{coord(y0 + 4)}" width="{coord(max(full, 1 if item.value else 0))}"'
            f' height="{row_height - 8}" fill="{OPEN_COLOUR}"/>'
        )
        if part:
            body.append(
                f'<rect x="{label_width}" y="{coord(y0 + 4)}" width="{coord(max(part, 1))}"'
                f' height="{row_height - 8}" fill="{OVERDUE_COLOUR}"/>'
            )
        body.append(
            f'<text x="{coord(label_width + full + 6)}" y="{mid}" fill="{INK}">{fmt(item.value)}'
            + (f' <tspan fill="{OVERDUE_INK}" font-weight="bold">({fmt(item.part)})</tspan>' if item.part else "")
            + "</text></g>"
        )
    if not bars:
        empty = text(description or "—")
        body.append(f'<text x="{label_width}" y="{legend + row_height / 2 + 4}" fill="{MUTED}">{empty}</text>')
    return document(width=width, height=height, title=title, description=description, body=body)
