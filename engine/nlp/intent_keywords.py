"""`KeywordIntentClassifier`: multilingual keyword rules for buyer-message intents. Deterministic and needs no
training: the baseline the trained `IntentModel` is compared with, and a classifier for tests."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.nlp.intent import normalise_message
from engine.nlp.protocols import IntentGuess
from engine.taxonomy import INTENTS

# Checked in this order; the intent with the most matching patterns wins, ties go to the earlier intent.
# fmt: off
KEYWORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cancel_order", (
        r"\bcancel", r"storn", r"annul", r"cancella", r"cancela", r"キャンセル", r"取消", r"取り消", r"anuluj",
        r"iptal", r"avbest", r"إلغاء", r"\bannuleren",
    )),
    ("damaged_defective", (
        r"broken", r"damaged", r"defect", r"doesn.?t work", r"not working", r"wrong (item|size|colou?r)",
        r"kaputt", r"defekt", r"besch[äa]digt", r"funktioniert nicht", r"falsche", r"cass[ée]", r"abîm",
        r"ne fonctionne pas", r"rott[oa]", r"danneggiat", r"non funziona", r"sbagliat", r"rot[oa]\b",
        r"no funciona", r"dañad", r"equivocad", r"壊れ", r"破損", r"動かない", r"不良", r"違う商品", r"quebrad",
        r"uszkodz", r"kapot", r"trasig", r"bozuk", r"معطل", r"تالف", r"损坏", r"坏了",
    )),
    ("return_refund", (
        r"\breturn", r"refund", r"retour", r"r[üu]cksend", r"erstatt", r"zur[üu]ck", r"rembours", r"renvoy",
        r"\breso\b", r"rimborso", r"restituire", r"devoluci[óo]n", r"devolver", r"reembolso", r"返品", r"返金",
        r"退货", r"退款", r"zwrot", r"terugbetal", r"återbetal", r"iade", r"استرجاع", r"استرداد",
    )),
    ("invoice_vat", (
        r"invoice", r"receipt", r"\bvat\b", r"rechnung", r"ust", r"facture", r"\btva\b", r"fattura", r"factura",
        r"\biva\b", r"請求書", r"領収書", r"发票", r"faktur", r"nota fiscal", r"fatura", r"فاتورة",
    )),
    ("warranty", (
        r"warrant", r"guarantee", r"repair", r"spare part", r"garantie", r"gew[äa]hrleist", r"reparatur",
        r"ersatzteil", r"r[ée]paration", r"garanzia", r"riparazion", r"garant[íi]a", r"reparaci[óo]n", r"保証",
        r"修理", r"保修", r"gwarancj", r"garanti", r"ضمان",
    )),
    ("change_order", (
        r"change (my |the )?(address|order|size|colou?r)", r"wrong address", r"adresse [äa]ndern",
        r"\b[äa]ndern\b", r"changer (l.)?adresse", r"modifier", r"cambiare", r"modificar", r"cambiar",
        r"住所.*変更", r"変更", r"修改", r"zmieni", r"wijzig", r"ändra", r"değiştir", r"تغيير",
    )),
    ("payment_pricing", (
        r"charged twice", r"\bprice", r"discount", r"coupon", r"payment", r"zahlung", r"preis", r"rabatt",
        r"gutschein", r"doppelt", r"paiement", r"\bprix\b", r"r[ée]duction", r"pagamento", r"prezzo", r"sconto",
        r"pago", r"precio", r"descuento", r"cup[óo]n", r"支払", r"値段", r"価格", r"割引", r"クーポン", r"价格",
        r"cena", r"płatno", r"betaling", r"prijs", r"betalning", r"pris", r"ödeme", r"fiyat", r"السعر",
        r"الدفع",
    )),
    ("order_status", (
        r"where is", r"tracking", r"not (yet )?(arrived|received)", r"still (nothing|waiting)", r"\bdelivery\b",
        r"wo (ist|bleibt)", r"sendungsverfolgung", r"nicht angekommen", r"noch nicht", r"immer noch",
        r"o[uù] est", r"suivi", r"pas (encore )?re[çc]u", r"toujours rien", r"dov.?[èe]", r"tracciamento",
        r"non (ho )?ancora", r"ricevuto", r"d[óo]nde est[áa]", r"seguimiento", r"no (me )?ha llegado",
        r"todav[íi]a", r"届かない", r"届いていない", r"まだ", r"追跡", r"配送状況", r"物流", r"还没",
        r"gdzie jest", r"nie dotar", r"waar blijft", r"niet ontvangen", r"var är", r"inte kommit", r"nerede",
        r"gelmedi", r"أين", r"لم يصل", r"rastreio", r"não chegou", r"onde est[áa]",
    )),
    ("shipping_options", (
        r"ship(ping)? to", r"express", r"expedited", r"combined shipping", r"versand nach", r"liefern sie nach",
        r"livr(ez|aison) (en|au|vers)", r"spedi(te|zione) (in|verso)", r"env[íi]o(s)? a", r"envían a",
        r"発送方法", r"速達", r"海外発送", r"邮寄到", r"wysył", r"verzend", r"frakt", r"kargo", r"الشحن",
    )),
    ("product_question", (
        r"compatible", r"does (it|this) (fit|work with)", r"what size", r"dimensions", r"material",
        r"kompatibel", r"passt (das|es)", r"welche gr[öo][ßs]e", r"ma[ßs]e", r"compatibil", r"taille",
        r"dimensioni", r"taglia", r"tamaño", r"talla", r"medidas", r"対応", r"サイズ", r"素材", r"尺寸",
        r"材质", r"rozmiar", r"maat", r"storlek", r"beden", r"مقاس",
    )),
    ("complaint_feedback", (
        r"complain", r"unacceptable", r"terrible", r"worst", r"disappointed", r"review", r"rude", r"beschwer",
        r"unversch[äa]mt", r"entt[äa]uscht", r"frechheit", r"inadmissible", r"d[ée][çc]u", r"scandal",
        r"inaccettabile", r"vergogna", r"delus", r"reclamaci[óo]n", r"queja", r"vergüenza", r"inaceptable",
        r"最悪", r"ひどい", r"クレーム", r"がっかり", r"差评", r"投诉", r"skarg", r"klacht", r"klagomål",
        r"şikayet", r"شكوى",
    )),
    ("no_response_needed", (
        r"^\W*((ok(ay)?|thanks?|thank you|thx|great|perfect|got it|received|cheers)\W*)+$",
        r"^\W*(danke|alles klar)", r"^\W*(merci|parfait|d.accord)", r"^\W*(grazie|perfetto|ok grazie)",
        r"^\W*(gracias|perfecto|vale)", r"^\W*(ありがとう|了解|承知|受け取りました)", r"^\W*(谢谢|收到)",
        r"^\W*(obrigad|dziękuj|dank je|tack|teşekkür)", r"^\W*(شكرا)", r"thanks? (for|a lot)", r"vielen dank",
        r"merci beaucoup", r"mille grazie", r"muchas gracias", r"ありがとうございました",
    )),
)
# fmt: on
_COMPILED_RULES = tuple(
    (intent, tuple(re.compile(p, re.IGNORECASE) for p in patterns)) for intent, patterns in KEYWORD_RULES if patterns
)


class KeywordIntentClassifier:
    """Multilingual keyword rules: deterministic, no training. Scores are rough, never above 0.9."""

    version = "keywords-1"

    def classify(self, text: str, *, language: str | None = None) -> IntentGuess:
        cleaned = normalise_message(text)
        hits = {intent: sum(1 for p in patterns if p.search(cleaned)) for intent, patterns in _COMPILED_RULES}
        best = max(hits, key=lambda intent: hits[intent])  # first intent wins ties: rule order is priority
        if not cleaned or hits[best] == 0:
            scores = {i: (0.5 if i == "other" else 0.0) for i in INTENTS}
            return IntentGuess(intent="other", score=0.5, needs_review=True, scores=scores)
        total = sum(hits.values())
        top = min(0.9, 0.5 + 0.4 * hits[best] / total)
        rest = 1.0 - top
        others = max(total - hits[best], 1)
        scores = {i: round(top if i == best else rest * hits.get(i, 0) / others, 4) for i in INTENTS}
        tie = sum(1 for v in hits.values() if v == hits[best]) > 1
        return IntentGuess(intent=best, score=round(top, 4), needs_review=tie, scores=scores)

    def classify_many(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[IntentGuess]:
        langs = languages if languages is not None else [None] * len(texts)
        return [self.classify(t, language=lang) for t, lang in zip(texts, langs, strict=True)]
