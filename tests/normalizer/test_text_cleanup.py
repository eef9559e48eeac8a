"""Text cleanup: what the admin reads, what the matchers read, and which tickets a message refers to."""

from __future__ import annotations

import pytest

from adapters.contract import InboundMessage
from normalizer.pipeline import Draft
from normalizer.steps.text_cleanup import CleanText, find_ticket_refs
from normalizer.textforms import SLANG, analysis_form, load_slang


def clean(text: str) -> Draft:
    draft = Draft(channel_id="x", original=InboundMessage(external_id="1", text=text), text=text)
    CleanText()(draft)
    return draft


EMAIL_REPLY = """Selamat siang,

Lampu PJU di Jl. Kenari II RT 005/RW 03 masih mati sampai hari ini.
Mohon segera ditindaklanjuti.

Salam,
Budi Santoso

Dikirim dari iPhone saya

Pada Sen, 3 Jun 2024 pukul 10.15 Kanal DKI <noreply@jakarta.go.id> menulis:
> Terima kasih, laporan Anda tercatat dengan nomor K7F3Q-9Q2MX.
> Kami akan menindaklanjuti dalam 7 hari.
"""


def test_an_indonesian_email_reply_keeps_only_what_the_citizen_wrote_and_finds_the_quoted_ticket() -> None:
    draft = clean(EMAIL_REPLY)
    assert draft.text == (
        "Selamat siang,\n\nLampu PJU di Jl. Kenari II RT 005/RW 03 masih mati sampai hari ini.\n"
        "Mohon segera ditindaklanjuti."
    )
    assert draft.original.text == EMAIL_REPLY
    assert draft.ticket_refs == ["K7F3Q-9Q2MX"], "a reply to our acknowledgement follows up that ticket"
    reasons = {d.field: d.reason for d in draft.decisions}
    assert "quoted" in reasons["text"] and "Dikirim dari iPhone saya" in reasons["text"]
    assert "closing" in reasons["text"]


def test_an_unmarked_quote_after_an_english_attribution_is_cut_with_everything_below() -> None:
    text = (
        "Sampah belum diangkut 5 hari di Gg. Mawar.\n\n"
        "On Mon, Jun 3, 2024 at 10:15 AM Kanal DKI <\nnoreply@jakarta.go.id> wrote:\n"
        "Laporan Anda sudah kami terima.\nSalam, Tim Kanal"
    )
    assert clean(text).text == "Sampah belum diangkut 5 hari di Gg. Mawar."


def test_outlook_original_message_and_header_blocks_are_cut() -> None:
    original = "Saluran air tersumbat di RT 04.\n\n-----Original Message-----\nFrom: Admin\nSent: Monday\nisi lama"
    assert clean(original).text == "Saluran air tersumbat di RT 04."
    header = "Saluran air tersumbat.\n\nDari: Admin Kelurahan\nDikirim: Senin, 3 Juni 2024\nKepada: Budi\nisi lama"
    assert clean(header).text == "Saluran air tersumbat."


def test_signature_after_the_delimiter_is_removed() -> None:
    text = "Trotoar dipakai parkir motor tiap malam.\n-- \nBudi Santoso\nKetua RT 05\n0812 3456 7890"
    assert clean(text).text == "Trotoar dipakai parkir motor tiap malam."


def test_complaint_words_that_look_like_closings_or_headers_are_kept() -> None:
    kept = [
        "Salam, saya mau lapor.\nJalan di depan rumah saya rusak parah sejak Januari.",
        "Pada hari Senin banjir lagi.\nWarga sudah menulis surat ke kelurahan.",
        "Jalan rusak.\nSalam,\nBudi\nJl. Kenari 5 RT 03/RW 02",  # an address after the name stays
        "Dikirim dari kelurahan tapi belum ada tindak lanjut.\nMohon dicek.",
        "> 3 hari listrik padam di blok C",  # a lone '>' line is the whole message, not a quote
    ]
    for text in kept:
        assert clean(text).text == text


def test_closing_with_a_name_at_the_end_is_removed() -> None:
    assert clean("Pohon tumbang menutup jalan.\n\nHormat saya,\nIr. Budi Santoso").text == (
        "Pohon tumbang menutup jalan."
    )
    assert clean("Pohon tumbang menutup jalan.\nWassalamualaikum wr. wb.").text == "Pohon tumbang menutup jalan."


