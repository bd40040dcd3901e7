"""The compliance gate: every rule in several languages with exact spans, legitimate replies dense with
ids and numbers, allow-lists, SP-API length limits, verdict semantics, offsets and determinism."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.compliance import RULES, SP_API_TEXT_LIMITS, Verdict, Violation, check_reply
from engine.errors import InputError

DATASET = Path(__file__).resolve().parent.parent / "evals" / "datasets" / "compliance.jsonl"


def spans(verdict: Verdict) -> list[tuple[str, str]]:
    return [(v.rule, v.text) for v in verdict.violations]


# (text, rule, exact offending text)
BLOCKED = [
    ("See https://www.myshop-support.com/manuals/x200.", "link", "https://www.myshop-support.com/manuals/x200"),
    ("Die Anleitung steht auf meinshop.de bereit.", "link", "meinshop.de"),
    ("Le guide : bit.ly/3xYzAbc", "link", "bit.ly/3xYzAbc"),
    ("Visite www.tienda-xyz.es/ayuda para más.", "link", "www.tienda-xyz.es/ayuda"),
    ("詳しくは shop-example.co.jp をご覧ください。", "link", "shop-example.co.jp"),
    ("It is all on myshop dot com.", "link", "myshop dot com"),
    ("Visit https://amazon.de.evil.example.com/x", "link", "https://amazon.de.evil.example.com/x"),
    ("Write to support@gadgetworld.com today.", "email", "support@gadgetworld.com"),
    ("Write to service (at) gadgetworld (dot) com.", "email", "service (at) gadgetworld (dot) com"),
    ("Schreiben Sie an kundenservice[at]technikhaus24.de.", "email", "kundenservice[at]technikhaus24.de"),
    ("Scriva a assistenza at negozio dot it grazie", "email", "assistenza at negozio dot it"),
    ("Escríbanos a ayuda＠tiendaxyz.es hoy.", "email", "ayuda＠tiendaxyz.es"),
    ("请把照片发到 kefu@gadgetcn.cn 。", "email", "kefu@gadgetcn.cn"),
    ("Call us at +1 555 123 4567 today.", "phone", "+1 555 123 4567"),
    ("Please call (555) 123-4567.", "phone", "(555) 123-4567"),
    ("Rufen Sie uns unter 030 1234567 an.", "phone", "030 1234567"),
    ("Appelez-nous au 01 23 45 67 89.", "phone", "01 23 45 67 89"),
    ("Notre numéro : +33 6 12 34 56 78.", "phone", "+33 6 12 34 56 78"),
    ("Ci chiami al 347 123 4567.", "phone", "347 123 4567"),
    ("Llámenos al 912 345 678.", "phone", "912 345 678"),
    ("お電話は090-1234-5678までお願いします。", "phone", "090-1234-5678"),
    ("お電話は０９０ー１２３４ー５６７８まで。", "phone", "０９０ー１２３４ー５６７８"),
    ("请拨打400-123-4567联系我们。", "phone", "400-123-4567"),
    ("电话：13800138000", "phone", "13800138000"),
    ("Tel. 12345678", "phone", "12345678"),
    ("Kontakt: 0049 30 12345678", "phone", "0049 30 12345678"),
    ("Follow us on Instagram.", "messenger", "Instagram"),
    ("Kontaktieren Sie uns per Telegram.", "messenger", "Telegram"),
    ("Écrivez-nous sur Facebook.", "messenger", "Facebook"),
    ("Escríbenos por WhatsApp.", "messenger", "WhatsApp"),
    ("LINE IDはshop123です。", "messenger", "LINE ID"),
    ("请加微信 gadget888 联系客服。", "messenger", "微信"),
    ("Ping @gadgetworld_help for help.", "messenger", "@gadgetworld_help"),
    ("You can buy directly from us next time.", "off_amazon", "buy directly from us"),
    ("We can refund you via PayPal.", "off_amazon", "PayPal"),
    ("Wir erstatten den Betrag per Banküberweisung.", "off_amazon", "Banküberweisung"),
    ("Remboursement par virement bancaire.", "off_amazon", "virement bancaire"),
    ("Possiamo rimborsarla con un bonifico.", "off_amazon", "bonifico"),
    ("Le hacemos una transferencia bancaria.", "off_amazon", "transferencia bancaria"),
    ("差額は銀行振込でお返しします。", "off_amazon", "銀行振込"),
    ("差价我们可以通过支付宝退给您。", "off_amazon", "支付宝"),
    ("Use the discount code SPRING20.", "marketing", "discount code"),
    ("Mit dem Gutscheincode SOMMER10 sparen Sie.", "marketing", "Gutscheincode"),
    ("Profitez du code promo BIENVENUE.", "marketing", "code promo"),
    ("Un codice sconto per lei.", "marketing", "codice sconto"),
    ("Aproveche este cupón.", "marketing", "cupón"),
    ("次回使えるクーポンです。", "marketing", "クーポン"),
    ("送您一张优惠券。", "marketing", "优惠券"),
    ("Please leave us a 5-star review.", "review_manipulation", "Please leave us a 5-star review"),
    (
        "Bitte geben Sie uns eine positive Bewertung.",
        "review_manipulation",
        "Bitte geben Sie uns eine positive Bewertung",
    ),
    (
        "Si vous modifiez votre avis, nous vous rembourserons.",
        "review_manipulation",
        "modifiez votre avis, nous vous rembourserons",
    ),
    (
        "La preghiamo di lasciarci una recensione positiva.",
        "review_manipulation",
        "La preghiamo di lasciarci una recensione positiva",
    ),
    (
        "Si elimina su valoración negativa, le devolvemos el dinero.",
        "review_manipulation",
        "elimina su valoración negativa, le devolvemos el dinero",
    ),
    ("星5のレビューをお願いします。", "review_manipulation", "星5のレビューをお願い"),
    ("删除差评后我们会给您退款。", "review_manipulation", "删除差评后我们会给您退款"),
    ("Hello,<br>your parcel is on its way.", "html", "<br>"),
    ("Vielen&nbsp;Dank, das Paket ist unterwegs.", "html", "&nbsp;"),
    ("Votre colis arrive <b>demain", "html", "<b>"),
    ("Hi {{buyer_name}}, it shipped.", "placeholder", "{{buyer_name}}"),
    ("Your tracking number is [Tracking Number].", "placeholder", "[Tracking Number]"),
    ("Hallo {name}, es ist unterwegs.", "placeholder", "{name}"),
    ("Bonjour <<prénom>>, c'est parti.", "placeholder", "<<prénom>>"),
    ("Gentile %s, spedito.", "placeholder", "%s"),
    ("［お客様名］様、本日発送しました。", "placeholder", "［お客様名］"),
]


@pytest.mark.parametrize(("text", "rule", "offending"), BLOCKED)
def test_each_rule_is_blocked_with_its_exact_span(text: str, rule: str, offending: str) -> None:
    verdict = check_reply(text)
    assert not verdict.allowed
    assert (rule, offending) in spans(verdict)
    found = next(v for v in verdict.violations if v.rule == rule)
    assert found.severity == "block"
    assert text[found.start : found.end] == offending
    assert found.explanation


LEGITIMATE = [
    "Your order 123-1234567-1234567 left on 12.03.2024 with UPS 1Z999AA10123456784; it arrives in 2-3 days.",
    "Spaced UPS number 1Z 999 AA1 01 2345 6784 and DHL 00340434161094042557, Royal Mail AB123456789GB.",
    "Yamato お問い合わせ番号 4321-8765-0921、日本郵便 0123-4567-8901、ゆうパック 123456789012。",
    "ASIN B08N5WRWNW, ASIN 0306406152, model WH-1000XM4, serial SN 0823 4471 9902, Seriennummer 0301234567.",
    "Prices: €12,99, 1.299,00 €, ¥1,980, $24.99, 1 299,00 €, 4.980円, ¥199.00, 19.99 / 24.99 / 9.99 USD.",
    "Dates and times: 2024-03-15, 15/03/2024, 03/15/2024, 2024年3月15日 14:30, 9.30 Uhr, 10h30.",
    'The box is 30 x 20 x 10 cm, the screen 12", it weighs 1,5 kg (3.2 lb); postcode 10115 Berlin, 〒100-0001.',
    "Please use Your Orders > Return or replace items on amazon.com or www.amazon.co.uk/gp/css/order-history.",
    "Bitte nutzen Sie auf amazon.de Meine Bestellungen > Artikel zurücksenden oder ersetzen.",
    "EAN 4006381333931, ISBN 978-3-16-148410-0, 3-5 Werktage, Mo-Fr 9-18 Uhr, 5000 mAh, 3.7 V.",
    "Regarding your feedback, we have issued a full refund of $24.99. We are sorry for the trouble.",
    "You can leave feedback in Your Orders whenever it suits you.",
    "How was your experience with the replacement? Tell us here if anything is still missing.",
    "We will send you a free replacement for the missing part today.",
    "The IP67 rating is good for rain; the after-sales service is handled by Amazon.",
    "该商品尺寸为 45×30×12 mm，订单号 111-2233445-5667788，运单号 SF1234567890123，价格 299元。",
]


@pytest.mark.parametrize("text", LEGITIMATE)
def test_legitimate_replies_pass_without_any_violation(text: str) -> None:
    assert spans(check_reply(text)) == []


@pytest.mark.parametrize(
    ("text", "rule", "offending"),
    [
        ("Your parcel arrives tomorrow 😊", "emoji", "😊"),
        ("明日お届け予定です(^^)", "emoji", "(^^)"),
        ("The replacement ships today ;-)", "emoji", ";-)"),
        ("You wrote to [e-mail address removed]; reply here.", "email_placeholder", "[e-mail address removed]"),
        (
            "Thank you for your order!\nBest regards,\nAnna",
            "thanks_only",
            "Thank you for your order!\nBest regards,\nAnna",
        ),
        (
            "Vielen Dank für Ihre Bestellung!\nMit freundlichen Grüßen",
            "thanks_only",
            "Vielen Dank für Ihre Bestellung!\nMit freundlichen Grüßen",
        ),
        ("您好！感谢您的购买！祝您生活愉快！", "thanks_only", "您好！感谢您的购买！祝您生活愉快！"),
    ],
)
def test_warnings_do_not_block(text: str, rule: str, offending: str) -> None:
    verdict = check_reply(text)
    assert verdict.allowed
    assert (rule, offending) in spans(verdict)
    assert all(v.severity == "warn" for v in verdict.violations)


def test_a_thank_you_with_service_content_is_not_thanks_only() -> None:
    verdict = check_reply("Thanks for your message! Your parcel left today with DHL 00340434161094042557.")
    assert spans(verdict) == []


@pytest.mark.parametrize(
    ("buyer", "reply", "mismatch"),
    [("de", "en", True), ("de-DE", "de", False), ("zh-CN", "zh", False), (None, "en", False), ("und", "en", False)],
)
def test_language_mismatch_is_a_warning(buyer: str | None, reply: str, mismatch: bool) -> None:
    text = "Your parcel left today."
    verdict = check_reply(text, buyer_language=buyer, reply_language=reply)
    assert verdict.allowed
    assert [v.rule for v in verdict.violations] == (["language_mismatch"] if mismatch else [])
    if mismatch:
        assert (verdict.violations[0].start, verdict.violations[0].end) == (0, len(text))


@pytest.mark.parametrize(
    ("text", "allow_list", "allowed"),
    [
        ("Manufacturer hotline: 0800 330 0500.", ["0800 330 0500"], True),
        ("Manufacturer hotline: 0800 330 0500.", ["+49 800 330 0500"], True),  # same number, other format
        ("Manufacturer hotline: 0800 330 0500.", ["0800 330 0599"], False),
        ("Manufacturer hotline: 0800 330 0500.", [], False),
        ("Track it on https://www.ups.com/track?tracknum=1Z999AA10123456784", ["ups.com"], True),
        ("Track it on https://www.ups.com.evil.example/track", ["ups.com"], False),
        ("Track it on dhl.de please.", ["dhl.de"], True),
        ("Track it on dhl.de and call 030 1234567.", ["dhl.de"], False),  # the phone is not allowed
        ("Write to warranty@maker.example", ["warranty@maker.example"], True),
        ("Write to warranty@maker.example", ["maker.example"], False),  # a domain allows links, not addresses
    ],
)
def test_allow_list(text: str, allow_list: list[str], allowed: bool) -> None:
    assert check_reply(text, allow_list=allow_list).allowed is allowed


@pytest.mark.parametrize(("message_type", "limit"), sorted(SP_API_TEXT_LIMITS.items()))
def test_length_limit_per_message_type(message_type: str, limit: int) -> None:
    at_limit = "a" * limit
    assert check_reply(at_limit, message_type=message_type).allowed
    over = "a" * (limit + 7)
    verdict = check_reply(over, message_type=message_type)
    assert spans(verdict) == [("length_limit", "a" * 7)]
    assert (verdict.violations[0].start, verdict.violations[0].end) == (limit, limit + 7)
    assert str(limit) in verdict.violations[0].explanation
    assert check_reply(over).allowed  # no message type, no limit


def test_sp_api_limits_match_the_messaging_model() -> None:
    assert SP_API_TEXT_LIMITS["confirmCustomizationDetails"] == 800
    assert SP_API_TEXT_LIMITS["unexpectedProblem"] == 2000
    assert SP_API_TEXT_LIMITS["digitalAccessKey"] == 400


def test_attachment_only_types_and_empty_text_and_unknown_type() -> None:
    assert [v.rule for v in check_reply("Hello", message_type="warranty").violations] == ["length_limit"]
    assert check_reply("", message_type="warranty").allowed
    assert not check_reply("  ", message_type="confirmDeliveryDetails").allowed
    with pytest.raises(InputError, match="confirmDeliveryDetails"):
        check_reply("Hello", message_type="confirmDelivery")


def test_allowed_is_false_exactly_when_a_violation_blocks() -> None:
    warn = Violation("emoji", "warn", 0, 1, "x", "e")
    block = Violation("link", "block", 0, 1, "x", "e")
    assert Verdict(()).allowed and Verdict((warn,)).allowed
    assert not Verdict((warn, block)).allowed
    assert Verdict((warn, block)).blocking == (block,)
    assert Verdict((warn, block)).to_dict() == {"allowed": False, "violations": [warn.to_dict(), block.to_dict()]}
    assert set(block.to_dict()) == {"rule", "severity", "start", "end", "text", "explanation"}


def test_violations_are_sorted_and_same_rule_overlaps_merged() -> None:
    text = "Visit https://www.shop.de/x 😊😊 and call 030 1234567, pay by PayPal."
    verdict = check_reply(text)
    starts = [v.start for v in verdict.violations]
    assert starts == sorted(starts)
    assert [v.rule for v in verdict.violations] == ["link", "emoji", "phone", "off_amazon"]
    assert verdict.violations[0].text == "https://www.shop.de/x"  # URL and bare-domain matches merged


def test_every_rule_has_a_catalogue_entry_and_unique_id() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    expected = {
        "link",
        "email",
        "phone",
        "messenger",
        "off_amazon",
        "marketing",
        "review_manipulation",
        "html",
        "placeholder",
        "length_limit",
        "emoji",
        "language_mismatch",
        "email_placeholder",
        "thanks_only",
        "invisible",
    }
    assert set(ids) == expected
    assert all(rule.description.endswith(".") for rule in RULES)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    language: str
    blocked: bool
    rules: tuple[str, ...]
    buyer_language: str | None = None
    allow_list: tuple[str, ...] = ()
    message_type: str | None = None

    def check(self) -> Verdict:
        return check_reply(
            self.text,
            buyer_language=self.buyer_language,
            reply_language=self.language if self.buyer_language else None,
            allow_list=self.allow_list,
            message_type=self.message_type,
        )


def load_dataset() -> list[Case]:
    cases = []
    with DATASET.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                row["rules"] = tuple(row["rules"])
                row["allow_list"] = tuple(row.get("allow_list", ()))
                cases.append(Case(**row))
    return cases


WARNING_RULES = {rule.id for rule in RULES if rule.severity == "warn"}


def test_offsets_quote_the_text_and_the_gate_is_deterministic() -> None:
    for case in load_dataset():
        first, second = case.check(), case.check()
        assert first == second
        for violation in first.violations:
            assert case.text[violation.start : violation.end] == violation.text


def test_dataset_blocks_every_violation_and_rarely_blocks_legitimate_replies() -> None:
    cases = load_dataset()
    blocked = [case for case in cases if case.blocked]
    legitimate = [case for case in cases if not case.blocked]
    assert len(legitimate) >= 150 and len(blocked) >= 80
    missed = []
    for case in blocked:
        verdict = case.check()
        found = {v.rule for v in verdict.blocking}
        if verdict.allowed or not set(case.rules) - WARNING_RULES <= found:
            missed.append((case.id, sorted(found)))
    assert missed == []
    false_blocks = [case.id for case in legitimate if not case.check().allowed]
    assert len(false_blocks) / len(legitimate) <= 0.02, false_blocks
    missing_warnings = [c.id for c in legitimate if not set(c.rules) <= {v.rule for v in c.check().violations}]
    assert missing_warnings == []
