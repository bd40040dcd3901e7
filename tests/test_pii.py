"""Masking buyer personal data before it leaves for an LLM, and restoring it afterwards."""

from __future__ import annotations

import pytest

from engine.drafting.pii import Masker, mask, unknown_placeholders, unmask

ORDER_ID = "302-1234567-1234567"


@pytest.mark.parametrize(
    ("text", "known", "hidden", "kept"),
    [
        (
            f"Hi, I'm Anna Schmidt, call me on +49 171 1234567 or write to anna.schmidt@gmail.com. Order {ORDER_ID}",
            {"buyer_name": "Anna Schmidt"},
            ["Anna Schmidt", "+49 171 1234567", "anna.schmidt@gmail.com"],
            [ORDER_ID],
        ),
        (
            "Bitte an Hauptstraße 12, 10115 Berlin liefern. Tel. 030/1234567. Gruß Anna",
            {"buyer_name": "Anna Schmidt"},
            ["Hauptstraße 12", "10115", "030/1234567", "Anna"],
            ["Berlin"],
        ),
        (
            "Livrez au 5 rue de la Paix, 75002 Paris. Tél 06 12 34 56 78. Commande du 27/11/2026",
            {},
            ["5 rue de la Paix", "75002", "06 12 34 56 78"],
            ["Paris", "27/11/2026"],
        ),
        ("Send it to 221B Baker Street, London NW1 6XE please", {}, ["221B Baker Street", "NW1 6XE"], ["London"]),
        ("Spedire a via Roma 10, 00184 Roma. Cellulare 333 1234567", {}, ["via Roma 10", "00184", "333 1234567"], []),
        (
            "Enviar a calle Mayor 5, 28013 Madrid, soy Lucía García",
            {"buyer_name": "Lucía García"},
            ["calle Mayor 5", "28013", "Lucía García"],
            ["Madrid"],
        ),
        (
            "送り先は〒150-0002 東京都渋谷区渋谷2-21-1です。電話 03-1234-5678。山田太郎",
            {"buyer_name": "山田太郎"},
            ["〒150-0002", "東京都渋谷区渋谷2-21-1", "03-1234-5678", "山田太郎"],
            [],
        ),
        ("Adres: ul. Długa 5, 00-950 Warszawa", {}, ["ul. Długa 5", "00-950"], ["Warszawa"]),
        ("Leveradres Dorpsstraat 5, 1234 AB Amsterdam", {}, ["Dorpsstraat 5", "1234 AB"], ["Amsterdam"]),
        ("Skicka till Storgatan 3, 123 45 Stockholm", {}, ["Storgatan 3", "123 45"], ["Stockholm"]),
        ("Adres: Atatürk Caddesi No: 15 Kadıköy", {}, ["Atatürk Caddesi No: 15"], ["Kadıköy"]),
        ("Entregar na Rua Augusta 100, 01310-100 São Paulo", {}, ["Rua Augusta 100", "01310-100"], ["São Paulo"]),
        ("Ship to 1600 Pennsylvania Avenue, Washington DC 20500", {}, ["1600 Pennsylvania Avenue", "20500"], []),
        (
            "I have 3 questions about the plaza via the app, size 42, price 24.99",
            {},
            [],
            ["3 questions", "plaza via", "42", "24.99"],
        ),
    ],
)
def test_mask_hides_personal_data_and_unmask_restores_it(
    text: str, known: dict[str, str], hidden: list[str], kept: list[str]
) -> None:
    masked, mapping = mask(text, known)
    for value in hidden:
        assert value not in masked, f"{value!r} leaked: {masked}"
    for value in kept:
        assert value in masked, f"{value!r} masked without need: {masked}"
    assert all(p.startswith("[[") and p.endswith("]]") for p in mapping)
    assert unmask(masked, mapping) == text


def test_known_name_gets_a_stable_placeholder_and_parts_are_masked_too() -> None:
    masked, mapping = mask("Anna Schmidt here. Thanks, Anna", {"buyer_name": "Anna Schmidt"})
    assert masked == "[[BUYER_NAME]] here. Thanks, [[BUYER_NAME_1]]"
    assert mapping == {"[[BUYER_NAME]]": "Anna Schmidt", "[[BUYER_NAME_1]]": "Anna"}


def test_kept_values_are_not_masked() -> None:
    masked, mapping = mask("Tracking 00340434161094042557 shows nothing", keep=["00340434161094042557"])
    assert masked == "Tracking 00340434161094042557 shows nothing" and mapping == {}


def test_one_masker_shares_placeholders_across_texts() -> None:
    masker = Masker({"buyer_name": "Bo Li"})
    first = masker.mask("Mail bo@example.org")
    second = masker.mask("Bo Li again: bo@example.org")
    assert first == "Mail [[EMAIL_1]]" and second == "[[BUYER_NAME]] again: [[EMAIL_1]]"


@pytest.mark.parametrize(
    "reply",
    ["Hello [[BUYER_NAME]],", "Hello [[ buyer_name ]],", "Hello [[Buyer_Name]],"],
)
def test_unmask_tolerates_what_models_do_to_placeholders(reply: str) -> None:
    assert unmask(reply, {"[[BUYER_NAME]]": "Anna"}) == "Hello Anna,"


def test_unknown_placeholders_are_reported() -> None:
    mapping = {"[[BUYER_NAME]]": "Anna"}
    assert unknown_placeholders("Hi [[BUYER_NAME]], call [[PHONE_9]]", mapping) == ["[[PHONE_9]]"]
    assert unknown_placeholders("Hi [[buyer_name]]", mapping) == []