def test_tweet_keeps_handles_and_links_for_reading_but_not_for_analysis() -> None:
    tweet = "@DKIJakarta @BinaMargaDKI jln bolong2 parahhh di #JalanRusak #Cilandak cc @humasjaksel https://t.co/Ab12"
    draft = clean(tweet)
    assert draft.text == tweet
    assert draft.analysis_text == "jalan bolong-bolong parah di jalan rusak cilandak cc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jln rusak parah gk diperbaiki2", "jalan rusak parah tidak diperbaiki"),
        ("tolong di TL pak", "tolong di tindak lanjut pak"),
        ("PJU mati udh 2 mgg", "penerangan jalan umum mati sudah 2 minggu"),
        ("Jl.Sudirman dpn rmh no. 5 Kel. Karet Kec. Setiabudi", "jalan sudirman depan rumah nomor 5 kelurahan karet"),
        ("yg jual PKL, min", "yang jual pedagang kaki lima, admin"),
        ("Gg. Kenari Kp. Melayu", "gang kenari kampung melayu"),
        ("minimarket sudin", "minimarket suku dinas"),  # "min" only as a word
        ("RT 05 RW 03 Jaksel, pak/bu", "rt 05 rw 03 jaksel, pak/bu"),  # kept for the place step
        ("rusak gk.", "rusak tidak."),  # a sentence's full stop is not an abbreviation's dot
        ("jl2 kel_x", "jl2 kel_x"),  # glued to a digit or underscore: not a word
    ],
)
def test_slang_and_abbreviations_expand_as_whole_words(text: str, expected: str) -> None:
    assert expected in analysis_form(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parahhhh", "parah"),
        ("tolongggg", "tolong"),
        ("PARAHHH BANGETTT", "parah banget"),
        ("tolooong", "tolong"),
        ("maaf saat taat tinggi", "maaf saat taat tinggi"),  # runs of two are spelling
        ("maaaaf", "maaf"),  # folding to one would break it: the double is kept
        ("tungggu", "tunggu"),
        ("Gang Kenari III", "gang kenari iii"),  # a roman numeral, not an elongation
    ],
)
def test_runs_of_three_or_more_letters_fold(text: str, expected: str) -> None:
    assert analysis_form(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bolong2", "bolong-bolong"),
        ("anak2nya", "anak-anaknya"),
        ("terus2an", "terus-terusan"),
        ("diperbaiki2", "diperbaiki"),
        ("lantai2", "lantai2"),  # floor 2
        ("b2b rp2.000", "b2b rp2.000"),
    ],
)
def test_reduplication_written_with_a_2_is_spelled_out(text: str, expected: str) -> None:
    assert analysis_form(text) == expected


def test_hashtags_split_on_camel_case_and_digits() -> None:
    assert analysis_form("#JalanRusak #DKIJakarta #Banjir2024 #PJUMati") == (
        "jalan rusak dki jakarta banjir 2024 penerangan jalan umum mati"
    )


def test_email_addresses_are_not_taken_for_handles() -> None:
    assert analysis_form("kirim ke budi@mail.com atau @budi") == "kirim ke atau"


def test_the_cleanup_decision_lists_what_the_analysis_changed() -> None:
    draft = clean("@DKIJakarta jln rusak parahhh #JalanRusak")
    (decision,) = [d for d in draft.decisions if d.field == "analysis_text"]
    for part in ("leading @mentions", "hashtag", "parahhh→parah", "jln→jalan"):
        assert part in decision.reason


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("Melanjutkan laporan No. JK2305290094 belum ada TL", ["JK2305290094"]),
        ("laporan saya K7F3Q-9Q2MX belum selesai", ["K7F3Q-9Q2MX"]),
        ("tiket k7f3o 9q2mx kemarin", ["K7F30-9Q2MX"]),  # as typed, canonicalised
        ("cek #K7F3Q-9Q2MX dan K7F3Q-9Q2MX lagi", ["K7F3Q-9Q2MX"]),
        ("No: KXFTQ-BNMWP", ["KXFTQ-BNMWP"]),  # a code without digits, printed form after a cue
        ("laporan JALAN RUSAK di KOTA TUA", []),
        ("jalan rusak parah tolong", []),
        ("alamat Jl X no 5 12950 Depok", []),
        ("RT005 RW003", []),
        ("hp0812345678", []),
        ("kode pos 12950, telp 0812-3456-7890", []),
    ],
)
def test_ticket_references(text: str, refs: list[str]) -> None:
    assert find_ticket_refs(text) == refs


def test_ticket_refs_are_recorded_on_the_draft_with_a_decision() -> None:
    draft = clean("Melanjutkan laporan No. JK2305290094, jalan masih rusak")
    assert draft.ticket_refs == ["JK2305290094"]
    assert [d.value for d in draft.decisions if d.field == "ticket_refs"] == [["JK2305290094"]]


def test_the_shipped_slang_table_is_large_valid_and_leaves_place_words_alone() -> None:
    assert len(SLANG) >= 120
    for kept in ("rt", "rw", "pak", "bu", "jakut", "jaksel", "km", "pd"):
        assert kept not in SLANG
    assert SLANG["tdk"] == SLANG["gk"] == SLANG["nggak"] == SLANG["enggak"] == "tidak"


def test_a_broken_slang_table_names_the_line() -> None:
    with pytest.raises(ValueError, match=r"slang_id.tsv:3: key 'gk' is listed twice"):
        load_slang("gk\ttidak\n# comment\ngk\tenggak\n")
    with pytest.raises(ValueError, match=r":1: expected"):
        load_slang("gk tidak\n")


def test_every_kanal_code_is_found_as_a_citizen_copies_it_after_a_cue() -> None:
    # Codes are random: some halves have no digit, a few codes have none at all.
    for code in ("K7F3Q-9Q2MX", "KXFTQ-9Q2MX", "K7F3Q-BNMWP", "KXFTQ-BNMWP", "12345-67890"):
        typed = code.lower().replace("-", " ")
        text = f"Melanjutkan laporan no {typed}, sampai sekarang jalan masih berlubang"
        assert find_ticket_refs(text) == [code], text
