"""Maps of Jakarta's kelurahan as SVG, from the boundaries shipped in normalizer/data (see its NOTICE).

* `kelurahan_map`: one kelurahan highlighted among its neighbours, with the report's point if it has
  one: what the decision screen shows beside an address.
* `choropleth`: every kelurahan shaded by a count (open reports), in five classes, with the
  Kepulauan Seribu islands in an inset at their own scale.

Projection: equirectangular, longitudes shrunk by cos(latitude) at the map's middle. Over a city
6 degrees from the equator that is within a fraction of a percent of a conformal projection, and it
needs no library. Rings are simplified (Douglas-Peucker, tolerance in output units) and written as
relative moves at 0.1 unit, so a small map stays a few kilobytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from normalizer.gazetteer import load_gazetteer
from review_queue.svg import attr, coord, document, number, text

Point = tuple[float, float]
Ring = tuple[Point, ...]
BBox = tuple[float, float, float, float]  # min x, min y, max x, max y (lng/lat or output units)

#: Kemendagri code prefix of Kabupaten Kepulauan Seribu: 110 islands far out in the bay.
ISLANDS_PREFIX = "31.01."
#: ColorBrewer YlOrRd, five classes: readable in grey and by people with colour-vision deficiencies.
RAMP = ("#FFFFB2", "#FECC5C", "#FD8D3C", "#F03B20", "#BD0026")
ZERO_COLOUR = "#F2F2F2"
TARGET_FILL = "#FDB863"
TARGET_EDGE = "#8C2D04"
NEIGHBOUR_FILL = "#E9E9E9"
NEIGHBOUR_EDGE = "#A0A0A0"
POINT_COLOUR = "#0072B2"
INK = "#222222"
MUTED = "#555555"
#: How far (degrees) a report's point may lie outside its kelurahan and still be drawn on the small map.
POINT_REACH = 0.02


class UnknownKelurahan(KeyError):
    """No shipped boundary has this kelurahan code."""


# -- geometry ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """One kelurahan: code, name, polygons (each an outer ring then its holes, in (lng, lat)), bbox."""

    code: str
    name: str
    polygons: tuple[tuple[Ring, ...], ...]
    bbox: BBox
    #: Where its name goes: the centroid the data ships, (lng, lat).
    label_at: Point


def _bbox(points: Iterable[Point]) -> BBox:
    xs, ys = zip(*points, strict=True)
    return (min(xs), min(ys), max(xs), max(ys))


def _intersects(a: BBox, b: BBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@cache
def shapes() -> dict[str, Shape]:
    """Every kelurahan's boundary by code, read once per process."""
    raw = (resources.files("normalizer") / "data" / "kelurahan.geojson").read_text(encoding="utf-8")
    out: dict[str, Shape] = {}
    for feature in json.loads(raw)["features"]:
        props, geometry = feature["properties"], feature["geometry"]
        parts = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        polygons = tuple(tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in rings) for rings in parts)
        out[props["kode"]] = Shape(
            code=props["kode"],
            name=props["nama"],
            polygons=polygons,
            bbox=_bbox(p for polygon in polygons for p in polygon[0]),
            label_at=(float(props["lng"]), float(props["lat"])),
        )
    return out


