"""Masking: no NIK, phone number or e-mail address survives in what goes onward; nothing else changes."""

from __future__ import annotations

import re

import pytest

from adapters.contract import InboundMessage
from normalizer.pipeline import Draft
from normalizer.steps.masking import PLACEHOLDERS, MaskPersonalData, mask_personal_data

PERSONAL = [
    # (text, the personal data in it, the kind it must be masked as)
    ("NIK saya 3171012305900001 mohon dicek", "3171012305900001", "nik"),
    ("nik: 3171 0123 0590 0001", "3171 0123 0590 0001", "nik"),
    ("KTP 31.71.01.230590.0001 atas nama Budi", "31.71.01.230590.0001", "nik"),
    ("3275-0123-0590-0001 itu nomor saya", "3275-0123-0590-0001", "nik"),
    ("data 3171012305900001", "3171012305900001", "nik"),
    ("No. KK 3171012305900002 sudah saya lampirkan", "3171012305900002", "kk"),
    ("kartu keluarga: 3171 0123 0590 0002", "3171 0123 0590 0002", "kk"),
    ("kartu kredit 4111 1111 1111 1111 kena tagih", "4111 1111 1111 1111", "card"),
    ("nomor 4111111111111111 tertagih", "4111111111111111", "card"),
    ("angka 9999 8888 7777 6666 ini", "9999 8888 7777 6666", "id_number"),
    ("hubungi +62 812-3456-7890 ya", "+62 812-3456-7890", "phone"),
    ("WA 0812 3456 7890", "0812 3456 7890", "phone"),
    ("telp (021) 345 6789 kantor", "(021) 345 6789", "phone"),
    ("telp 021-3456789.", "021-3456789", "phone"),
    ("no hp 62812345678901", "62812345678901", "phone"),
    ("hp:081234567890", "081234567890", "phone"),
    ("+6281234567890 (Budi)", "+6281234567890", "phone"),
    ("0812.3456.7890 bisa dihubungi", "0812.3456.7890", "phone"),
    ("(+62) 812 3456 7890", "(+62) 812 3456 7890", "phone"),
    ("+62 21 3456 7890 kantor", "+62 21 3456 7890", "phone"),
    ("hubungi 0812 - 3456 - 7890", "0812 - 3456 - 7890", "phone"),
    ("wa.me/6281234567890", "6281234567890", "phone"),
    ("kontak:0812-345-6789", "0812-345-6789", "phone"),
    ("kontak luar negeri +65 9123 4567", "+65 9123 4567", "phone"),
    ("email budi.santoso@gmail.com ya", "budi.santoso@gmail.com", "email"),
    ("kirim ke Warga_RT05+lapor@mail.jakarta.go.id.", "Warga_RT05+lapor@mail.jakarta.go.id", "email"),
    ("NPWP 12.345.678.9-012.345", "12.345.678.9-012.345", "npwp"),
    ("npwp: 123456789012345", "123456789012345", "npwp"),
    ("transfer ke rek BCA 123-456-7890 a.n. Budi", "123-456-7890", "account"),
    ("no. rekening: 1234567890123", "1234567890123", "account"),
    ("paspor A1234567 hilang", "A1234567", "passport"),
    ("kartu BPJS 0001234567890 ditolak", "0001234567890", "bpjs"),
]


@pytest.mark.parametrize(("text", "secret", "kind"), PERSONAL, ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(PERSONAL)])
def test_personal_data_does_not_survive_and_gets_a_placeholder_an_admin_understands(
    text: str, secret: str, kind: str
) -> None:
    masked, kinds = mask_personal_data(text)
    assert secret not in masked
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 7:
        assert digits not in re.sub(r"\D", "", masked), "the digits must not survive in another grouping"
    assert PLACEHOLDERS[kind] in masked
    assert kinds == [kind]
    # Only the data goes: the words around it stay as written.
    assert masked.replace(PLACEHOLDERS[kind], secret, 1) == text


UNCHANGED = [
    "Jalan berlubang di depan pasar, sudah 3 minggu",
    "Banjir sejak 17-08-2024 pukul 08.00 sampai 10.30 WIB",
    "tanggal 2024/08/17 dan 17/08/2024 dan 01.08.2024 10.00",
    "Biaya parkir liar Rp 50.000, retribusi resmi Rp1.500.000 dan Rp 62.500.000.000 untuk proyek",
    "Lokasi RT 003/RW 005, Jl. Kenari II No. 12A, Kel. Kenari",
    "RT.03 RW.05 no 27 blok C3",
    "Melanjutkan laporan No. JK2305290094 yang belum selesai",
    "tiket K7F3Q-9Q2MX dan 12345-67890 serta 08123-45678",
    "Tol Jagorawi KM 21+500 arah Bogor, jalan nasional 1 tahun 2023",
    "Tahun 2019 sampai 2024 sudah 5 kali diperbaiki",
    "harga 1.250.000 per meter, luas 120 m2",
    "@DKIJakarta @BinaMargaDKI tolong cek #JalanRusak",
    "koordinat -6.2088, 106.8456 dekat halte",
    "plat B 1234 XYZ parkir di trotoar",
    "Skor 3-2, jam 19.00-21.00, lantai 2, gedung 10",
    "",
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_personal_data_comes_back_byte_for_byte(text: str) -> None:
    masked, kinds = mask_personal_data(text)
    assert masked is text or masked == text
    assert kinds == []


def test_two_numbers_joined_by_a_slash_are_both_masked() -> None:
    assert mask_personal_data("nomor 0812-345-6789/0813-987-6543") == ("nomor [telepon]/[telepon]", ["phone"])


def test_kinds_are_listed_once_in_order_of_first_appearance() -> None:
    text = "Saya Budi, HP 0812 3456 7890, NIK 3171012305900001, email budi@x.id, WA lain 0813-1111-2222"
    masked, kinds = mask_personal_data(text)
    assert kinds == ["phone", "nik", "email"]
    assert masked == "Saya Budi, HP [telepon], NIK [NIK], email [email], WA lain [telepon]"


def test_the_step_fills_the_masked_text_and_counts_kinds_without_showing_the_data() -> None:
    text = "Lampu mati. Hubungi 0812 3456 7890 atau 0813-1111-2222, NIK 3171012305900001"
    draft = Draft(channel_id="x", original=InboundMessage(external_id="1", text=text), text=text)
    MaskPersonalData()(draft)
    assert draft.text == text, "the readable text keeps the data for the admin allowed to see it"
    assert draft.text_masked == "Lampu mati. Hubungi [telepon] atau [telepon], NIK [NIK]"
    assert draft.masked_kinds == ["phone", "nik"]
    (decision,) = draft.decisions
    assert decision.step == "masking" and decision.value == ["phone", "nik"]
    assert decision.reason == "masked 2 phone, 1 nik"
    assert not re.search(r"\d{4}", decision.model_dump_json())


def test_the_step_records_nothing_when_there_is_nothing_to_mask() -> None:
    text = "Pohon tumbang di Jl. Kenari No. 5"
    draft = Draft(channel_id="x", original=InboundMessage(external_id="1", text=text), text=text)
    MaskPersonalData()(draft)
    assert (draft.text_masked, draft.masked_kinds, draft.decisions) == (text, [], [])
