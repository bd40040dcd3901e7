"""The past-answer index: hybrid (dense + lexical) search over knowledge items, with filters.

What is embedded: the item's *question* (the buyer message it answered), or the answer when an item
has no question. A new buyer message is compared with past buyer messages (like with like, which is
what MiniLM is trained for); answers carry greetings, signatures and policy boilerplate that would
pull every query towards the longest template.

Dense scores come from faiss: an exact `IndexFlatIP` inside an `IndexIDMap2` up to `exact_limit`
items, an `IndexIVFFlat` (inner product, trained on the items at hand) above it; the switch happens
inside `add`/`remove`. Vectors are also kept in a matrix so filtered searches can fall back to an
exact scan over just the matching items. Not safe for concurrent writers without the internal lock,
which every public method takes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from engine.errors import ModelError
from engine.nlp.lexical import LexicalIndex
from engine.nlp.protocols import Embedder, RetrievedAnswer

DENSE_WEIGHT = 0.7  # the rest goes to the lexical score
_SCAN_LIMIT = 10_000  # a filter matching at most this many items is answered by an exact scan
_MAX_FETCH = 2_000
_MANIFEST = "manifest.json"
_ITEMS = "items.jsonl"
_FAISS = "index.faiss"
_FORMAT_VERSION = 1
_FINGERPRINT_MODULUS = 1 << 256


@dataclass(frozen=True)
class IndexedItem:
    id: int
    question: str
    answer: str
    intent: str
    language: str
    marketplace: str | None = None
    store_id: int | None = None

    @property
    def search_text(self) -> str:
        return self.question if self.question.strip() else self.answer


@dataclass(frozen=True)
class _Filters:
    language: str | None = None
    intent: str | None = None
    marketplace: str | None = None
    store_id: int | None = None

    @property
    def active(self) -> bool:
        return any(value is not None for value in dataclasses.astuple(self))

    def accepts(self, item: IndexedItem) -> bool:
        return all(getattr(item, name) == value for name, value in self.wanted().items())

    def wanted(self) -> dict[str, str | int]:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}


class _Columns:
    """The filterable fields as integer-coded arrays aligned with the vector rows, so a filter over
    100,000 items is a few vectorised comparisons instead of a Python loop."""

    fields = ("language", "intent", "marketplace", "store_id")

    def __init__(self) -> None:
        self._codes: dict[str, dict[object, int]] = {name: {} for name in self.fields}
        self._arrays = {name: np.zeros(0, dtype=np.int32) for name in self.fields}

    def reserve(self, rows: int) -> None:
        for name, array in self._arrays.items():
            if rows > array.shape[0]:
                grown = np.full(max(rows, 2 * array.shape[0], 64), -1, dtype=np.int32)
                grown[: array.shape[0]] = array
                self._arrays[name] = grown

    def set_row(self, row: int, item: IndexedItem) -> None:
        for name in self.fields:
            codes = self._codes[name]
            self._arrays[name][row] = codes.setdefault(getattr(item, name), len(codes))

    def move_row(self, source: int, target: int) -> None:
        for array in self._arrays.values():
            array[target] = array[source]

    def mask(self, filters: _Filters, rows: int) -> np.ndarray:
        mask = np.ones(rows, dtype=bool)
        for name, value in filters.wanted().items():
            code = self._codes[name].get(value)
            if code is None:
                return np.zeros(rows, dtype=bool)
            mask &= self._arrays[name][:rows] == code
        return mask


def embedder_name(embedder: Embedder) -> str:
    return str(getattr(embedder, "model_name", type(embedder).__name__))


def item_digest(item: IndexedItem) -> int:
    payload = json.dumps(dataclasses.astuple(item), ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest(), "big")


# Exact search scans every vector (about 18 ms per query at 100k x 384 on 2 cores, memory-bound); above this
# size the IVF index answers in about 1-2 ms with recall@5 of about 0.98 against exact.
EXACT_LIMIT = 50_000


def fingerprint_of(items: Iterable[IndexedItem]) -> str:
    """The `AnswerIndex.fingerprint` these items would give, computed without embedding anything."""
    total = count = 0
    for item in items:
        total = (total + item_digest(item)) % _FINGERPRINT_MODULUS
        count += 1
    return f"{count}-{total:064x}"


class AnswerIndex:
    def __init__(self, embedder: Embedder, *, exact_limit: int = EXACT_LIMIT) -> None:
        self.embedder = embedder
        self.exact_limit = exact_limit
        self.dimension = embedder.dimension
        self._lock = threading.RLock()
        self._items: dict[int, IndexedItem] = {}
        self._rows: dict[int, int] = {}  # id -> row in _matrix
        self._row_ids: list[int] = []
        self._matrix = np.zeros((0, self.dimension), dtype=np.float32)
        self._columns = _Columns()
        self._lexical = LexicalIndex()
        self._digest_sum = 0
        self._faiss: Any = self._new_exact_index()
        self.approximate = False

    # ---- writing -------------------------------------------------------------------------------

    def add(self, items: Sequence[IndexedItem]) -> None:
        """Embed and index `items`; an id already present is replaced."""
        unique = list({item.id: item for item in items}.values())
        if not unique:
            return
        vectors = self._check_vectors(self.embedder.embed([item.search_text for item in unique]), len(unique))
        self.add_embedded(unique, vectors)

    def add_embedded(self, items: Sequence[IndexedItem], vectors: np.ndarray) -> None:
        """Index items whose vectors are already computed (rebuilds, benchmarks). Rows must be L2-normalised."""
        vectors = self._check_vectors(vectors, len(items))
        with self._lock:
            self._remove_ids([item.id for item in items if item.id in self._items])
            start = len(self._row_ids)
            self._reserve(start + len(items))
            self._matrix[start : start + len(items)] = vectors
            for offset, item in enumerate(items):
                self._items[item.id] = item
                self._rows[item.id] = start + offset
                self._row_ids.append(item.id)
                self._columns.set_row(start + offset, item)
                self._lexical.add(item.id, item.search_text)
                self._digest_sum = (self._digest_sum + item_digest(item)) % _FINGERPRINT_MODULUS
            ids = np.fromiter((item.id for item in items), dtype=np.int64, count=len(items))
            if not self.approximate and len(self._row_ids) > self.exact_limit:
                self._switch(approximate=True)
            else:
                self._faiss.add_with_ids(vectors, ids)

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._remove_ids([doc_id for doc_id in set(ids) if doc_id in self._items])
            # Hysteresis: go back to exact search only well below the limit, so a delete/add cycle
            # around the limit does not retrain the approximate index each time.
            if self.approximate and len(self._row_ids) <= self.exact_limit // 2:
                self._switch(approximate=False)

    def _remove_ids(self, ids: list[int]) -> None:
        if not ids:
            return
        self._faiss.remove_ids(np.asarray(ids, dtype=np.int64))
        for doc_id in ids:
            item = self._items.pop(doc_id)
            self._lexical.remove(doc_id)
            self._digest_sum = (self._digest_sum - item_digest(item)) % _FINGERPRINT_MODULUS
            row = self._rows.pop(doc_id)
            last = len(self._row_ids) - 1
            if row != last:  # move the last row into the hole
                moved = self._row_ids[last]
                self._matrix[row] = self._matrix[last]
                self._columns.move_row(last, row)
                self._row_ids[row] = moved
                self._rows[moved] = row
            self._row_ids.pop()

    def _reserve(self, rows: int) -> None:
        self._columns.reserve(rows)
        if rows <= self._matrix.shape[0]:
            return
        grown = np.zeros((max(rows, 2 * self._matrix.shape[0], 64), self.dimension), dtype=np.float32)
        grown[: len(self._row_ids)] = self._matrix[: len(self._row_ids)]
        self._matrix = grown

    def _switch(self, *, approximate: bool) -> None:
        vectors = self._matrix[: len(self._row_ids)]
        ids = np.asarray(self._row_ids, dtype=np.int64)
        self._faiss = self._new_ivf_index(vectors) if approximate else self._new_exact_index()
        self._faiss.add_with_ids(vectors, ids)
        self.approximate = approximate

    def _new_exact_index(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _new_ivf_index(self, training: np.ndarray) -> Any:
        n = training.shape[0]
        # ~sqrt(n) lists with at least 39 training points each (faiss's own rule of thumb).
        nlist = max(1, min(int(math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234  # deterministic k-means
        index.train(training)
        index.nprobe = min(nlist, max(8, nlist // 10))
        # A hashtable direct map lets the IVF index remove ids and reconstruct vectors by id.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        return index

    def _check_vectors(self, vectors: np.ndarray, count: int) -> np.ndarray:
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.shape != (count, self.dimension):
            raise ModelError(
                f"The embedder returned vectors of shape {array.shape}, expected ({count}, {self.dimension}); "
                "check REPLYDESK_EMBEDDING_MODEL and rebuild with `replydesk reindex`."
            )
        return array

    # ---- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: int) -> IndexedItem | None:
        return self._items.get(item_id)

    def items(self) -> list[IndexedItem]:
        with self._lock:
            return list(self._items.values())

    def sync(self, items: Sequence[IndexedItem]) -> tuple[int, int]:
        """Make the index hold exactly `items`, embedding only what is new or changed; (added, removed)."""
        wanted = {item.id: item for item in items}
        held = {item.id: item for item in self.items()}
        stale = [item_id for item_id, item in held.items() if wanted.get(item_id) != item]
        fresh = [item for item_id, item in wanted.items() if held.get(item_id) != item]
        self.remove(stale)
        self.add(fresh)
        return len(fresh), len(stale)

    @property
    def fingerprint(self) -> str:
        """Order-independent hash of every indexed item (id, texts, labels); changes with any edit."""
        return f"{len(self._items)}-{self._digest_sum:064x}"

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        language: str | None = None,
        intent: str | None = None,
        marketplace: str | None = None,
        store_id: int | None = None,
        min_score: float = 0.0,
    ) -> list[RetrievedAnswer]:
        """Best `k` items for `query`: DENSE_WEIGHT × cosine (clipped to [0, 1]) + the rest × BM25."""
        if k <= 0 or not query.strip():
            return []
        vector = self._check_vectors(self.embedder.embed([query]), 1)[0]
        filters = _Filters(language, intent, marketplace, store_id)
        with self._lock:
            if not self._items:
                return []
            fetch = max(4 * k, 50)
            candidates = set(self._dense_hits(vector, filters, fetch))
            lexical = self._lexical.candidates(query, limit=fetch * (4 if filters.active else 1))
            if filters.active:
                lexical = [doc_id for doc_id in lexical if filters.accepts(self._items[doc_id])][:fetch]
            candidates.update(lexical)
            ranked = self._rank(query, vector, candidates)
            return [answer for answer in ranked if answer.score >= min_score][:k]

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        k: int = 5,
        language: str | None = None,
        intent: str | None = None,
        marketplace: str | None = None,
        store_id: int | None = None,
    ) -> list[tuple[int, float]]:
        """Dense-only search with a precomputed query vector: (id, cosine) pairs, best first."""
        query = self._check_vectors(np.asarray(vector).reshape(1, -1), 1)[0]
        with self._lock:
            hits = self._dense_hits(query, _Filters(language, intent, marketplace, store_id), k)
            return sorted(hits.items(), key=lambda hit: -hit[1])[:k]

    def _dense_hits(self, vector: np.ndarray, filters: _Filters, count: int) -> dict[int, float]:
        """Up to `count` (id, cosine) pairs passing `filters`.

        A selective filter scans its matching rows exactly; a broad one over-fetches from faiss by the
        filter's selectivity and falls back to the scan when too few hits survive.
        """
        rows = len(self._row_ids)
        if not filters.active:
            return self._faiss_search(vector, count)
        mask = self._columns.mask(filters, rows)
        matched = int(mask.sum())
        if matched <= _SCAN_LIMIT:
            return self._scan(vector, np.flatnonzero(mask), count)
        fetch = min(rows, _MAX_FETCH, 2 * count * math.ceil(rows / matched))
        found = self._faiss_search(vector, fetch)
        hits = {doc_id: score for doc_id, score in found.items() if mask[self._rows[doc_id]]}
        if len(hits) < count:
            return self._scan(vector, np.flatnonzero(mask), count)
        return hits

    def _faiss_search(self, vector: np.ndarray, count: int) -> dict[int, float]:
        count = min(count, len(self._items))
        if count <= 0:
            return {}
        # One query gains nothing from OpenMP threads, and on a busy 2-core host they cost 5-10x
        # (spin-waiting workers). The setting is per calling thread, so it is restored afterwards.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._faiss.search(vector.reshape(1, -1), count)
        finally:
            faiss.omp_set_num_threads(threads)
        return {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}

    def _scan(self, vector: np.ndarray, rows: np.ndarray, count: int) -> dict[int, float]:
        if rows.size == 0:
            return {}
        # einsum, not `@`: BLAS would start its thread pool for a matrix-vector product, which costs
        # 2-3x on a busy 2-core host.
        scores = np.einsum("ij,j->i", self._matrix[rows], vector)
        top = np.argpartition(-scores, count - 1)[:count] if scores.size > count else np.arange(scores.size)
        return {self._row_ids[int(rows[i])]: float(scores[i]) for i in top}

    def _rank(self, query: str, vector: np.ndarray, candidates: set[int]) -> list[RetrievedAnswer]:
        if not candidates:
            return []
        ids = sorted(candidates)
        dense = self._matrix[[self._rows[doc_id] for doc_id in ids]] @ vector
        lexical = self._lexical.scores(query, ids)
        answers = []
        for doc_id, cosine in zip(ids, dense, strict=True):
            score = DENSE_WEIGHT * min(1.0, max(0.0, float(cosine))) + (1.0 - DENSE_WEIGHT) * lexical[doc_id]
            item = self._items[doc_id]
            answers.append(
                RetrievedAnswer(
                    knowledge_id=item.id,
                    question=item.question,
                    answer=item.answer,
                    intent=item.intent,
                    language=item.language,
                    score=round(min(1.0, max(0.0, score)), 6),
                )
            )
        return sorted(answers, key=lambda answer: (-answer.score, answer.knowledge_id))

    # ---- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write index.faiss, items.jsonl (row order) and manifest.json; the manifest goes last."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            faiss.write_index(self._faiss, str(directory / _FAISS))
            with (directory / _ITEMS).open("w", encoding="utf-8") as out:
                for doc_id in self._row_ids:
                    out.write(json.dumps(dataclasses.asdict(self._items[doc_id]), ensure_ascii=False) + "\n")
            manifest = {
                "format": _FORMAT_VERSION,
                "model": embedder_name(self.embedder),
                "dimension": self.dimension,
                "count": len(self._items),
                "fingerprint": self.fingerprint,
                "approximate": self.approximate,
                "exact_limit": self.exact_limit,
            }
            (directory / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, embedder: Embedder) -> AnswerIndex:
        manifest = _read_manifest(directory)
        model = embedder_name(embedder)
        if manifest.get("model") != model or manifest.get("dimension") != embedder.dimension:
            raise ModelError(
                f"The answer index in {directory} was built with {manifest.get('model')} "
                f"({manifest.get('dimension')} dimensions) but the embedder is {model} "
                f"({embedder.dimension} dimensions); rebuild it with `replydesk reindex`."
            )
        try:
            items = [
                IndexedItem(**json.loads(line))
                for line in (directory / _ITEMS).read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            faiss_index = faiss.read_index(str(directory / _FAISS))
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise ModelError(
                f"The answer index in {directory} is unreadable ({exc}); rebuild it with `replydesk reindex`."
            ) from exc
        index = cls(embedder, exact_limit=int(manifest.get("exact_limit", EXACT_LIMIT)))
        ids = np.asarray([item.id for item in items], dtype=np.int64)
        vectors = faiss_index.reconstruct_batch(ids) if len(ids) else np.zeros((0, embedder.dimension))
        with index._lock:
            index._faiss = faiss_index
            index.approximate = bool(manifest.get("approximate", False))
            index._reserve(len(items))
            index._matrix[: len(items)] = vectors
            for row, item in enumerate(items):
                index._items[item.id] = item
                index._rows[item.id] = row
                index._row_ids.append(item.id)
                index._columns.set_row(row, item)
                index._lexical.add(item.id, item.search_text)
                index._digest_sum = (index._digest_sum + item_digest(item)) % _FINGERPRINT_MODULUS
        if index.fingerprint != manifest.get("fingerprint") or faiss_index.ntotal != len(items):
            raise ModelError(
                f"The answer index in {directory} does not match its manifest (a partial write?); "
                "rebuild it with `replydesk reindex`."
            )
        return index


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / _MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"No answer index at {directory} ({_MANIFEST} is missing); build it with `replydesk reindex`."
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); rebuild the index with `replydesk reindex`.") from exc
    if not isinstance(data, dict) or data.get("format") != _FORMAT_VERSION:
        raise ModelError(f"{path} has an unknown format; rebuild the index with `replydesk reindex`.")
    return data