class Projection:
    """Equirectangular (lng scaled by cos of the middle latitude), fitted and centred in an output box."""

    def __init__(self, bbox: BBox, box: BBox) -> None:
        min_lng, min_lat, max_lng, max_lat = bbox
        self.kx = math.cos(math.radians((min_lat + max_lat) / 2))
        span_x, span_y = max((max_lng - min_lng) * self.kx, 1e-9), max(max_lat - min_lat, 1e-9)
        width, height = box[2] - box[0], box[3] - box[1]
        self.scale = min(width / span_x, height / span_y)
        self.x0 = box[0] + (width - span_x * self.scale) / 2
        self.y0 = box[1] + (height - span_y * self.scale) / 2
        self.min_lng, self.max_lat = min_lng, max_lat

    def __call__(self, lng: float, lat: float) -> Point:
        return (
            self.x0 + (lng - self.min_lng) * self.kx * self.scale,
            self.y0 + (self.max_lat - lat) * self.scale,
        )

    def inverse(self, x: float, y: float) -> Point:
        """The (lng, lat) drawn at output point (x, y)."""
        return (
            self.min_lng + (x - self.x0) / (self.kx * self.scale),
            self.max_lat - (y - self.y0) / self.scale,
        )


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = dx * dx + dy * dy
    if length == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1])
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def simplify(points: Sequence[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker: the fewest of `points` that stay within `tolerance` of the line; ends kept.

    Iterative (an explicit stack), so a long coastline cannot hit the recursion limit. A closed ring
    (first point == last) works too: its first span is measured from that one point.
    """
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        worst, at = 0.0, -1
        for i in range(first + 1, last):
            distance = _segment_distance(points[i], points[first], points[last])
            if distance > worst:
                worst, at = distance, i
        if at >= 0 and worst > tolerance:
            keep[at] = True
            stack.append((first, at))
            stack.append((at, last))
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def clip(ring: Sequence[Point], box: BBox) -> list[Point]:
    """Sutherland-Hodgman: the part of a polygon ring inside an axis-aligned box (may be empty).

    Parts of a concave ring that leave and re-enter the box are joined along its edge: invisible,
    since the edge is the map's border.
    """
    out = list(ring)
    for axis, limit, keep_below in ((0, box[0], False), (0, box[2], True), (1, box[1], False), (1, box[3], True)):
        if not out:
            break

        def inside(p: Point, axis: int = axis, limit: float = limit, keep_below: bool = keep_below) -> bool:
            return p[axis] <= limit if keep_below else p[axis] >= limit

        def cross(a: Point, b: Point, axis: int = axis, limit: float = limit) -> Point:
            t = (limit - a[axis]) / (b[axis] - a[axis])
            return (limit, a[1] + t * (b[1] - a[1])) if axis == 0 else (a[0] + t * (b[0] - a[0]), limit)

        source, out = out, []
        previous = source[-1]
        for current in source:
            if inside(current):
                if not inside(previous):
                    out.append(cross(previous, current))
                out.append(current)
            elif inside(previous):
                out.append(cross(previous, current))
            previous = current
    return out


def ring_path(points: Sequence[Point], *, keep_dots: bool = False) -> str:
    """SVG path data for one closed ring: an absolute move, then relative lines at 0.1 unit.

    Deltas are taken between rounded points, so rounding errors never add up along the ring. A ring
    that rounds to fewer than three points is dropped, or with `keep_dots` drawn as a dot (a zero-length
    subpath, which a round line cap paints): a tiny island must not vanish from the map.
    """
    tenths: list[tuple[int, int]] = []
    for x, y in points:
        p = (round(x * 10), round(y * 10))
        if not tenths or p != tenths[-1]:
            tenths.append(p)
    if len(tenths) > 1 and tenths[0] == tenths[-1]:
        tenths.pop()
    if len(tenths) < 3:
        if keep_dots and tenths:
            x, y = tenths[0]
            return f"M{coord(x / 10)} {coord(y / 10)}z"
        return ""
    x, y = tenths[0]
    parts = [f"M{coord(x / 10)} {coord(y / 10)}l"]
    numbers: list[str] = []
    for nx, ny in tenths[1:]:
        numbers.append(coord((nx - x) / 10))
        numbers.append(coord((ny - y) / 10))
        x, y = nx, ny
    parts.append(_join_numbers(numbers))
    parts.append("z")
    return "".join(parts)


def _join_numbers(numbers: Sequence[str]) -> str:
    # A minus sign already separates two numbers in path data ("1-2"): a space only where none is.
    out: list[str] = []
    for n, value in enumerate(numbers):
        if n and not value.startswith("-"):
            out.append(" ")
        out.append(value)
    return "".join(out)


def shape_path(
    shape: Shape, project: Projection, *, tolerance: float, box: BBox | None = None, keep_dots: bool = False
) -> str:
    """Path data for every ring of `shape` (holes included: draw with fill-rule="evenodd")."""
    parts: list[str] = []
    for polygon in shape.polygons:
        for ring in polygon:
            projected = [project(lng, lat) for lng, lat in ring]
            if box is not None:
                projected = clip(projected, box)
                if len(projected) < 3:
                    continue
                projected.append(projected[0])
            parts.append(ring_path(simplify(projected, tolerance), keep_dots=keep_dots))
    return "".join(parts)


# -- one kelurahan -----------------------------------------------------------------------------------


def kelurahan_map(
    code: str,
    neighbours: bool = True,
    *,
    point: tuple[float, float] | None = None,
    width: int = 320,
    height: int = 240,
    title: str | None = None,
    point_label: str = "Titik laporan",
    point_outside: str = "Titik laporan jauh di luar kelurahan ini",
) -> str:
    """A small map of kelurahan `code` (filled, outlined) among its neighbours (grey, named).

    `point` is the report's (lat, lng): drawn as a dot, the map widened to show it when it lies
    within POINT_REACH degrees of the kelurahan; farther away, a note says so instead. The result
    stays under MAP_BYTES (coarser outlines where a frame holds many neighbours). Raises
    `UnknownKelurahan` for a code with no boundary.
    """
    where = (float(point[0]), float(point[1])) if point is not None else None  # hashable, for the cache
    return _kelurahan_map(code, neighbours, where, width, height, title, point_label, point_outside)


#: The most a small map may weigh: it is inlined in the decision screen of every report.
MAP_BYTES = 30_000


@lru_cache(maxsize=256)  # a few MB at most; the queue shows the same kelurahan again and again
def _kelurahan_map(
    code: str,
    neighbours: bool,
    point: tuple[float, float] | None,
    width: int,
    height: int,
    title: str | None,
    point_label: str,
    point_outside: str,
) -> str:
    try:
        target = shapes()[code]
    except KeyError:
        raise UnknownKelurahan(code) from None
    frame = target.bbox
    near_point: Point | None = None
    far_point = False
    if point is not None:
        lng, lat = point[1], point[0]
        reach = (frame[0] - POINT_REACH, frame[1] - POINT_REACH, frame[2] + POINT_REACH, frame[3] + POINT_REACH)
        if _intersects((lng, lat, lng, lat), reach):
            near_point = (lng, lat)
            frame = (min(frame[0], lng), min(frame[1], lat), max(frame[2], lng), max(frame[3], lat))
        else:
            far_point = True
    # A margin around the kelurahan so its neighbours show: a third of its size, at least ~400 m.
    pad = max(frame[2] - frame[0], frame[3] - frame[1]) / 3 + 0.004 if neighbours else 0.0005
    frame = (frame[0] - pad, frame[1] - pad, frame[2] + pad, frame[3] + pad)
    project = Projection(frame, (0, 0, width, height))
    # What the box shows, corner to corner, is wider than `frame` along one axis: draw all of it.
    west, north = project.inverse(0, 0)
    east, south = project.inverse(width, height)
    visible = (west, south, east, north)
    clip_box = (-2, -2, width + 2, height + 2)
    others = [s for s in shapes().values() if neighbours and s.code != code and _intersects(s.bbox, visible)]
    # Projected and clipped once; only the simplification is redone if the map comes out too heavy.
    drawn = {s.code: _projected_rings(s, project, clip_box) for s in (*others, target)}
    name = f"Kelurahan {target.name}"
    labels: list[tuple[Point, str, bool]] = [(project(*target.label_at), target.name, True)]
    labels += [(project(*s.label_at), s.name, False) for s in others if drawn[s.code]]
    tail: list[str] = _place_labels(labels, width, height)
    if near_point is not None:
        x, y = project(*near_point)
        tail.append(
            f'<circle cx="{coord(x)}" cy="{coord(y)}" r="5" fill="{POINT_COLOUR}" stroke="#FFFFFF"'
            f' stroke-width="2"><title>{text(point_label)}</title></circle>'
        )
    if far_point:
        tail.append(
            f'<rect y="{height - 22}" width="{width}" height="22" fill="#FFFFFF" fill-opacity=".9"/>'
            f'<text x="6" y="{height - 7}" fill="{TARGET_EDGE}" font-size="11" font-weight="bold">'
            f"{text(point_outside)}</text>"
        )
    tolerance = 0.4
    while True:
        # White: sea, or land beyond Jakarta (the data cannot tell which).
        body: list[str] = [f'<rect width="{width}" height="{height}" fill="#FFFFFF"/>']
        if others:
            body.append(f'<g fill="{NEIGHBOUR_FILL}" stroke="{NEIGHBOUR_EDGE}" stroke-width=".8" fill-rule="evenodd">')
            for shape in others:
                # Neighbours are context: coarser than the kelurahan itself.
                d = _rings_path(drawn[shape.code], tolerance * 1.5)
                if d:
                    body.append(
                        f'<path d="{d}" data-code="{attr(shape.code)}"><title>{text(shape.name)}</title></path>'
                    )
            body.append("</g>")
        body.append(
            f'<path class="target" d="{_rings_path(drawn[code], tolerance)}" data-code="{attr(code)}"'
            f' fill="{TARGET_FILL}" fill-opacity=".85" stroke="{TARGET_EDGE}" stroke-width="2"'
            f' stroke-linejoin="round" stroke-linecap="round" fill-rule="evenodd"><title>{text(name)}</title></path>'
        )
        body.extend(tail)
        svg = document(width=width, height=height, title=title or name, body=body, css_class="kelurahan-map")
        if len(svg.encode()) <= MAP_BYTES or tolerance > 8:
            return svg
        tolerance *= 1.6


def _projected_rings(shape: Shape, project: Projection, box: BBox) -> list[list[Point]]:
    out = []
    for polygon in shape.polygons:
        for ring in polygon:
            projected = clip([project(lng, lat) for lng, lat in ring], box)
            if len(projected) >= 3:
                projected.append(projected[0])
                out.append(projected)
    return out


def _rings_path(rings: Iterable[Sequence[Point]], tolerance: float) -> str:
    return "".join(ring_path(simplify(ring, tolerance), keep_dots=True) for ring in rings)


def _place_labels(labels: Sequence[tuple[Point, str, bool]], width: float, height: float) -> list[str]:
    """Names at their centroids, the first (the target) always; others only where they overlap nothing."""
    placed: list[BBox] = []
    out: list[str] = []
    for (x, y), name, main in labels:
        size = 12 if main else 9
        half = len(name) * size * 0.3  # about half the width of the name in a sans-serif face
        box = (x - half, y - size, x + half, y + 2)
        if not main and (box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height):
            continue
        if not main and any(_intersects(box, other) for other in placed):
            continue
        placed.append(box)
        weight = ' font-weight="bold"' if main else ""
        out.append(
            f'<text x="{coord(x)}" y="{coord(y)}" text-anchor="middle" font-size="{size}"{weight}'
            f' fill="{INK if main else MUTED}" stroke="#FFFFFF" stroke-width="3" paint-order="stroke"'
            f' stroke-linejoin="round">{text(name)}</text>'
        )
    return out


# -- all of Jakarta ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Area:
    code: str
    name: str
    d: str
    island: bool


@dataclass(frozen=True)
class _Layout:
    """The choropleth's projected geometry, the same for every call: built once per process."""

    width: int
    height: int
    areas: tuple[_Area, ...]
    inset: BBox
    legend_at: Point
    kota_labels: tuple[tuple[Point, str], ...]


@cache
def _layout() -> _Layout:
    width, height = 960, 760
    mainland = [s for s in shapes().values() if not s.code.startswith(ISLANDS_PREFIX)]
    islands = [s for s in shapes().values() if s.code.startswith(ISLANDS_PREFIX)]
    main_box: BBox = (8, 8, 712, height - 8)
    inset: BBox = (736, 30, 952, 420)
    project = Projection(_union(s.bbox for s in mainland), main_box)
    areas = [_Area(s.code, s.name, shape_path(s, project, tolerance=0.5), island=False) for s in mainland]
    inside_inset = (inset[0] + 8, inset[1] + 8, inset[2] - 8, inset[3] - 8)
    inset_project = Projection(_union(s.bbox for s in islands), inside_inset)
    areas += [
        _Area(s.code, s.name, shape_path(s, inset_project, tolerance=0.3, keep_dots=True), island=True) for s in islands
    ]
    kota_labels = []
    for region in load_gazetteer().regions.values():
        if region.level != "kota" or region.code + "." == ISLANDS_PREFIX:
            continue
        # The kota's name at the mean of its kelurahan's centroids: inside it for Jakarta's compact kota.
        centres = [s.label_at for s in mainland if s.code.startswith(region.code + ".")]
        if centres:
            lng = sum(c[0] for c in centres) / len(centres)
            lat = sum(c[1] for c in centres) / len(centres)
            kota_labels.append((project(lng, lat), region.short_name))
    return _Layout(
        width=width,
        height=height,
        areas=tuple(areas),
        inset=inset,
        legend_at=(inset[0], inset[3] + 40),
        kota_labels=tuple(kota_labels),
    )


def _union(boxes: Iterable[BBox]) -> BBox:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def class_breaks(values: Iterable[int], classes: int = len(RAMP)) -> list[int]:
    """Upper bounds of up to `classes` classes of the positive values, by quantile (each class about as
    many kelurahan), rounded to whole counts and never repeated; the last bound is the maximum."""
    positive = sorted(v for v in values if v > 0)
    if not positive:
        return []
    bounds: list[int] = []
    for k in range(1, classes + 1):
        # Nearest rank: the value below which k/classes of the kelurahan lie.
        bound = positive[max(0, math.ceil(len(positive) * k / classes) - 1)]
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return bounds


def _colours_for(bounds: Sequence[int]) -> list[str]:
    if len(bounds) == 1:
        return [RAMP[-2]]
    # Fewer classes than colours: spread them over the ramp so neighbours still differ clearly.
    return [RAMP[round(n * (len(RAMP) - 1) / (len(bounds) - 1))] for n in range(len(bounds))]


def choropleth(
    values: Mapping[str, int],
    *,
    title: str = "Laporan terbuka per kelurahan",
    legend_title: str = "Laporan terbuka",
    zero_label: str = "tidak ada",
    islands_label: str = "Kepulauan Seribu",
    islands_note: str = "(skala berbeda)",
    fmt: Callable[[float], str] = number,
) -> str:
    """Every kelurahan shaded by its value (missing codes count 0): five quantile classes, zero in grey.

    Each kelurahan carries its code (`data-code`) and a tooltip "name: value". The geometry is
    projected once per process; a call only picks colours and writes the string.
    """
    layout = _layout()
    bounds = class_breaks(values.values())
    colours = _colours_for(bounds)

    def colour(value: int) -> str:
        if value <= 0:
            return ZERO_COLOUR
        for bound, fill in zip(bounds, colours, strict=True):
            if value <= bound:
                return fill
        return colours[-1]

    body: list[str] = ['<g stroke="#FFFFFF" stroke-width=".6" stroke-linejoin="round" fill-rule="evenodd">']
    islands: list[str] = []
    for area in layout.areas:
        value = int(values.get(area.code, 0))
        fill = colour(value)
        stroke = f' stroke="{fill}" stroke-width="1.5" stroke-linecap="round"' if area.island else ""
        element = (
            f'<path d="{area.d}" fill="{fill}"{stroke} data-code="{attr(area.code)}">'
            f"<title>{text(area.name)}: {fmt(value)}</title></path>"
        )
        (islands if area.island else body).append(element)
    body.append("</g>")
    for (x, y), name in layout.kota_labels:
        body.append(
            f'<text x="{coord(x)}" y="{coord(y)}" text-anchor="middle" font-size="13" font-weight="bold"'
            f' fill="{INK}" fill-opacity=".75" stroke="#FFFFFF" stroke-width="3" paint-order="stroke"'
            f' pointer-events="none">{text(name)}</text>'
        )
    x0, y0, x1, y1 = layout.inset
    body.append(
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="#F7FBFF" stroke="{MUTED}"/>'
        f'<text x="{x0}" y="{y0 - 14}" fill="{INK}" font-weight="bold">{text(islands_label)}</text>'
        f'<text x="{x0}" y="{y0 - 2}" fill="{MUTED}" font-size="10">{text(islands_note)}</text>'
        '<g fill-rule="evenodd" stroke-linejoin="round">'
    )
    body.extend(islands)
    body.append("</g>")
    body.extend(_legend(layout.legend_at, bounds, colours, legend_title, zero_label, fmt))
    return document(width=layout.width, height=layout.height, title=title, body=body, css_class="choropleth")


def _legend(
    at: Point, bounds: Sequence[int], colours: Sequence[str], title: str, zero_label: str, fmt: Callable[[float], str]
) -> list[str]:
    x, y = at
    out = [f'<text x="{coord(x)}" y="{coord(y)}" fill="{INK}" font-weight="bold">{text(title)}</text>']
    rows = [(ZERO_COLOUR, zero_label)]
    lower = 1
    for bound, fill in zip(bounds, colours, strict=True):
        rows.append((fill, fmt(bound) if bound == lower else f"{fmt(lower)}–{fmt(bound)}"))
        lower = bound + 1
    for n, (fill, label) in enumerate(rows):
        top = y + 12 + n * 22
        out.append(
            f'<rect x="{coord(x)}" y="{coord(top)}" width="18" height="14" fill="{fill}" stroke="#999999"'
            f' stroke-width=".5"/><text x="{coord(x + 26)}" y="{coord(top + 11)}" fill="{INK}">{text(label)}</text>'
        )
    return out
