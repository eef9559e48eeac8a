"""Charts and maps: well-formed, accessible, escaped, and small enough to inline in a page."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from review_queue.svg import charts, maps, number, text
from review_queue.svg.maps import Shape

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script> & "Dinas" \x00\x1b'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.get("viewBox", "").startswith("0 0 ")
    assert "width" not in root.attrib, "sized by viewBox only: the page decides how wide"
    title = root.find(f"{NS}title")
    assert title is not None and title.text == root.get("aria-label")
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{NS}text")]


# -- charts ------------------------------------------------------------------------------------------


def test_stacked_bars_show_each_days_total_and_a_legend() -> None:
    svg = charts.stacked_bar_chart(
        ["18/08", "19/08", "20/08"],
        {"jaki:app": [120, 0, 1300], "twitter:dki": [5, 0, 7]},
        title="Laporan masuk per hari",
    )
    root = parse(svg)
    shown = texts(root)
    assert {"125", "1.307"} <= set(shown), "totals above the bars, thousands grouped the Indonesian way"
    assert "jaki:app (1.420)" in shown and "twitter:dki (12)" in shown
    assert {"18/08", "19/08", "20/08"} <= set(shown)
    segments = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(segments) == 4, "no rectangle for a zero"
    assert "".join(segments[0].itertext()) == "18/08, jaki:app: 120"


def test_labels_from_data_are_escaped() -> None:
    svg = charts.stacked_bar_chart(["1"], {EVIL: [3]}, title=EVIL, description=EVIL)
    assert "<script" not in svg
    root = parse(svg)
    assert root.get("aria-label") == '<script>alert("x")</script> & "Dinas" ', "control characters dropped"
    assert any(t.startswith("<script>") for t in texts(root)), "shown as text, not markup"
    bars = charts.horizontal_bar_chart([charts.Bar(EVIL, 5, 2)], title=EVIL)
    assert "<script" not in bars
    assert any("<script>" in t for t in texts(parse(bars)))


def test_beyond_seven_channels_the_rest_are_summed_in_grey() -> None:
    series = {f"ch{n}": [10 - n] for n in range(10)}
    root = parse(charts.stacked_bar_chart(["d"], series, title="t"))
    shown = texts(root)
    assert "Lainnya (10)" in shown, "ch6..ch9: 4 + 3 + 2 + 1"
    assert "ch5 (5)" in shown and not any(t.startswith("ch6") for t in shown)
    assert "55" in shown
    with pytest.raises(ValueError, match="2 values for 1 categories"):
        charts.stacked_bar_chart(["d"], {"a": [1, 2]}, title="t")


def test_an_empty_chart_is_still_a_chart() -> None:
    root = parse(charts.stacked_bar_chart(["a", "b"], {}, title="Kosong", description="Belum ada laporan"))
    assert "Belum ada laporan" in texts(root)
    assert parse(charts.horizontal_bar_chart([], title="Kosong"))


def test_horizontal_bars_write_open_and_overdue() -> None:
    bars = [charts.Bar("Dinas Bina Marga", 120, 15), charts.Bar("Dinas Sumber Daya Air", 40, 0)]
    root = parse(charts.horizontal_bar_chart(bars, title="Tunggakan per instansi"))
    shown = texts(root)
    assert "120 (15)" in shown and "40" in shown
    tooltips = ["".join(g.find(f"{NS}title").itertext()) for g in root.iter(f"{NS}g")]  # type: ignore[union-attr]
    assert tooltips == ["Dinas Bina Marga: 120 terbuka, 15 terlambat", "Dinas Sumber Daya Air: 40 terbuka"]
    widths = [float(r.get("width", 0)) for r in root.iter(f"{NS}rect") if r.get("height") == "16"]
    assert widths[0] > widths[2] > 0, "the longest value has the longest bar"
    assert abs(widths[1] / widths[0] - 15 / 120) < 0.01, "the overdue part is to scale"


def test_numbers_read_the_indonesian_way() -> None:
    assert (number(0), number(1234567), number(2.5), number(1234.5)) == ("0", "1.234.567", "2,5", "1.234,5")
    assert [charts.nice_step(v) for v in (0, 3, 7, 492, 1307)] == [1, 1, 2, 100, 500]
    assert text("a<b&c") == "a&lt;b&amp;c"


# -- kelurahan map -----------------------------------------------------------------------------------

GAMBIR, CIDENG = "31.71.01.1001", "31.71.01.1002"


def test_the_kelurahan_is_highlighted_among_its_neighbours() -> None:
    root = parse(maps.kelurahan_map(GAMBIR))
    paths = {p.get("data-code"): p for p in root.iter(f"{NS}path")}
    target = paths[GAMBIR]
    assert target.get("class") == "target" and target.get("fill") == maps.TARGET_FILL
    assert CIDENG in paths and paths[CIDENG].get("class") is None, "a neighbour, drawn grey"
    assert root.get("aria-label") == "Kelurahan Gambir"
    assert "Gambir" in texts(root) and "Cideng" in texts(root)
    alone = parse(maps.kelurahan_map(GAMBIR, neighbours=False))
    assert [p.get("data-code") for p in alone.iter(f"{NS}path")] == [GAMBIR]


def test_the_reports_point_is_drawn_or_said_to_be_far() -> None:
    near = parse(maps.kelurahan_map(GAMBIR, point=(-6.176, 106.826)))
    assert len(list(near.iter(f"{NS}circle"))) == 1
    far = parse(maps.kelurahan_map(GAMBIR, point=(-6.35, 106.9)))
    assert not list(far.iter(f"{NS}circle"))
    assert "Titik laporan jauh di luar kelurahan ini" in texts(far)


@pytest.mark.parametrize(
    "code",
    # The heaviest frames measured (many small neighbours), an island kelurahan and a coastal one.
    ["31.75.08.1004", "31.74.04.1003", "31.74.04.1005", "31.01.01.1003", "31.72.01.1005"],
)
def test_small_maps_stay_under_30_kb(code: str) -> None:
    west, south = maps.shapes()[code].bbox[:2]
    corner = (south - maps.POINT_REACH * 0.99, west - maps.POINT_REACH * 0.99)  # widest frame a point can ask for
    for point in (None, corner):
        svg = maps.kelurahan_map(code, point=point)
        assert len(svg.encode()) <= maps.MAP_BYTES
        parse(svg)


def test_an_unknown_kelurahan_is_refused() -> None:
    with pytest.raises(maps.UnknownKelurahan):
        maps.kelurahan_map("31.99.99.9999")


# -- choropleth --------------------------------------------------------------------------------------


def test_the_choropleth_shades_every_kelurahan_in_five_classes() -> None:
    codes = sorted(maps.shapes())
    values = {code: n % 50 for n, code in enumerate(codes)}
    values[GAMBIR] = 1000
    svg = maps.choropleth(values)
    root = parse(svg)
    paths = {p.get("data-code"): p for p in root.iter(f"{NS}path")}
    assert set(paths) == set(codes) and len(codes) == 267
    assert paths[GAMBIR].get("fill") == maps.RAMP[-1]
    assert "".join(paths[GAMBIR].itertext()) == "Gambir: 1.000"
    zero = next(c for c in codes if values[c] == 0)
    assert paths[zero].get("fill") == maps.ZERO_COLOUR
    assert {p.get("fill") for p in paths.values()} == {maps.ZERO_COLOUR, *maps.RAMP}
    shown = texts(root)
    assert "Kepulauan Seribu" in shown and "tidak ada" in shown
    assert len([t for t in shown if t[0].isdigit()]) == 5, "five classes in the legend"
    assert len(svg.encode()) < 120_000, "inlined in the dashboard: keep it near its measured 90 KB"


def test_class_breaks() -> None:
    assert maps.class_breaks(range(1, 101)) == [20, 40, 60, 80, 100]
    assert maps.class_breaks([0, 0, 3, 3, 3]) == [3]
    assert maps.class_breaks([]) == []
    assert maps.class_breaks([1, 2]) == [1, 2]
    empty = parse(maps.choropleth({}))
    assert {p.get("fill") for p in empty.iter(f"{NS}path")} == {maps.ZERO_COLOUR}


def test_the_choropleth_geometry_is_built_once() -> None:
    maps.choropleth({})
    before = maps._layout.cache_info().misses
    maps.choropleth({GAMBIR: 3})
    assert maps._layout.cache_info().misses == before


# -- geometry ----------------------------------------------------------------------------------------


def test_holes_and_several_polygons_become_subpaths() -> None:
    outer = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0))
    hole = ((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6), (0.4, 0.4))
    island = ((2.0, 0.0), (3.0, 0.0), (3.0, 1.0), (2.0, 0.0))
    shape = Shape(code="x", name="x", polygons=((outer, hole), (island,)), bbox=(0, 0, 3, 1), label_at=(0.5, 0.5))
    project = maps.Projection(shape.bbox, (0, 0, 300, 100))
    d = maps.shape_path(shape, project, tolerance=0.1)
    assert d.count("M") == 3 and d.count("z") == 3
    assert d.startswith("M0 100l"), "north up: the south-west corner is at the bottom left"


def test_simplify_drops_only_what_stays_within_tolerance() -> None:
    line = [(float(x), 0.0) for x in range(10)]
    assert maps.simplify(line, 0.1) == [(0.0, 0.0), (9.0, 0.0)]
    zigzag = [(0.0, 0.0), (1.0, 0.52), (2.0, 1.0), (3.0, 0.0)]  # (1, .52) lies .02 off the first leg
    assert maps.simplify(zigzag, 0.1) == [(0.0, 0.0), (2.0, 1.0), (3.0, 0.0)]


def test_clip_keeps_the_part_inside_the_box() -> None:
    square = [(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)]
    clipped = maps.clip(square, (0, 0, 10, 10))
    assert sorted(clipped) == [(0.0, 0.0), (0.0, 5.0), (5.0, 0.0), (5.0, 5.0)]
    assert maps.clip(square, (20, 20, 30, 30)) == []


def test_paths_round_to_a_tenth_without_drift() -> None:
    ring = [(0.04, 0.0), (10.06, 0.0), (10.06, 10.04), (0.0, 10.0), (0.04, 0.0)]
    assert maps.ring_path(ring) == "M0 0l10.1 0 0 10-10.1 0z"
    assert maps.ring_path([(0.0, 0.0), (0.01, 0.0), (0.0, 0.01)]) == ""
    assert maps.ring_path([(0.0, 0.0), (0.01, 0.0), (0.0, 0.01)], keep_dots=True) == "M0 0z"
