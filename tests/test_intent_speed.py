"""What makes `replydesk classify` fast stays exact: batched language detection answers like one-by-one detection,
and the streamed command keeps its contract (one line out per line in, same order)."""

from __future__ import annotations

import io
import json

from engine.components import Analyzer
from engine.nlp.intent_keywords import KeywordIntentClassifier
from engine.nlp.language import FakeLanguageDetector, FastTextLanguageDetector
from evals.bench_intent import message_mix

MESSAGES = [
    ("still nothing", None),
    ("ok", "DE"),
    ("Wo bleibt mein Paket???", "DE"),
    ("Bonjour, ma commande n'est toujours pas arrivée", None),
    ("注文をキャンセルしたいのですが", "JP"),
    ("退款什么时候到", None),
    ("Привет", None),
    ("", None),
    ("🙂🙂", "IT"),
    ("la talla M en vez de la L, cambio?", "ES"),
    ("Amazon Prime", "FR"),
]


def test_batched_detection_answers_like_single_detection() -> None:
    detector = FastTextLanguageDetector()
    priors = [{"DE": "de", "JP": "ja", "IT": "it", "ES": "es", "FR": "fr"}.get(m or "") for _, m in MESSAGES]
    texts = [t for t, _ in MESSAGES] + [r["text"] for r in message_mix(200)]
    priors += [None] * 200
    batched = detector.detect_many(texts, priors)
    assert batched == [detector.detect(t, prior=p) for t, p in zip(texts, priors, strict=True)]


def test_classify_stream_writes_one_line_per_record_in_order() -> None:
    from engine.cli import classify_stream

    records = [{"id": f"m{i}", "text": t, "marketplace": m} for i, (t, m) in enumerate(MESSAGES)]
    source = io.StringIO("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    out = io.StringIO()
    analyzer = Analyzer(FakeLanguageDetector(default="en"), KeywordIntentClassifier())
    assert classify_stream(analyzer, source, out, chunk_size=4) == len(records)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in records]
    assert set(lines[0]) == {"id", "language", "language_score", "intent", "intent_score"}
