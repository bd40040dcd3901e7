"""The default drafter, the fake drafter and the seed answers."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from engine.compliance import check_reply
from engine.drafting.default import DefaultDrafter, select_sentences
from engine.drafting.fake import FakeDrafter
from engine.drafting.protocols import DraftRequest, DraftResult, OrderContext
from engine.drafting.templates import TemplateSet, load_templates
from engine.errors import TemplateError
from engine.nlp.protocols import RetrievedAnswer
from engine.taxonomy import INTENTS, KNOWLEDGE_DIR, LANGUAGES, MARKETPLACES

DRAFTER = DefaultDrafter(load_templates())
ORDER = OrderContext(order_id="302-1234567-1234567", fulfillment_channel="MFN")
SEED_PATH = KNOWLEDGE_DIR / "answers" / "seed.jsonl"
SEED = [json.loads(line) for line in SEED_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
_CONTACT = re.compile(r"https?://|www\.|@|\+?\d[\d ()/-]{8,}\d|whatsapp|telegram|wechat", re.IGNORECASE)
_REVIEW = re.compile(
    r"\breview|feedback|bewertung|rezension|avis client|recensione|reseña|レビュー|評価", re.IGNORECASE
)


def answer(
    text: str, *, knowledge_id: int = 7, intent: str = "order_status", language: str = "en", score: float = 0.8
) -> RetrievedAnswer:
    return RetrievedAnswer(knowledge_id, "question", text, intent, language, score)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("intent", [i for i in INTENTS if i != "no_response_needed"])
def test_every_intent_and_language_gets_a_sensible_draft(intent: str, language: str) -> None:
    result = DRAFTER.draft(DraftRequest(text="?", language=language, intent=intent, order=ORDER))
    assert result.action == "reply" and result.drafter == "default"
    assert result.template_id == f"{intent}.{language}"
    assert len(result.text) > 40 and "{{" not in result.text
    assert result.note is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_response_needed_proposes_marking_instead_of_a_draft(language: str) -> None:
    result = DRAFTER.draft(DraftRequest(text="ok thanks", language=language, intent="no_response_needed"))
    assert result == DraftResult(text="", action="no_response_needed", drafter="default")


@pytest.mark.parametrize(
    ("intent", "language", "expected"),
    [
        ("order_status", "en", "Amazon Customer Service"),
        ("damaged_defective", "de", "Amazon Kundenservice"),
        ("return_refund", "fr", "Service Client Amazon"),
        ("cancel_order", "ja", "注文履歴"),
        ("change_order", "es", "Atención al Cliente de Amazon"),
    ],
)
def test_fba_orders_are_pointed_to_amazon(intent: str, language: str, expected: str) -> None:
    order = OrderContext(order_id="302-1234567-1234567", fulfillment_channel="AFN")
    retrieved = (
        answer("We will send you a replacement parcel by courier tomorrow.", intent=intent, language=language),
    )
    result = DRAFTER.draft(
        DraftRequest(
            text="Where is my parcel? replacement", language=language, intent=intent, order=order, retrieved=retrieved
        )
    )
    assert result.template_id == f"{intent}.{language}.fba"
    assert expected in result.text
    assert result.source_ids == ()  # Amazon handles it: no seller promise from a past answer


def test_fba_does_not_change_a_product_question() -> None:
    order = OrderContext(fulfillment_channel="AFN")
    result = DRAFTER.draft(
        DraftRequest(text="Is it waterproof?", language="en", intent="product_question", order=order)
    )
    assert result.template_id == "product_question.en"


def test_tracking_variant_and_formatted_dates() -> None:
    order = OrderContext(
        order_id="302-1234567-1234567",
        carrier="DHL",
        tracking_number="00340434161094042557",
        ship_date="2026-11-27",
        delivery_date="2026-12-01",
    )
    result = DRAFTER.draft(
        DraftRequest(
            text="Wo ist mein Paket?",
            language="de",
            intent="order_status",
            marketplace="DE",
            buyer_name="Anna",
            order=order,
            store_name="Muster",
        )
    )
    assert result.template_id == "order_status.de.tracking"
    for expected in (
        "Hallo Anna,",
        "302-1234567-1234567",
        "DHL",
        "00340434161094042557",
        "27.11.2026",
        "01.12.2026",
        "Muster",
    ):
        assert expected in result.text


def test_relevant_sentences_of_the_best_answer_are_inserted() -> None:
    past = (
        "Hello Maria,\n\nThank you for your message. The charging cable is a USB-C cable of one metre. "
        "The device charges fully in about three hours. Our warehouse is closed on Sundays.\n\nKind regards\nShop"
    )
    retrieved = (
        answer("Something unrelated about invoices.", knowledge_id=3, intent="invoice_vat", score=0.9),
        answer(past, knowledge_id=11, intent="product_question", score=0.7),
        answer("Das Ladekabel ist ein USB-C-Kabel.", knowledge_id=12, intent="product_question", language="de"),
    )
    request = DraftRequest(
        text="How long does charging take, and which cable does it use?",
        language="en",
        intent="product_question",
        retrieved=retrieved,
    )
    result = DRAFTER.draft(request)
    assert result.source_ids == (11,)
    assert "The charging cable is a USB-C cable of one metre." in result.text
    assert "charges fully in about three hours" in result.text
    assert "warehouse" not in result.text and "Maria" not in result.text
    assert result.text.count("Thank you for your") == 1  # the template's line, not the answer's
    assert "We are checking the details" not in result.text  # the fallback line gives way to the answer


def test_without_overlap_a_confident_answer_of_the_same_intent_still_helps() -> None:
    retrieved = (answer("Parcels usually arrive within 3 working days. Tracking updates once a day.", score=0.8),)
    result = DRAFTER.draft(
        DraftRequest(text="still nothing??", language="en", intent="order_status", retrieved=retrieved)
    )
    assert result.source_ids == (7,) and "within 3 working days" in result.text
    weak = (answer("Parcels usually arrive within 3 working days.", score=0.2),)
    result = DRAFTER.draft(DraftRequest(text="still nothing??", language="en", intent="order_status", retrieved=weak))
    assert result.source_ids == () and "working days" not in result.text


@pytest.mark.parametrize(
    "sentence",
    [
        "Your order 111-2222222-3333333 was sent yesterday.",  # another buyer's order
        "Write to shop@example.com for parcels.",
        "Parcels: see www.example.com for details.",
    ],
)
def test_sentences_with_foreign_data_are_never_copied(sentence: str) -> None:
    chosen = select_sentences(
        answer(sentence + " Parcels arrive in three days."),
        "parcels",
        "",
        language="en",
        intent="order_status",
        order_id="302-1234567-1234567",
    )
    assert chosen == ["Parcels arrive in three days."]


def test_japanese_sentences_are_matched_by_characters() -> None:
    past = "この度はお問い合わせいただき、誠にありがとうございます。充電ケーブルはUSB-Cです。倉庫は日曜日休みです。"
    chosen = select_sentences(
        answer(past, language="ja", intent="product_question"),
        "充電ケーブルの種類は？",
        "",
        language="ja",
        intent="product_question",
    )
    assert chosen == ["充電ケーブルはUSB-Cです。"]


def test_unknown_language_falls_back_to_the_marketplace_language() -> None:
    result = DRAFTER.draft(DraftRequest(text="?", language="und", intent="order_status", marketplace="FR"))
    assert result.template_id == "order_status.fr"
    result = DRAFTER.draft(DraftRequest(text="?", language="und", intent="unknown-intent"))
    assert result.template_id == "other.en"


def test_missing_template_falls_back_with_a_note_or_says_what_to_do() -> None:
    only_english = TemplateSet(t for t in load_templates() if t.language == "en")
    result = DefaultDrafter(only_english).draft(DraftRequest(text="?", language="de", intent="warranty"))
    assert result.template_id == "warranty.en" and result.note and "warranty in de" in result.note
    with pytest.raises(TemplateError, match=r"knowledge/templates/de\.json"):
        DefaultDrafter(TemplateSet([])).draft(DraftRequest(text="?", language="de", intent="warranty"))


def test_default_drafter_is_fast() -> None:
    retrieved = tuple(
        answer(row["answer"], knowledge_id=n, intent=row["intent"], language=row["language"])
        for n, row in enumerate(SEED[:10])
    )
    requests = [
        DraftRequest(
            text="Where is my order? It has not arrived and tracking shows nothing.",
            language="en",
            intent=INTENTS[n % len(INTENTS)],
            order=ORDER,
            retrieved=retrieved,
        )
        for n in range(200)
    ]
    start = time.perf_counter()
    for request in requests:
        DRAFTER.draft(request)
    per_second = len(requests) / (time.perf_counter() - start)
    assert per_second >= 50


def test_fake_drafter_returns_queued_results_and_records_requests() -> None:
    fake = FakeDrafter("first")
    fake.enqueue(DraftResult(text="", action="no_response_needed", drafter="fake"))
    request = DraftRequest(text="hi", language="en", intent="other", order=ORDER)
    assert fake.draft(request).text == "first"
    assert fake.draft(request).action == "no_response_needed"
    assert fake.draft(request).text == "Draft for other in en (302-1234567-1234567)."
    assert fake.history == [request, request, request] and fake.name == "fake"


def test_seed_answers_cover_every_intent_and_language() -> None:
    counts = Counter((row["intent"], row["language"]) for row in SEED)
    for intent in INTENTS:
        for language in LANGUAGES:
            minimum = 3 if language in ("en", "de", "fr", "it", "es", "ja") else 1
            assert counts[(intent, language)] >= minimum, (intent, language)


@pytest.mark.parametrize("row", SEED, ids=lambda row: f"{row['intent']}-{row['language']}-{row['question'][:20]}")
def test_seed_answers_are_valid_and_compliant(row: dict[str, str]) -> None:
    assert set(row) <= {"question", "answer", "intent", "language", "marketplace"}
    assert row["intent"] in INTENTS and row["language"] in LANGUAGES
    assert row.get("marketplace") is None or row["marketplace"] in MARKETPLACES
    assert row["question"].strip() and row["answer"].strip()
    assert not _CONTACT.search(row["answer"]), row["answer"]
    assert not _REVIEW.search(row["answer"]), row["answer"]
    verdict = check_reply(row["answer"], buyer_language=row["language"], reply_language=row["language"])
    assert verdict.allowed, verdict
