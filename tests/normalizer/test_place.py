"""The place step: what an admin sees as the report's location, from informal Jakarta text and coordinates."""

from __future__ import annotations

import pytest

from adapters.contract import InboundMessage, Location
from normalizer.gazetteer import _in_polygon, load_gazetteer
from normalizer.pipeline import Decision, Draft, Pipeline, Place, PlacePrecision
from normalizer.steps.place import FindPlace
from normalizer.textforms import analysis_form

JAKPUS, JAKUT, JAKBAR, JAKSEL, JAKTIM, SERIBU = "31.71", "31.72", "31.73", "31.74", "31.75", "31.01"


def locate(text: str, location: Location | None = None) -> tuple[Place, Decision]:
    """Runs only the place step, on the analysis form the pipeline would hand it."""
    draft = Pipeline([FindPlace()]).run(
        InboundMessage(external_id="m1", text=text, location=location), channel_id="api:x"
    )
    draft.analysis_text = analysis_form(draft.text)
    draft.decisions.clear()
    FindPlace()(draft)
    [decision] = [d for d in draft.decisions if d.step == "place"]
    return draft.place, decision


def codes(place: Place) -> tuple[str | None, str | None, str | None]:
    return place.kota_code, place.kecamatan_code, place.kelurahan_code


# -- kota: short forms and long forms -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kota"),
    [
        ("banjir lagi di jakut, tolong", JAKUT),
        ("Jaksel macet parah tiap pagi", JAKSEL),
        ("lampu jalan mati, jakpus", JAKPUS),
        ("sampah menumpuk wilayah Jakbar", JAKBAR),
        ("pohon tumbang jaktim", JAKTIM),
        ("kapal terlambat di Kep. Seribu", SERIBU),
        ("dermaga rusak di Kepulauan Seribu", SERIBU),
        ("air bersih susah di pulau seribu", SERIBU),
        ("trotoar rusak di Jakarta Utara", JAKUT),
        ("trotoar rusak di Jkt Utara", JAKUT),
        ("macet di kota Jakarta Selatan", JAKSEL),
        ("banjir di Kota Administrasi Jakarta Barat", JAKBAR),
    ],
)
def test_kota_short_and_long_forms_give_the_kota_code(text: str, kota: str) -> None:
    place, decision = locate(text)
    assert codes(place) == (kota, None, None)
    assert place.precision is PlacePrecision.KOTA
    assert place.kota_name == load_gazetteer().region(kota).name
    assert decision.value == kota


def test_kota_name_is_official_and_the_address_uses_the_everyday_form() -> None:
    place, _ = locate("jalan berlubang di jakpus")
    assert place.kota_name == "Kota Administrasi Jakarta Pusat"
    assert place.address_text == "Jakarta Pusat"


# -- typos ---------------------------------------------------------------------------------------------


def test_one_typo_in_a_long_name_is_forgiven_with_lower_confidence() -> None:
    place, decision = locate("Got mampet di Cempaka Putih Timurr sejak kemarin")
    assert codes(place) == (JAKPUS, "31.71.05", "31.71.05.1001")
    assert place.kelurahan_name == "Cempaka Putih Timur"
    assert any("one typo" in e for e in place.evidence)
    _, exact = locate("Got mampet di Cempaka Putih Timur sejak kemarin")
    assert decision.confidence < exact.confidence


def test_typo_in_the_second_word_of_a_kecamatan() -> None:
    place, _ = locate("banjir di Kebayoran Bru")
    assert codes(place) == (JAKSEL, "31.74.07", None)
    assert place.kecamatan_name == "Kebayoran Baru"
    assert place.precision is PlacePrecision.KECAMATAN


def test_names_written_apart_or_together_are_the_same_place() -> None:
    apart, _ = locate("jalan rusak di kel. kramat jati")
    together, _ = locate("jalan rusak di kel. kramatjati")
    assert codes(apart) == codes(together) == (JAKTIM, "31.75.04", "31.75.04.1001")


def test_typos_are_not_forgiven_in_short_names() -> None:
    place, _ = locate("banjir di Kojo")  # Koja has 4 letters: one edit is too much of it
    assert place.precision is PlacePrecision.NONE


# -- street and RT/RW ----------------------------------------------------------------------------------


def test_street_rt_rw_kelurahan_kecamatan_and_kota_make_the_full_address() -> None:
    place, decision = locate(
        "Jalan berlubang di Jl. Kramat Raya No. 5 RT 05/RW 02 Kel. Kenari Kec. Senen Jakarta Pusat"
    )
    assert codes(place) == (JAKPUS, "31.71.04", "31.71.04.1002")
    assert (place.street, place.rt, place.rw) == ("Jl. Kramat Raya No. 5", "005", "002")
    assert place.precision is PlacePrecision.STREET
    assert place.address_text == "Jl. Kramat Raya No. 5, RT 005/RW 002, Kel. Kenari, Kec. Senen, Jakarta Pusat"
    assert decision.value == "31.71.04.1002"
    assert decision.confidence >= 0.9


