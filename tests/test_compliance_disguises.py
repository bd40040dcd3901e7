"""The gate against disguised contact data: every disguise an adversary tried (each is blocked, with its
span in the original text and the disguise named), invisible characters by position, every outgoing
field (subject, SP-API file names, buyer-controlled template values), and what the agent's preview shows."""

from __future__ import annotations

import pytest

from engine.compliance import check_outgoing, check_reply, gated_subject, reveal
from engine.drafting.protocols import DraftRequest, OrderContext
from engine.drafting.templates import template_variables

# (reply, rule that must block it, the original text of the violation)
DISGUISED = [
    ("Add us on Whats\u200bApp for faster help.", "messenger", "Whats\u200bApp"),
    ("We can refund you via Pay\u200bPal today.", "off_amazon", "Pay\u200bPal"),
    ("Please leave a posi\u200btive re\u200bview.", "review_manipulation",
     "Please leave a posi\u200btive re\u200bview"),
    ("Visit mystore\u200b.com for the manual.", "link", "mystore\u200b.com"),
    ("Write to john@gmail\u200b.com please.", "email", "john@gmail\u200b.com"),
    ("Website:mystore.com", "link", "mystore.com"),
    ("网址：mystore.com", "link", "mystore.com"),
    ("详情请访问 mystore。com", "link", "mystore。com"),
    ("メールは john アット gmail ドット com まで", "email", "john アット gmail ドット com"),
    ("See mystore.ai for details.", "link", "mystore.ai"),
    ("The docs are on brand.dev now.", "link", "brand.dev"),
    ("Go to \u0435xample.com for help.", "link", "\u0435xample.com"),
    ("Besuchen Sie myst\u00f6re.de für mehr.", "link", "myst\u00f6re.de"),
    ("Help: hxxps://mystore.com/help", "link", "hxxps://mystore.com/help"),
    ("See //mystore.com for help.", "link", "mystore.com"),
    ("Open 203.0.113.5/shop to order.", "link", "203.0.113.5/shop"),
    ("Call 0176  123  4567 anytime.", "phone", "0176  123  4567"),
    ("Reference: 0176 1234567", "phone", "0176 1234567"),
    ("Our number is $555 123 4567.", "phone", "555 123 4567"),
    ("اتصل بنا ٠١٧٦ ١٢٣ ٤٥٦٧", "phone", "٠١٧٦ ١٢٣ ٤٥٦٧"),
    ("Call zero one seven six one two three four five six seven.", "phone",
     "zero one seven six one two three four five six seven"),
    ("Rufen Sie an: null eins sieben sechs eins zwei drei vier fünf", "phone",
     "null eins sieben sechs eins zwei drei vier fünf"),
    ("请拨打 一三八〇〇一三八〇〇〇", "phone", "一三八〇〇一三八〇〇〇"),
    ("Llámenos al 612.345.678.", "phone", "612.345.678"),
    ("Call 0176\n123\n4567 today.", "phone", "0176\n123\n4567"),
    ("Call 1-800-FLOWERS.", "phone", "1-800-FLOWERS"),
    ("Details: \u202emoc.erotsym", "link", "moc.erotsym"),
    ("Add me on W e C h a t please.", "messenger", "W e C h a t"),
    ("Pay by P.a.y.P.a.l please.", "off_amazon", "P.a.y.P.a.l"),
    ("加我微 信 gadget888", "messenger", "微 信"),
    ("Find us on Telegr\u0430m.", "messenger", "Telegr\u0430m"),
    ("Contact mystore[.]com", "link", "mystore[.]com"),
    ("Contact mystore(dot)com", "link", "mystore(dot)com"),
    ("Unsere Seite: meinshop (punkt) de", "link", "meinshop (punkt) de"),
    ("See xn--mystre-jua.de", "link", "xn--mystre-jua.de"),
    ("Open http://[2001:db8::1]/shop", "link", "http://[2001:db8::1]/shop"),
    ("Bestellen Sie beim nächsten Mal direkt in unserem Shop.", "off_amazon", "beim nächsten Mal direkt"),
    ("Scan the QR code on the insert card to register your product.", "link", "Scan the QR code"),
    ("Scannen Sie den QR-Code auf der Beilagekarte, um sich zu registrieren.", "link", "Scannen Sie den QR-Code"),
    ("Next time you can order directly from us and save.", "off_amazon",
     "Next time you can order directly from us"),
    ("La prochaine fois, commandez directement sur notre site.", "off_amazon",
     "La prochaine fois, commandez directement sur notre"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "rule", "quoted"), DISGUISED)
