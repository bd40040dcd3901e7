"""Intent ids, languages and marketplaces: the vocabulary every part of ReplyDesk shares.

Loaded from `knowledge/taxonomy.json` (kept identical to the team's shared taxonomy; a test checks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
TAXONOMY_PATH = KNOWLEDGE_DIR / "taxonomy.json"


@dataclass(frozen=True)
class Marketplace:
    code: str  # "US", "DE", ...
    domain: str  # "amazon.de"
    relay: str  # "marketplace.amazon.de"
    default_language: str  # ISO 639-1
    marketplace_id: str  # Amazon's id, "A1PA6795UKMFR9"


@dataclass(frozen=True)
class Taxonomy:
    intents: tuple[str, ...]
    intent_labels: dict[str, str]
    languages: tuple[str, ...]
    marketplaces: dict[str, Marketplace]

    def marketplace_by_id(self, marketplace_id: str) -> Marketplace | None:
        return next((m for m in self.marketplaces.values() if m.marketplace_id == marketplace_id), None)

    def marketplace_by_host(self, host: str) -> Marketplace | None:
        """The marketplace of a relay or shop host (`m.marketplace.amazon.co.jp` -> JP)."""
        host = host.lower().rstrip(".")
        best: Marketplace | None = None
        for m in self.marketplaces.values():
            for suffix in (m.relay, m.domain):
                if (host == suffix or host.endswith("." + suffix)) and (
                    best is None or len(m.domain) > len(best.domain)
                ):
                    best = m
        return best


@cache
def load_taxonomy(path: Path = TAXONOMY_PATH) -> Taxonomy:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Taxonomy(
        intents=tuple(i["id"] for i in data["intents"]),
        intent_labels={i["id"]: i["label"] for i in data["intents"]},
        languages=tuple(data["languages"]),
        marketplaces={code: Marketplace(code=code, **fields) for code, fields in data["marketplaces"].items()},
    )


INTENTS: tuple[str, ...] = load_taxonomy().intents
LANGUAGES: tuple[str, ...] = load_taxonomy().languages
MARKETPLACES: dict[str, Marketplace] = load_taxonomy().marketplaces
