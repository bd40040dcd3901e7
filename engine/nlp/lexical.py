"""A small incremental BM25 scorer whose tokens work for space-less scripts too.

Latin, Arabic and other spaced scripts give lower-cased words cut to six characters (a crude stem
that folds "refund"/"refunded", "livré"/"livraison" stays apart); Chinese, Japanese and Korean runs
give character bigrams (single characters for one-character runs). Scores are normalised to [0, 1]:
1.0 means every query term occurs in the document at an average document length.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

_STEM_LENGTH = 6
_K1 = 1.2
_B = 0.75
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9d]+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Word stems for spaced scripts plus character bigrams for CJK runs."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for run in _CJK_RUN.findall(normalised):
        if len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    spaced = _CJK_RUN.sub(" ", normalised)
    tokens.extend(word[:_STEM_LENGTH] for word in _WORD.findall(spaced) if len(word) > 1)
    return tokens


class LexicalIndex:
    """Inverted index over documents keyed by integer id; add, replace and remove are incremental."""

    def __init__(self) -> None:
        self._docs: dict[int, Counter[str]] = {}
        self._lengths: dict[int, int] = {}
        self._postings: dict[str, set[int]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, doc_id: int, text: str) -> None:
        if doc_id in self._docs:
            self.remove(doc_id)
        counts = Counter(tokenize(text))
        self._docs[doc_id] = counts
        length = sum(counts.values())
        self._lengths[doc_id] = length
        self._total_length += length
        for token in counts:
            self._postings.setdefault(token, set()).add(doc_id)

    def remove(self, doc_id: int) -> None:
        counts = self._docs.pop(doc_id, None)
        if counts is None:
            return
        self._total_length -= self._lengths.pop(doc_id)
        for token in counts:
            posting = self._postings[token]
            posting.discard(doc_id)
            if not posting:
                del self._postings[token]

    def idf(self, token: str) -> float:
        n = len(self._docs)
        df = len(self._postings.get(token, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def candidates(self, query: str, *, max_df_ratio: float = 0.05, limit: int = 200) -> list[int]:
        """Documents sharing a reasonably rare query token, best lexical score first.

        Tokens in more than `max_df_ratio` of the documents are skipped here (they are still scored):
        walking the posting list of "the" or "bitte" over 100,000 items would cost more than it finds.
        """
        n = len(self._docs)
        if n == 0:
            return []
        max_df = max(50, int(max_df_ratio * n))
        found: set[int] = set()
        for token in set(tokenize(query)):
            posting = self._postings.get(token)
            if posting and len(posting) <= max_df:
                found.update(posting)
        scores = self.scores(query, found)
        return sorted(found, key=lambda doc_id: -scores[doc_id])[:limit]

    def scores(self, query: str, doc_ids: Iterable[int]) -> dict[int, float]:
        """Normalised BM25 of `query` against each of `doc_ids` (unknown ids score 0)."""
        query_terms = Counter(tokenize(query))
        weights = {token: self.idf(token) for token in query_terms}
        ceiling = sum(weights[token] * count for token, count in query_terms.items())
        avg_length = self._total_length / len(self._docs) if self._docs else 1.0
        result: dict[int, float] = {}
        for doc_id in doc_ids:
            counts = self._docs.get(doc_id)
            if counts is None or ceiling <= 0:
                result[doc_id] = 0.0
                continue
            result[doc_id] = min(1.0, _bm25(query_terms, weights, counts, self._lengths[doc_id], avg_length) / ceiling)
        return result


def _bm25(
    query_terms: Mapping[str, int],
    weights: Mapping[str, float],
    counts: Mapping[str, int],
    length: int,
    avg_length: float,
) -> float:
    norm = _K1 * (1.0 - _B + _B * length / max(avg_length, 1e-9))
    score = 0.0
    for token, query_count in query_terms.items():
        tf = counts.get(token, 0)
        if tf:
            score += weights[token] * query_count * tf * (_K1 + 1.0) / (tf + norm)
    return score