def test_every_disguise_is_blocked_with_its_span_in_the_original_text(text: str, rule: str, quoted: str) -> None:
    verdict = check_reply(text)
    assert not verdict.allowed
    found = [v for v in verdict.violations if v.rule == rule]
    assert found, [(v.rule, v.text) for v in verdict.violations]
    assert any(v.text == quoted for v in found), [v.text for v in found]
    for violation in verdict.violations:
        assert text[violation.start : violation.end] == violation.text


@pytest.mark.parametrize(
    ("text", "disguise"),
    [
        ("Visit mystore\u200b.com today.", "A zero-width space hides a link"),
        ("Go to \u0435xample.com for help.", "Look-alike letters from another script disguise a link"),
        ("ＷｈａｔｓＡｐｐ us", "Full-width characters disguise a messenger"),
        ("Add me on W e C h a t please.", "Letters spread out with spaces or dots disguise a messenger"),
        ("Call ٠١٧٦ ١٢٣ ٤٥٦٧ now", "Digits from another script disguise a phone number"),
    ],
)
def test_the_explanation_names_the_disguise(text: str, disguise: str) -> None:
    explanations = [v.explanation for v in check_reply(text).blocking]
    assert any(e.startswith(disguise) for e in explanations), explanations


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("Your parcel\u200b left today.", "warn"),  # between words: visible harm none, still reported
        ("Thank you for your order.\u200b", "warn"),  # at the end
        ("Your order 302-1234567\u200b-7654321 has shipped.", "block"),  # inside a number
        ("Please wri\u200bte to us here in the messages.", "block"),  # inside a word
        ("Your parcel \u202eleft\u202c today.", "block"),  # a right-to-left override
        ("Kun\u00adden\u00adservice hilft gern.", "warn"),  # soft hyphens copied from a web page
        ("Great news \U0001f44d\ufe0f your parcel left.", None),  # a variation selector of an emoji
    ],
)
def test_invisible_characters_are_reported_by_position(text: str, severity: str | None) -> None:
    found = [v for v in check_reply(text).violations if v.rule == "invisible"]
    if severity is None:
        assert not found
        return
    assert found and {v.severity for v in found} == {severity}
    assert all("⟨" in v.explanation for v in found)


def test_the_subject_is_gated_and_reported_as_the_subject() -> None:
    verdict = check_outgoing("Your parcel left today.", subject="Re: add me on WhatsApp")
    assert not verdict.allowed
    (violation,) = verdict.blocking
    assert violation.field == "subject"
    assert "Re: add me on WhatsApp"[violation.start : violation.end] == "WhatsApp"
    assert violation.to_dict()["field"] == "subject"
    assert "field" not in check_outgoing("Visit mystore.com").blocking[0].to_dict()


def test_other_fields_are_gated_under_their_name() -> None:
    verdict = check_outgoing("Invoice attached.", fields={"file name of attachment 1": "mystore.com_invoice.pdf"})
    assert [v.field for v in verdict.blocking] == ["file name of attachment 1"]
    assert check_outgoing("Invoice attached.", fields={"file name of attachment 1": "invoice-2024.pdf"}).allowed


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Inquiry from Amazon customer Anna (Order: 302-1234567-7654321)",
         "Re: Inquiry from Amazon customer Anna (Order: 302-1234567-7654321)"),
        ("Re: call me on WhatsApp please", "Re: call me on please"),
        ("Re: www.mystore.com", "Re: Your message"),
    ],
)  # fmt: skip
def test_the_reply_subject_leaves_out_what_the_gate_blocks(subject: str, expected: str) -> None:
    assert gated_subject(subject) == expected
    assert check_outgoing("Your parcel left today.", subject=gated_subject(subject)).allowed


def test_buyer_controlled_template_values_are_gated() -> None:
    def variables(buyer_name: str, title: str) -> dict[str, str]:
        request = DraftRequest(
            text="Where is my parcel?",
            language="en",
            intent="order_status",
            buyer_name=buyer_name,
            product_title=title,
            order=OrderContext(order_id="302-1234567-7654321"),
        )
        return template_variables(request)

    clean = variables("Anna\u200b\nMüller", "USB-C cable, 2 m")
    assert clean["buyer_name"] == "Anna Müller"
    assert clean["product_title"] == "USB-C cable, 2 m"
    hostile = variables("WhatsApp +49 176 1234567", "Cable – order at mystore.com")
    assert "buyer_name" not in hostile and "product_title" not in hostile


def test_the_preview_shows_invisible_characters_and_maps_spans() -> None:
    text = "Visit mystore\u200b.com"
    shown, positions = reveal(text)
    assert shown == "Visit mystore⟨ZWSP⟩.com"
    (violation,) = [v for v in check_reply(text).blocking if v.rule == "link"]
    assert shown[positions[violation.start] : positions[violation.end]] == "mystore⟨ZWSP⟩.com"
