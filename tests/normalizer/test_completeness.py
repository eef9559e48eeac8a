"""Completeness: a score and stable reasons, each of which an admin can pass on to the citizen."""

from __future__ import annotations

from adapters.contract import InboundMessage, Location, MediaRef
from normalizer.pipeline import Draft, Place, PlacePrecision, Routing
from normalizer.steps.completeness import POINTS, REASONS, ScoreCompleteness
from normalizer.steps.text_cleanup import CleanText

PHOTO = MediaRef(url="https://x/1.jpg", content_type="image/jpeg")
KELURAHAN = Place(kelurahan_name="Kenari", precision=PlacePrecision.KELURAHAN, evidence=["kel. kenari"])
GOOD_TEXT = "Jalan berlubang besar di depan pasar Kenari, sudah dua motor jatuh"


def score(
    text: str = GOOD_TEXT,
    *,
    place: Place = KELURAHAN,
    media: list[MediaRef] | None = None,
    location: Location | None = None,
    routing: Routing | None = None,
) -> Draft:
    draft = Draft(
        channel_id="x",
        original=InboundMessage(external_id="1", text=text),
        text=text,
        place=place,
        media=[PHOTO] if media is None else media,
        location=location,
        routing=routing or Routing(),
    )
    CleanText()(draft)
    ScoreCompleteness()(draft)
    return draft


def test_a_complete_report_scores_100_and_says_so() -> None:
    draft = score()
    assert (draft.completeness, draft.missing) == (100, [])
    assert draft.decisions[-1].reason.startswith("complete")


def test_too_short_counts_meaningful_words_not_greetings_handles_or_links() -> None:
    draft = score("@DKIJakarta Selamat pagi min, tolong pak, jalan rusak https://t.co/x")
    assert draft.missing == ["too_short"]
    assert draft.completeness == 100 - POINTS["too_short"]
    assert "2 meaningful words" in draft.decisions[-1].reason


def test_no_concrete_problem_when_no_problem_word_and_no_confident_category() -> None:
    draft = score("Mohon perhatian bapak gubernur untuk wilayah Kenari kami yang tercinta")
    assert draft.missing == ["no_concrete_problem"]
    assert draft.completeness == 80


def test_problem_words_count_with_their_affixes_and_after_slang_expansion() -> None:
    for text in (
        "Kerusakan jalan di depan sekolah makin parah setiap hari",
        "Rumah warga kebanjiran setiap hujan deras turun sore",
        "Lampu PJU di gang kami gk nyala sejak minggu lalu",  # "gk nyala" -> "tidak nyala"
        "Saluran air depan rumah tersumbat plastik dan daun kering",
    ):
        assert "no_concrete_problem" not in score(text).missing, text


def test_a_confident_category_counts_as_a_concrete_problem() -> None:
    text = "Mohon perhatian bapak gubernur untuk wilayah Kenari kami yang tercinta"
    confident = Routing(category_code="jalan", needs_choice=False, confidence=0.9)
    assert "no_concrete_problem" not in score(text, routing=confident).missing
    unsure = Routing(category_code="jalan", needs_choice=True, confidence=0.3)
    assert "no_concrete_problem" in score(text, routing=unsure).missing


def test_location_below_kelurahan_is_missing() -> None:
    for precision in (PlacePrecision.NONE, PlacePrecision.KOTA, PlacePrecision.KECAMATAN):
        place = Place(precision=precision, evidence=["jakarta selatan"] if precision != PlacePrecision.NONE else [])
        assert score(place=place).missing == ["location_below_kelurahan"], precision
    for precision in (PlacePrecision.KELURAHAN, PlacePrecision.STREET, PlacePrecision.POINT):
        assert score(place=Place(precision=precision, evidence=["x"])).missing == [], precision


def test_coordinates_in_jakarta_count_until_the_place_step_has_judged_them() -> None:
    inside = Location(lat=-6.2, lng=106.8)
    assert score(place=Place(), location=inside).missing == []
    outside = Location(lat=-6.9, lng=107.6)  # Bandung
    assert score(place=Place(), location=outside).missing == ["location_below_kelurahan"]
    judged = Place(precision=PlacePrecision.NONE, evidence=["coordinates outside every Jakarta kelurahan"])
    assert score(place=judged, location=inside).missing == ["location_below_kelurahan"]


def test_only_an_image_counts_as_a_photo() -> None:
    video = MediaRef(url="https://x/1.mp4", content_type="video/mp4")
    assert score(media=[]).missing == ["no_photo"]
    assert score(media=[video]).missing == ["no_photo"]
    untyped = MediaRef(url="https://x/foto.JPG?sig=1")
    assert score(media=[video, untyped]).missing == []


def test_every_reason_at_once_scores_zero_in_a_stable_order_with_texts_for_admin_and_citizen() -> None:
    draft = score("halo min", place=Place(), media=[])
    assert draft.missing == ["too_short", "no_concrete_problem", "location_below_kelurahan", "no_photo"]
    assert draft.completeness == 0
    for code in draft.missing:
        assert REASONS[code].admin_text in draft.decisions[-1].reason or code == "too_short"
        assert REASONS[code].citizen_text.startswith("Mohon")
    assert sum(POINTS.values()) == 100
