"""The past-answer index: hybrid ranking, filters, replace/remove, persistence, the approximate switch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError
from engine.nlp import index as index_module
from engine.nlp.embeddings import HashingEmbedder, SentenceTransformerEmbedder
from engine.nlp.index import AnswerIndex, IndexedItem
from engine.nlp.lexical import LexicalIndex, tokenize

ITEMS = [
    IndexedItem(1, "Where is my parcel? It has not arrived yet", "It is on its way.", "order_status", "en", "US", 1),
    IndexedItem(2, "Can you send me an invoice with VAT?", "Attached is your invoice.", "invoice_vat", "en", "UK", 1),
    IndexedItem(
        3,
        "The parcel arrived damaged, the glass is broken",
        "Sorry, a replacement is on the way.",
        "damaged_defective",
        "en",
        "US",
        2,
    ),
    IndexedItem(
        4, "Wo ist mein Paket? Es ist noch nicht angekommen", "Es ist unterwegs.", "order_status", "de", "DE", 1
    ),
    IndexedItem(5, "Können Sie mir eine Rechnung schicken?", "Anbei die Rechnung.", "invoice_vat", "de", "DE", 2),
    IndexedItem(6, "荷物がまだ届いていません", "配送中です。", "order_status", "ja", "JP", 1),
    IndexedItem(7, "请问可以开发票吗", "可以，发票已发送。", "invoice_vat", "zh", "US", 1),
]


class TableEmbedder:
    """Maps known texts to fixed unit vectors (a 'semantic' model in miniature); others get zero vectors."""

    model_name = "table"

    def __init__(self, table: dict[str, Sequence[float]], dimension: int = 4) -> None:
        self.table = table
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if text in self.table:
                vector = np.asarray(self.table[text], dtype=np.float32)
                out[row] = vector / np.linalg.norm(vector)
        return out


@pytest.fixture
def index() -> AnswerIndex:
    built = AnswerIndex(HashingEmbedder())
    built.add(ITEMS)
    return built


def test_search_finds_the_matching_question(index: AnswerIndex) -> None:
    results = index.search("my parcel has not arrived", k=3)
    assert results[0].knowledge_id == 1
    assert len(results) == 3
    assert all(0.0 <= r.score <= 1.0 for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert results[0].answer == "It is on its way."
    assert results[0].intent == "order_status"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("荷物が届いていません", 6),
        ("可以开发票吗", 7),
        ("Rechnung schicken bitte", 5),
    ],
)
def test_search_works_for_space_less_scripts_and_other_languages(index: AnswerIndex, query: str, expected: int) -> None:
    assert index.search(query, k=1)[0].knowledge_id == expected


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        ({"language": "de"}, {4, 5}),
        ({"intent": "invoice_vat"}, {2, 5, 7}),
        ({"marketplace": "US"}, {1, 3, 7}),
        ({"store_id": 2}, {3, 5}),
        ({"language": "en", "store_id": 1}, {1, 2}),
        ({"language": "sv"}, set()),
    ],
)
def test_filters(index: AnswerIndex, filters: dict[str, str | int], expected_ids: set[int]) -> None:
    results = index.search("parcel invoice Paket Rechnung", k=10, **filters)  # type: ignore[arg-type]
    assert {r.knowledge_id for r in results} == expected_ids


@pytest.mark.parametrize("scan_limit", [0, 10_000], ids=["over-fetch-then-scan", "direct-scan"])
def test_filtered_search_falls_back_to_an_exact_scan(monkeypatch: pytest.MonkeyPatch, scan_limit: int) -> None:
    """One German item among 300 English ones: over-fetching cannot reach it, the filtered scan does."""
    monkeypatch.setattr(index_module, "_SCAN_LIMIT", scan_limit)
    built = AnswerIndex(HashingEmbedder())
    built.add([IndexedItem(i, f"where is my parcel number {i}", "a", "order_status", "en") for i in range(300)])
    built.add([IndexedItem(999, "Garantie Unterlagen verloren", "b", "warranty", "de")])
    results = built.search("where is my parcel", k=3, language="de")
    assert [r.knowledge_id for r in results] == [999]
    assert built.search_vector(HashingEmbedder().embed(["where is my parcel"])[0], k=3, language="de")[0][0] == 999
    english = built.search("where is my parcel number 7", k=3, language="en")
    assert english[0].knowledge_id == 7
    assert all(r.language == "en" for r in english)


def test_min_score_and_k(index: AnswerIndex) -> None:
    assert index.search("my parcel has not arrived", k=0) == []
    assert index.search("   ") == []
    strict = index.search("my parcel has not arrived", k=10, min_score=0.6)
    assert [r.knowledge_id for r in strict] == [1]


def test_re_adding_an_id_replaces_it(index: AnswerIndex) -> None:
    before = index.fingerprint
    index.add([IndexedItem(2, "Do you ship to Canada?", "Yes.", "shipping_options", "en", "CA", 1)])
    assert len(index) == 7
    assert index.fingerprint != before
    assert index.search("ship to Canada", k=1)[0].knowledge_id == 2
    assert all(r.knowledge_id != 2 for r in index.search("invoice with VAT", k=7, intent="invoice_vat"))


def test_remove(index: AnswerIndex) -> None:
    index.remove([1, 3, 12345])
    assert len(index) == 5
    assert {r.knowledge_id for r in index.search("parcel arrived", k=10)} == {2, 4, 5, 6, 7}
    index.remove(range(100))
    assert len(index) == 0
    assert index.search("parcel") == []


def test_fingerprint_depends_on_content_not_order() -> None:
    forward, backward = AnswerIndex(HashingEmbedder()), AnswerIndex(HashingEmbedder())
    forward.add(ITEMS)
    backward.add(list(reversed(ITEMS)))
    assert forward.fingerprint == backward.fingerprint
    forward.remove([7])
    assert forward.fingerprint != backward.fingerprint
    forward.add([ITEMS[6]])
    assert forward.fingerprint == backward.fingerprint


def test_hybrid_ranking_uses_both_signals() -> None:
    """Dense decides between lexical ties; lexical decides between dense ties; the item right on both wins."""
    query = "package missing"
    embedder = TableEmbedder(
        {
            query: [1, 0, 0, 0],
            "package missing from the box": [0.2, 1, 0, 0],  # lexically right, semantically off
            "my delivery never came": [1, 0.1, 0, 0],  # semantically right, no shared words
            "package missing, delivery never came": [1, 0.05, 0, 0],  # right on both counts
            "do you sell gift cards": [0, 0, 1, 0],
        }
    )
    built = AnswerIndex(embedder)
    built.add(
        [
            IndexedItem(1, "package missing from the box", "a", "damaged_defective", "en"),
            IndexedItem(2, "my delivery never came", "b", "order_status", "en"),
            IndexedItem(3, "package missing, delivery never came", "c", "order_status", "en"),
            IndexedItem(4, "do you sell gift cards", "d", "product_question", "en"),
        ]
    )
    ranking = [r.knowledge_id for r in built.search(query, k=4)]
    assert ranking[0] == 3
    assert ranking[-1] == 4
    assert ranking.index(2) < ranking.index(1)  # the dense signal carries more weight


def test_save_and_load_round_trip(index: AnswerIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"] == "hashing"
    assert manifest["dimension"] == 256
    assert manifest["count"] == 7
    assert manifest["fingerprint"] == index.fingerprint
    loaded = AnswerIndex.load(tmp_path / "idx", HashingEmbedder())
    assert len(loaded) == 7
    assert loaded.fingerprint == index.fingerprint
    assert loaded.search("my parcel has not arrived", k=3) == index.search("my parcel has not arrived", k=3)
    loaded.add([IndexedItem(8, "Is it waterproof?", "Yes.", "product_question", "en")])
    assert loaded.search("waterproof", k=1)[0].knowledge_id == 8


@pytest.mark.parametrize(
    "embedder",
    [HashingEmbedder(128), TableEmbedder({}, dimension=256)],
    ids=["other-dimension", "other-model"],
)
def test_load_refuses_a_different_embedder(index: AnswerIndex, tmp_path: Path, embedder: HashingEmbedder) -> None:
    index.save(tmp_path)
    with pytest.raises(ModelError, match="replydesk reindex"):
        AnswerIndex.load(tmp_path, embedder)


def test_load_refuses_missing_or_tampered_files(index: AnswerIndex, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="replydesk reindex"):
        AnswerIndex.load(tmp_path / "nothing", HashingEmbedder())
    index.save(tmp_path)
    items = (tmp_path / "items.jsonl").read_text(encoding="utf-8").replace("VAT", "tax")
    (tmp_path / "items.jsonl").write_text(items, encoding="utf-8")
    with pytest.raises(ModelError, match="does not match its manifest"):
        AnswerIndex.load(tmp_path, HashingEmbedder())


def test_switches_to_approximate_above_the_limit_and_back(tmp_path: Path) -> None:
    built = AnswerIndex(HashingEmbedder(64), exact_limit=40)
    items = [
        IndexedItem(i, f"question {i} about topic {i % 7} and colour {i % 5}", "a", "other", "en") for i in range(60)
    ]
    built.add(items[:40])
    assert not built.approximate
    built.add(items[40:])
    assert built.approximate
    assert built.search("question 17 about topic 3 and colour 2", k=1)[0].knowledge_id == 17
    built.add([IndexedItem(17, "completely different text now", "b", "other", "en")])
    assert built.search("completely different text", k=1)[0].knowledge_id == 17
    built.save(tmp_path)
    loaded = AnswerIndex.load(tmp_path, HashingEmbedder(64))
    assert loaded.approximate
    assert loaded.fingerprint == built.fingerprint
    assert loaded.search("question 42 about topic 0 and colour 2", k=1)[0].knowledge_id == 42
    built.remove(range(41))
    assert not built.approximate  # 19 left, at most half the limit
    assert built.search("question 42 about topic 0 and colour 2", k=1)[0].knowledge_id == 42


def test_add_rejects_vectors_of_the_wrong_shape() -> None:
    built = AnswerIndex(HashingEmbedder(32))
    with pytest.raises(ModelError, match="expected"):
        built.add_embedded(ITEMS[:2], np.zeros((2, 16), dtype=np.float32))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Refunded, REFUND!", ["refund", "refund"]),
        ("荷物が届く", ["荷物", "物が", "が届", "届く"]),
        ("谢 ok 2024", ["谢", "ok"]),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_lexical_scores_are_normalised() -> None:
    lexical = LexicalIndex()
    lexical.add(1, "where is my parcel")
    lexical.add(2, "invoice please")
    lexical.add(3, "parcel damaged")
    scores = lexical.scores("where is my parcel", [1, 2, 3, 99])
    assert scores[2] == 0.0
    assert scores[99] == 0.0
    assert 0.75 <= scores[1] <= 1.0  # a full match, damped a little for being longer than average
    assert 0.0 < scores[3] < scores[1]
    assert lexical.candidates("parcel") in ([1, 3], [3, 1])
    lexical.remove(3)
    assert lexical.candidates("parcel") == [1]


@pytest.mark.slow
def test_real_embedder_retrieves_paraphrases() -> None:
    built = AnswerIndex(SentenceTransformerEmbedder())
    built.add(ITEMS)
    assert built.search("my package never came", k=1, language="en")[0].knowledge_id == 1
    assert built.search("I need a tax receipt for my company", k=1, language="en")[0].knowledge_id == 2


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it embeds: proves which answers were (re-)embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.embedded.extend(texts)
        return super().embed(texts)


def test_a_saved_index_is_updated_incrementally(tmp_path: Path) -> None:
    from engine.components import load_or_build_index

    def item(i: int, question: str) -> IndexedItem:
        return IndexedItem(id=i, question=question, answer=f"answer {i}", intent="order_status", language="en")

    items = [item(1, "where is my parcel"), item(2, "can I return it"), item(3, "is it waterproof")]
    first = CountingEmbedder()
    index = load_or_build_index(tmp_path, items, first)
    assert len(first.embedded) == 3 and len(index) == 3

    changed = [item(1, "where is my parcel"), item(2, "how do I send it back"), item(4, "does it fit a 12 inch")]
    second = CountingEmbedder()
    updated = load_or_build_index(tmp_path, changed, second)
    assert sorted(second.embedded) == ["does it fit a 12 inch", "how do I send it back"]  # only new and changed
    assert sorted(i.id for i in updated.items()) == [1, 2, 4]
    assert updated.get(2) == changed[1]

    third = CountingEmbedder()
    load_or_build_index(tmp_path, changed, third)
    assert third.embedded == []  # nothing changed: nothing embedded