@pytest.mark.parametrize(
    ("text", "street"),
    [
        ("Jln Kebon Sirih no 12 lampunya mati", "Jl. Kebon Sirih No. 12"),
        ("macet total di jalan Daan Mogot km 5", "Jl. Daan Mogot Km 5"),
        ("lubang besar di jl. kramat raya depan toko", "Jl. Kramat Raya"),
        ("saluran mampet di Gg. Kelinci", "Gg. Kelinci"),
        ("trotoar rusak di Jalan KH Mas Mansyur", "Jl. KH Mas Mansyur"),
    ],
)
def test_streets_are_found_and_written_the_standard_way(text: str, street: str) -> None:
    place, decision = locate(text)
    assert place.street == street
    assert place.precision is PlacePrecision.NONE, "a street alone does not say which kelurahan"
    assert codes(place) == (None, None, None)
    assert decision.value is None


def test_a_street_named_after_an_area_does_not_invent_that_area() -> None:
    place, _ = locate("pohon tumbang di jalan menteng raya")
    assert place.street == "Jl. Menteng Raya"
    assert codes(place) == (None, None, None)


@pytest.mark.parametrize("text", ["jalan rusak parah tolong", "jln berlubang bikin jatuh", "jalan raya gelap"])
def test_jalan_as_a_common_noun_is_not_a_street(text: str) -> None:
    place, _ = locate(text)
    assert place.street is None


def test_street_with_only_a_kota_keeps_the_street_at_kota_precision() -> None:
    place, _ = locate("Jl. Raya Bogor km 20 Jakarta Timur banjir")
    assert place.street == "Jl. Raya Bogor Km 20"
    assert codes(place) == (JAKTIM, None, None)
    assert place.precision is PlacePrecision.KOTA


@pytest.mark.parametrize(
    ("text", "rt", "rw"),
    [
        ("warga RT 05/RW 02 mengeluh", "005", "002"),
        ("warga rt.5 rw.2 mengeluh", "005", "002"),
        ("warga RT005/RW002 mengeluh", "005", "002"),
        ("warga RT/RW 07/11 mengeluh", "007", "011"),
        ("warga rt 3 mengeluh", "003", None),
    ],
)
def test_rt_rw_are_read_in_every_common_spelling_and_padded_to_three_digits(text: str, rt: str, rw: str | None) -> None:
    place, _ = locate(text)
    assert (place.rt, place.rw) == (rt, rw)


def test_rt_rw_inside_a_known_kelurahan_is_street_precision() -> None:
    place, _ = locate("got mampet rt 5 rw 2 kelurahan cideng")
    assert place.precision is PlacePrecision.STREET
    assert place.address_text == "RT 005/RW 002, Kel. Cideng, Kec. Gambir, Jakarta Pusat"


# -- a name that is both a kelurahan and a kecamatan ---------------------------------------------------


def test_kelurahan_cue_picks_the_kelurahan() -> None:
    place, _ = locate("sampah menumpuk di kel. Gambir")
    assert codes(place) == (JAKPUS, "31.71.01", "31.71.01.1001")
    assert place.precision is PlacePrecision.KELURAHAN


def test_kecamatan_cue_picks_the_kecamatan_only() -> None:
    place, _ = locate("sampah menumpuk di kecamatan Gambir")
    assert codes(place) == (JAKPUS, "31.71.01", None)
    assert place.precision is PlacePrecision.KECAMATAN


def test_without_cue_only_the_certain_level_is_kept_and_the_evidence_says_why() -> None:
    place, decision = locate("banjir di Gambir, Jakarta Pusat")
    assert codes(place) == (JAKPUS, "31.71.01", None), "kelurahan or kecamatan Gambir: only the kecamatan is sure"
    assert any("kelurahan Gambir" in e and "kept only kecamatan Gambir" in e for e in place.evidence)
    assert decision.confidence < 0.9


def test_another_kelurahan_mentioned_chooses_the_kecamatan_reading() -> None:
    place, _ = locate("jalan rusak di kelurahan Cideng, Gambir")
    assert codes(place) == (JAKPUS, "31.71.01", "31.71.01.1002")
    assert place.kelurahan_name == "Cideng"


