"""The spine's two normalizer steps: what an admin sees of the text, and what the report still lacks."""

from __future__ import annotations

from adapters.contract import InboundMessage, Location, MediaRef
from normalizer.pipeline import default_pipeline


def run(text: str, **fields: object) -> tuple[str, int, list[str], list[str]]:
    draft = default_pipeline().run(InboundMessage(external_id="m1", text=text, **fields), channel_id="api:x")  # type: ignore[arg-type]
    return draft.text, draft.completeness, draft.missing, [d.step for d in draft.decisions]


def test_html_email_body_becomes_readable_text_and_the_original_is_kept() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><p>Lampu&nbsp;PJU <b>mati</b></p><p>di gang &amp; jalan</p></body>"
    )
    draft = default_pipeline().run(InboundMessage(external_id="m", text=html), channel_id="email:dki")
    assert draft.text == "Lampu PJU mati\n\ndi gang & jalan"
    assert draft.original.text == html
    assert draft.decisions[0].reason == "removed HTML markup"


def test_entities_control_characters_and_blank_runs_are_tidied() -> None:
    text, *_ = run("Banjir  setinggi\tlutut &amp; arus deras\r\n\r\n\r\n\x07Tolong")
    assert text == "Banjir setinggi lutut & arus deras\n\nTolong"


def test_plain_text_with_angle_brackets_is_not_mistaken_for_markup() -> None:
    text, *_ = run("Suhu > 35 derajat dan antrean < 10 orang di puskesmas")
    assert text == "Suhu > 35 derajat dan antrean < 10 orang di puskesmas"


def test_complete_report_scores_100_with_no_missing_items() -> None:
    _, score, missing, steps = run(
        "Jalan berlubang besar depan pasar",
        location=Location(lat=-6.2, lng=106.8),
        media=[MediaRef(url="https://x/1.jpg", content_type="image/jpeg")],
    )
    assert (score, missing) == (100, [])
    # Other steps (place, routing) explain themselves too; cleanup has nothing to say about clean text.
    assert "clean_text" not in steps, "clean text needs no cleanup decision"
    assert steps[-1] == "completeness"


def test_missing_items_are_listed_in_words_an_admin_can_pass_on() -> None:
    _, score, missing, _ = run("rusak")
    # "rusak" names a problem, so only that part scores; the rest are stable codes for the review queue.
    assert score == 20
    assert missing == ["too_short", "location_below_kelurahan", "no_photo"]
    _, score, missing, _ = run("Pohon tumbang menutup jalan", location=Location(lat=-6.2, lng=106.8))
    assert score == 80 and missing == ["no_photo"]
