"""Embedders: the hashing fake (always) and the packaged MiniLM model (slow, offline)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError
from engine.nlp.embeddings import HashingEmbedder, SentenceTransformerEmbedder, default_model_path


@pytest.mark.parametrize("dimension", [16, 256, 1024])
def test_hashing_embedder_is_deterministic_and_normalised(dimension: int) -> None:
    texts = ["Where is my parcel?", "Wo ist mein Paket?", "荷物はどこですか", ""]
    first = HashingEmbedder(dimension).embed(texts)
    second = HashingEmbedder(dimension).embed(texts)
    assert first.dtype == np.float32
    assert first.shape == (4, dimension)
    assert np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first[:3], axis=1), 1.0, atol=1e-5)
    assert not first[3].any()  # nothing to hash: the zero vector, not NaN


def test_hashing_embedder_reflects_shared_words() -> None:
    vectors = HashingEmbedder().embed(["my parcel has not arrived", "the parcel has not arrived yet", "invoice VAT"])
    assert vectors[0] @ vectors[1] > 0.5
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_hashing_embedder_empty_input() -> None:
    assert HashingEmbedder(32).embed([]).shape == (0, 32)


def test_hashing_embedder_rejects_tiny_dimension() -> None:
    with pytest.raises(ValueError):
        HashingEmbedder(4)


def test_wrong_model_path_names_the_path_and_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    with pytest.raises(ModelError) as info:
        SentenceTransformerEmbedder(str(missing))
    assert str(missing) in str(info.value)
    assert "REPLYDESK_EMBEDDING_MODEL" in str(info.value)


def test_default_model_path_is_a_model_folder() -> None:
    path = Path(default_model_path())
    assert (path / "config.json").is_file()
    assert (path / "modules.json").is_file()


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.mark.slow
def test_packaged_model_loads_offline(minilm: SentenceTransformerEmbedder) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert minilm.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.dimension == 384
    vectors = minilm.embed(["hello", "where is my order"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "paraphrase", "unrelated"),
    [
        ("Where is my parcel? It has not arrived.", "My package never came", "Can I get a VAT invoice?"),
        ("The item arrived broken", "It was damaged when it was delivered", "How do I change my address?"),
        ("I want to cancel my order", "Please cancel the purchase", "Is it dishwasher safe?"),
    ],
)
def test_paraphrases_are_close(minilm: SentenceTransformerEmbedder, text: str, paraphrase: str, unrelated: str) -> None:
    base, near, far = minilm.embed([text, paraphrase, unrelated])
    assert base @ near > 0.45
    assert base @ near > base @ far + 0.2