def test_same_name_in_different_kecamatan_resolved_by_the_kecamatan_mentioned() -> None:
    # Jatinegara is a kecamatan, and also a kelurahan of kecamatan Cakung.
    place, _ = locate("banjir di Jatinegara, Cakung")
    assert codes(place) == (JAKTIM, "31.75.06", "31.75.06.1001")
    place, _ = locate("banjir di kec. Jatinegara")
    assert codes(place) == (JAKTIM, "31.75.03", None)


def test_same_name_in_different_kecamatan_left_at_the_common_kota() -> None:
    place, _ = locate("banjir di Jatinegara Jakarta Timur")
    assert codes(place) == (JAKTIM, None, None)
    assert place.precision is PlacePrecision.KOTA


# -- a kelurahan name shared by two kecamatan ----------------------------------------------------------


def test_bare_kelurahan_name_resolved_by_the_kecamatan_mentioned() -> None:
    # "Gandaria" is Gandaria Selatan (kec. Cilandak) or Gandaria Utara (kec. Kebayoran Baru).
    utara, _ = locate("lampu mati di Gandaria, Kebayoran Baru")
    selatan, _ = locate("lampu mati di Gandaria kec. Cilandak")
    assert codes(utara) == (JAKSEL, "31.74.07", "31.74.07.1009")
    assert codes(selatan) == (JAKSEL, "31.74.06", "31.74.06.1004")


def test_bare_kelurahan_name_left_at_the_common_kota_when_nothing_disambiguates() -> None:
    place, decision = locate("lampu mati di Gandaria")
    assert codes(place) == (JAKSEL, None, None)
    assert place.precision is PlacePrecision.KOTA
    assert any("Gandaria Selatan" in e and "Gandaria Utara" in e for e in place.evidence)
    assert decision.value == JAKSEL


def test_shared_name_across_kota_boundaries_inside_one_kota_keeps_the_kota() -> None:
    # Gunung Sahari Utara is in Sawah Besar, Gunung Sahari Selatan in Kemayoran: both Jakarta Pusat.
    place, _ = locate("warga gunung sahari mengeluh banjir")
    assert codes(place) == (JAKPUS, None, None)


# -- coordinates -----------------------------------------------------------------------------------------


def test_coordinates_inside_jakarta_fill_every_level() -> None:
    lat, lng = load_gazetteer().centroids["31.71.01.1001"]
    place, decision = locate("lampu mati", Location(lat=lat, lng=lng))
    assert codes(place) == (JAKPUS, "31.71.01", "31.71.01.1001")
    assert (place.kelurahan_name, place.kecamatan_name) == ("Gambir", "Gambir")
    assert place.precision is PlacePrecision.POINT
    assert f"coordinates ({round(lat, 5)}, {round(lng, 5)}) inside kelurahan Gambir" in place.evidence
    assert decision.value == "31.71.01.1001"


@pytest.mark.parametrize(("lat", "lng"), [(-6.9175, 107.6191), (-6.5950, 106.8166)], ids=["bandung", "bogor"])
def test_coordinates_outside_jakarta_give_no_codes(lat: float, lng: float) -> None:
    place, decision = locate("lampu mati", Location(lat=lat, lng=lng))
    assert codes(place) == (None, None, None)
    assert place.precision is PlacePrecision.NONE
    assert any("outside Jakarta" in e for e in place.evidence)
    assert decision.value is None


def test_outside_coordinates_leave_the_text_to_speak() -> None:
    place, _ = locate("lampu mati di Jaksel", Location(lat=-6.9175, lng=107.6191))
    assert codes(place) == (JAKSEL, None, None)
    assert any("outside Jakarta" in e for e in place.evidence)


def test_coordinates_win_over_a_disagreeing_text_and_the_disagreement_is_recorded() -> None:
    lat, lng = load_gazetteer().centroids["31.71.01.1001"]
    place, decision = locate("lampu mati di kel. Kenari", Location(lat=lat, lng=lng))
    assert place.kelurahan_code == "31.71.01.1001"
    assert any("Kenari" in e and "used the coordinates" in e for e in place.evidence)
    assert decision.confidence < 0.95


def test_text_street_is_kept_beside_the_coordinates() -> None:
    lat, lng = load_gazetteer().centroids["31.71.01.1001"]
    place, _ = locate("lampu mati di Jl. Medan Merdeka Barat", Location(lat=lat, lng=lng))
    assert place.street == "Jl. Medan Merdeka Barat"
    assert place.precision is PlacePrecision.POINT


def test_point_in_polygon_respects_holes() -> None:
    g = load_gazetteer()
    square = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0))
    hole = ((4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 6.0), (4.0, 4.0))
    assert _in_polygon(2.0, 2.0, (square, hole))
    assert not _in_polygon(5.0, 5.0, (square, hole))
    assert g.kelurahan_at(0.0, 0.0) is None


