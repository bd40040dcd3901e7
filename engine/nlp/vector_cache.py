"""`CachedEmbedder`: remembers the vectors of texts it has embedded, in one file per embedding model.

Training the intent model embeds every training example; between two trainings almost all of them are the
same, so a retrain embeds only the new ones. The file holds text digests and vectors (no pickles, so a damaged
or foreign file is simply ignored and rebuilt).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.nlp.protocols import Embedder

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class CachedEmbedder:
    """Implements `Embedder` over `inner`; call `save` to keep what was embedded for the next run."""

    def __init__(self, inner: Embedder, directory: Path, name: str) -> None:
        self.inner = inner
        self.path = directory / f"{_UNSAFE.sub('_', name)}-{inner.dimension}.npz"
        self._rows: dict[str, np.ndarray] = {}
        self._dirty = False
        self._load()

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_digest(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._rows:
                missing.setdefault(key, text)
        if missing:
            vectors = np.asarray(self.inner.embed(list(missing.values())), dtype=np.float32)
            self._rows.update(zip(missing, vectors, strict=True))
            self._dirty = True
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._rows[key] for key in keys])

    def save(self) -> None:
        """Write the cache atomically (a crash leaves the previous file)."""
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._rows)
        partial = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(partial, keys=np.array(keys), vectors=np.stack([self._rows[k] for k in keys]))
        partial.replace(self.path)
        self._dirty = False

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
                if vectors.ndim != 2 or vectors.shape[1] != self.dimension or len(keys) != len(vectors):
                    raise ValueError(f"shape {vectors.shape} does not fit {self.dimension} dimensions")
                self._rows = {str(k): v for k, v in zip(keys, vectors.astype(np.float32), strict=True)}
        except Exception as exc:  # a damaged file is rebuilt, never trusted
            log.warning("ignoring the embedding cache %s (%s); it will be rebuilt", self.path, exc)
            self._rows = {}