def test_every_kelurahan_has_a_polygon_and_the_data_is_complete() -> None:
    g = load_gazetteer()
    levels = [r.level for r in g.regions.values()]
    assert (levels.count("kota"), levels.count("kecamatan"), levels.count("kelurahan")) == (6, 44, 267)
    assert set(g.centroids) == {r.code for r in g.regions.values() if r.level == "kelurahan"}


# -- the address field ----------------------------------------------------------------------------------


def test_the_channel_address_is_read_beside_the_message() -> None:
    place, _ = locate("banjir setinggi lutut", Location(address="Jl. Cikini Raya No 10, Menteng, Jakarta Pusat"))
    assert place.street == "Jl. Cikini Raya No. 10"
    assert codes(place) == (JAKPUS, "31.71.06", None)


# -- no place, and ordinary words that are also place names ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "lampu mati sudah 3 hari tolong diperbaiki",
        "pelayanan di kantor lambat sekali",
        "",
    ],
)
def test_text_without_a_place_gives_none(text: str) -> None:
    place, decision = locate(text)
    assert place.precision is PlacePrecision.NONE
    assert codes(place) == (None, None, None)
    assert place.address_text is None
    assert decision.value is None


@pytest.mark.parametrize(
    "text",
    [
        "tengah malam lampu mati lagi",
        "gunung sampah di belakang rumah",
        "pasar baru dibuka tapi becek",
        "kali mampet penuh sampah",
        "air kali meluap, tugu peringatan juga rusak",
        "ada duri ikan di makanan kantin",
        "pohon rambutan tumbang menimpa kabel",
        "bau sampah dari pulau sampah di sungai",
        "Tengah malam suara bising",
        "menteng itu buah langka, pohonnya ditebang",
        "kenari di taman mati semua",
        "TENGAH MALAM BANJIR MASUK RUMAH",
        "harga kali baru naik",
    ],
)
def test_ordinary_words_that_are_place_names_do_not_make_a_place(text: str) -> None:
    place, _ = locate(text)
    assert codes(place) == (None, None, None), place.evidence
    assert place.precision is PlacePrecision.NONE


@pytest.mark.parametrize(
    ("text", "kelurahan"),
    [
        ("banjir di pasar baru", "31.71.02.1001"),  # a place cue
        ("Banjir lagi, air masuk rumah warga Pasar Baru kemarin", "31.71.02.1001"),  # capitals
        ("got mampet daerah tengah", "31.75.04.1002"),
        ("pohon tumbang di kel. Gunung", "31.74.07.1002"),
    ],
)
def test_risky_names_count_with_a_cue_or_capitals(text: str, kelurahan: str) -> None:
    place, _ = locate(text)
    assert place.kelurahan_code == kelurahan


def test_risky_name_next_to_its_kota_is_trusted() -> None:
    place, _ = locate("menteng jakpus banjir lagi")
    assert codes(place) == (JAKPUS, "31.71.06", None)


def test_places_that_disagree_are_not_guessed() -> None:
    place, decision = locate("macet dari Menteng ke Tebet")
    assert codes(place) == (None, None, None)
    assert any("disagree" in e for e in place.evidence)
    assert decision.confidence <= 0.5


# -- the decision and determinism -----------------------------------------------------------------------


def test_one_decision_explains_the_place() -> None:
    draft = Draft(channel_id="api:x", original=InboundMessage(external_id="m", text="x"), text="Banjir di Jaksel")
    FindPlace()(draft)  # no analysis_text: the step reads the lower-cased text itself
    [decision] = draft.decisions
    assert (decision.step, decision.field, decision.value) == ("place", "place", JAKSEL)
    assert "jaksel" in decision.reason


def test_same_input_same_output() -> None:
    text = "Got mampet di Gandaria RT 3 RW 4, Jl. Taman Margasatwa no 7 kec cilandak jaksel"
    first, _ = locate(text)
    second, _ = locate(text)
    assert first == second
    assert first.kelurahan_code == "31.74.06.1004"
    assert first.address_text == (
        "Jl. Taman Margasatwa No. 7, RT 003/RW 004, Kel. Gandaria Selatan, Kec. Cilandak, Jakarta Selatan"
    )


def test_two_kecamatan_pulling_a_shared_name_apart_leave_the_common_kota() -> None:
    place, _ = locate("Got mampet di Gandaria kec cilandak; banjir di Kebayoran Bru")
    assert place.kelurahan_code is None
    assert place.kota_code == JAKSEL
