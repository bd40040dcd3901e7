"""The relay-mail parser: the demo inbox file by file, then edge cases built inline."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import MailParseError
from engine.mail import (
    BODY_LIMIT,
    TRUNCATION_NOTE,
    MailKind,
    ParsedMail,
    parse_mail,
    thread_key,
    to_cli_record,
)
from engine.taxonomy import INTENTS

DEMO = Path(__file__).resolve().parent.parent / "knowledge" / "demo"

# file, kind, marketplace, buyer alias, order id, start of body
DEMO_EXPECTED: list[tuple[str, str, str | None, str | None, str | None, str]] = [
    ("us-order_status-older-template.eml", "buyer_message", "US",
     "a7k2m9q4x8w1z5r@marketplace.amazon.com", "113-4829301-5520947", 'Hi, tracking has said "in tran'),
    ("us-shipping_options-current-no-order.eml", "buyer_message", "US",
     "m3p8w2q9k4t7x1z@marketplace.amazon.com", None, "do you ship to Puerto Rico?? a"),
    ("us-no_response_needed-older-template.eml", "buyer_message", "US",
     "a7k2m9q4x8w1z5r@marketplace.amazon.com", "113-4829301-5520947", "ok got it today, thanks!! 👍"),
    ("us-product_question-zh-html-pre.eml", "buyer_message", "US",
     "w5c2n8r3j6m1k9q@marketplace.amazon.com", "114-6610273-3390418", "你好，这个背包能放进16寸的笔记本电脑吗？"),
    ("ca-product_question-bilingual-template.eml", "buyer_message", "CA",
     "e4k9t2m7q1w8z3x@marketplace.amazon.ca", "702-3345178-1209934", "Hello, are these poles ok for "),
    ("ca-cancel_order-fr-bilingual-template.eml", "buyer_message", "CA",
     "g8r3w5n2k7m4q1t@marketplace.amazon.ca", "701-5528391-4471203", "Bonjour, je voudrais annuler m"),
    ("mx-order_status-older-template.eml", "buyer_message", "MX",
     "c2m7q9w4k1t8x3r@marketplace.amazon.com.mx", "701-9921034-2287165", "Hola, ya pasaron 10 días y mi "),
    ("br-order_status-current-template.eml", "buyer_message", "BR",
     "j5p2w8m3k9q4t1x@marketplace.amazon.com.br", "701-4417702-8852031", "Olá, meu pedido ainda não cheg"),
    ("uk-damaged_defective-html-pre.eml", "buyer_message", "UK",
     "t9k4m2q7w1x8z3p@marketplace.amazon.co.uk", "204-7712093-6650128", "The flask arrived with a big d"),
    ("uk-complaint_feedback-current-template.eml", "buyer_message", "UK",
     "s6w1k8m3q9t2z4x@marketplace.amazon.co.uk", "026-3381920-5517463", "Honestly the worst delivery ex"),
    ("de-order_status-older-template.eml", "buyer_message", "DE",
     "k8w2m4xq7tz1r3v@marketplace.amazon.de", "302-5561237-7781920", "Hallo, wo bleibt meine Bestell"),
    ("de-invoice_vat-current-template.eml", "buyer_message", "DE",
     "b3n7q2w9k4m8t1x@marketplace.amazon.de", "303-1187264-9910345", "Guten Tag, bitte senden Sie mi"),
    ("de-warranty-en-older-template.eml", "buyer_message", "DE",
     "p1x7k3m9w2q8t4z@marketplace.amazon.de", "028-4409182-3376510", "Hello, the headlamp I bought i"),
    ("de-return_refund-thread-1.eml", "buyer_message", "DE",
     "r3t8m2k9w4q7z1x+Kq7Zr2@marketplace.amazon.de", "304-2290311-6648172", "Hallo, ich möchte die Jacke zu"),
    ("de-return_refund-thread-2.eml", "buyer_message", "DE",
     "r3t8m2k9w4q7z1x+Kq7Zr2@marketplace.amazon.de", "304-2290311-6648172", "hallo nochmal, ich habe immer "),
    ("fr-change_order-older-template.eml", "buyer_message", "FR",
     "f2k8m4q1w7t3x9z@marketplace.amazon.fr", "171-3320984-7715302", "Bonjour, est-ce possible de ch"),
    ("fr-payment_pricing-current-template.eml", "buyer_message", "FR",
     "v9m3k7q2w5t1x8z@marketplace.amazon.fr", "402-6651820-1193847", "Bonjour, j'ai été débité DEUX "),
    ("it-damaged_defective-attachment.eml", "buyer_message", "IT",
     "i4w8k2m7q3t9x1z@marketplace.amazon.it", "405-7729130-5582016", "Buongiorno, il prodotto è arri"),
    ("it-no_response_needed-current-template.eml", "buyer_message", "IT",
     "i4w8k2m7q3t9x1z@marketplace.amazon.it", "405-7729130-5582016", "Ricevuto il sostituto, tutto p"),
    ("es-return_refund-older-template.eml", "buyer_message", "ES",
     "l7q2m9k4w1t8x3z@marketplace.amazon.es", "406-1183920-7740251", "Hola, devolví el producto hace"),
    ("es-cancel_order-current-template.eml", "buyer_message", "ES",
     "o5k1m8q3w9t2x7z@marketplace.amazon.es", "408-2256710-3318849", "quiero cancelar el pedido, lo "),
    ("nl-return_refund-older-template.eml", "buyer_message", "NL",
     "n2w7k4m9q1t3x8z@marketplace.amazon.nl", "408-5590127-2213864", "Hallo, hoe kan ik dit retourne"),
    ("pl-invoice_vat-older-template.eml", "buyer_message", "PL",
     "z8k3m1q7w4t9x2p@marketplace.amazon.pl", "407-3318204-6627105", "Dzień dobry, proszę o fakturę "),
    ("se-shipping_options-older-template.eml", "buyer_message", "SE",
     "q6w2k9m4t1x7z3p@marketplace.amazon.se", "407-9912063-1148270", "Hej! Går det att få expressfra"),
    ("ae-other-ar-current-template.eml", "buyer_message", "AE",
     "y3k8m2q6w9t4x1z@marketplace.amazon.ae", "406-8820193-5571046", "مرحبا، كيف يمكنني تغيير البريد"),
    ("jp-product_question-iso-2022-jp.eml", "buyer_message", "JP",
     "h9m4k1q8w3t7x2z@marketplace.amazon.co.jp", "503-2281937-4460218", "この充電器でiPhone 15とMacBook"),
    ("jp-order_status-shift_jis-m-host.eml", "buyer_message", "JP",
     "s2k7m9q4w1t8x3z+C5Yq@m.marketplace.amazon.co.jp", "250-6619302-1187745", "注文した商品がまだ届きません。"),
    ("jp-complaint_feedback-en-current-template.eml", "buyer_message", "JP",
     "u1k6m3q8w2t9x4z@marketplace.amazon.co.jp", "249-3370128-9915524", "The box was crushed and the ch"),
    ("br-payment_pricing-older-template.eml", "buyer_message", "BR",
     "m8q3k1w6t9x2z7p@marketplace.amazon.com.br", "701-2209518-6630472", "Oi, o preço baixou R$ 40 dois "),
    ("de-optout-buyer-opted-out.eml", "optout", "DE", None, "302-5561237-7781920", "Guten Tag,\n\nIhre Nachricht zu"),
    ("us-sent_copy-message-confirmation.eml", "sent_copy", "US", None, "113-4829301-5520947",
     "Here is a copy of the e-mail t"),
    ("fr-atoz_claim-notification.eml", "atoz_claim", "FR", None, "171-3320984-7715302",
     "Bonjour,\n\nUn acheteur a dépos"),
    ("it-return_request-notification.eml", "return_request", "IT", None, "405-7729130-5582016",
     "Gentile venditore,\n\nil cliente"),
    ("es-cancellation_request-notification.eml", "cancellation_request", "ES", None, "408-2256710-3318849",
     "Hola,\n\nEl comprador ha solici"),
    ("uk-refund_notice-notification.eml", "refund_notice", "UK", None, "204-7712093-6650128",
     "Hello,\n\nA refund of £24.99 ha"),
    ("us-other-community-qa.eml", "other", "US", None, None, 'A customer asked: "Is the rain'),
    ("us-other-suspicious-phishing.eml", "other", "US", None, None, "Dear seller,\n\nwe detected unu"),
    ("us-delivery_failure-dsn-bounce.eml", "delivery_failure", None, None, "112-0019283-4471920",
     "This is the mail system at hos"),
    ("jp-delivery_failure-postmaster-iso-2022-jp.eml", "delivery_failure", None, None, "503-2281937-4460218",
     "以下のメッセージは配信できませんでした。\n\n宛先: h9m4k1q"),
]  # fmt: skip


def _demo(name: str) -> ParsedMail:
    return parse_mail((DEMO / name).read_bytes())


@pytest.mark.parametrize(("name", "kind", "marketplace", "buyer", "order_id", "body_start"), DEMO_EXPECTED)
def test_demo_inbox_mail(
    name: str, kind: str, marketplace: str | None, buyer: str | None, order_id: str | None, body_start: str
) -> None:
    parsed = _demo(name)
    assert parsed.kind == MailKind(kind)
    assert parsed.marketplace == marketplace
    assert parsed.buyer_address == buyer
    assert parsed.order_id == order_id
    assert parsed.body.startswith(body_start)
    assert "-------------" not in parsed.body or parsed.kind is MailKind.SENT_COPY
    assert parsed.received_at is not None and parsed.received_at.tzinfo is not None


def test_demo_inbox_is_complete_and_marked() -> None:
    files = sorted(p.name for p in DEMO.glob("*.eml"))
    assert files == sorted(row[0] for row in DEMO_EXPECTED)
    assert all(b"\nX-ReplyDesk-Demo: yes\n" in (DEMO / f).read_bytes() for f in files)
    buyer_files = [row[0] for row in DEMO_EXPECTED if row[1] == "buyer_message"]
    assert {intent for intent in INTENTS if any(f"-{intent}-" in f for f in buyer_files)} == set(INTENTS)
    assert {row[1] for row in DEMO_EXPECTED} == {k.value for k in MailKind}
    assert len({row[2] for row in DEMO_EXPECTED if row[2]}) >= 8
    assert "demo data written by the" in (DEMO / "README.md").read_text(encoding="utf-8").lower()


def test_demo_thread_shares_one_key_and_suffix_keeps_case() -> None:
    first, second = _demo("de-return_refund-thread-1.eml"), _demo("de-return_refund-thread-2.eml")
    assert thread_key(first.buyer_address, first.order_id) == thread_key(second.buyer_address, second.order_id)
    assert first.buyer_address is not None and first.buyer_address.endswith("+Kq7Zr2@marketplace.amazon.de")
    assert first.message_id != second.message_id


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("us-order_status-older-template.eml", "buyer_name", "Alisa"),
        ("us-order_status-older-template.eml", "topic", "Order delivery"),
        ("us-order_status-older-template.eml", "asin", "B0D4K7N2QX"),
        ("us-order_status-older-template.eml", "product_title", "Trailhead 40L Hiking Backpack, Slate Grey"),
        ("us-order_status-older-template.eml", "comm_token", "NBX94ZJHAFWRAG"),
        ("us-shipping_options-current-no-order.eml", "comm_token", None),
        ("us-shipping_options-current-no-order.eml", "topic", None),
        ("de-order_status-older-template.eml", "buyer_name", "Jonas"),
        ("de-order_status-older-template.eml", "topic", "Lieferung"),
        ("de-order_status-older-template.eml", "product_title", "Stirnlampe wiederaufladbar 800 lm"),
        ("fr-change_order-older-template.eml", "buyer_name", "Camille"),
        ("it-damaged_defective-attachment.eml", "buyer_name", "Giulia"),
        ("mx-order_status-older-template.eml", "buyer_name", "Carlos"),
        ("pl-invoice_vat-older-template.eml", "buyer_name", "Anna"),
        ("br-payment_pricing-older-template.eml", "buyer_name", "Fernanda"),
        ("jp-product_question-iso-2022-jp.eml", "buyer_name", "山田"),
        ("jp-product_question-iso-2022-jp.eml", "topic", "商品の詳細"),
        ("jp-product_question-iso-2022-jp.eml", "product_title", "USB-C 急速充電器 65W 2ポート"),
        ("de-invoice_vat-current-template.eml", "buyer_name", "Katrin Keßler"),
        ("de-invoice_vat-current-template.eml", "product_title", "Trekkingstöcke Carbon, Paar"),
        ("us-other-suspicious-phishing.eml", "suspicious", True),
        ("us-other-community-qa.eml", "suspicious", False),
        ("us-delivery_failure-dsn-bounce.eml", "related_message_id",
         "reply.20261119T0750.j7k3m8z2@northwind-gear.example"),
        ("jp-delivery_failure-postmaster-iso-2022-jp.eml", "related_message_id",
         "reply.20261116T1021.d4h8s2w6@northwind-gear.example"),
        ("jp-delivery_failure-postmaster-iso-2022-jp.eml", "subject", "配信不能: Re: お問い合わせ"),
        ("de-optout-buyer-opted-out.eml", "related_message_id", "reply.20261112T0315.x9f3k2p7@northwind-gear.example"),
        ("de-optout-buyer-opted-out.eml", "notification_type", "BUYER_OPTED_OUT_BSM_MESSAGES"),
        ("us-order_status-older-template.eml", "related_message_id", None),
    ],
)  # fmt: skip
def test_demo_inbox_details(name: str, field: str, expected: object) -> None:
    assert getattr(_demo(name), field) == expected


def test_demo_attachment_and_html_body() -> None:
    with_photo = _demo("it-damaged_defective-attachment.eml")
    assert [(a.filename, a.content_type, a.size) for a in with_photo.attachments] == [
        ("foto_danno.jpg", "image/jpeg", 2022)
    ]
    html = _demo("uk-damaged_defective-html-pre.eml")
    assert html.body.endswith("Can I get a replacement please?")
    assert "<" not in html.body and "&amp;" not in html.body and " & " in html.body
    assert html.comm_token is not None and html.asin == "B0CK3M8T2V"


# ---- inline mails -------------------------------------------------------------------------------

ALIAS = "a7k2m9q4x8w1z5r@marketplace.amazon.com"
TEXT = "Hi, where is my parcel?\n\nIt was due on Monday."


def mail(
    body: str | bytes,
    *,
    subject: str = "Inquiry from Amazon customer Alisa (Order: 113-4829301-5520947)",
    sender: str = f'"Alisa - Amazon Marketplace" <{ALIAS}>',
    headers: dict[str, str] | None = None,
    content_type: str = "text/plain; charset=utf-8",
    cte: str = "8bit",
    message_id: str | None = "<0101019a.t1@email.amazonses.com>",
    date: str | None = "Mon, 09 Nov 2026 08:41:17 -0500",
) -> bytes:
    lines = [f"From: {sender}", "To: service@northwind-gear.example", f"Subject: {subject}"]
    if date is not None:
        lines.append(f"Date: {date}")
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["MIME-Version: 1.0", f"Content-Type: {content_type}", f"Content-Transfer-Encoding: {cte}"]
    head = ("\n".join(lines) + "\n\n").encode("utf-8")
    return head + (body.encode("utf-8") if isinstance(body, str) else body)


def older(begin: str, end: str, text: str = TEXT, dashes: int = 13) -> str:
    d = "-" * dashes
    return (
        "Order ID 113-4829301-5520947:\n1 of Trailhead 40L Hiking Backpack [ASIN: B0D4K7N2QX]\n\n"
        f"{d} {begin} {d}\n\n{text}\n\n{d} {end} {d}\n\nFor Your Information: we retain all messages.\n"
        "https://sellercentral.amazon.com/messaging/no-response-needed.html?msg=X&mp=ATVPDKIKX0DER\n\n"
        "[commMgrTok:A1B2C3D4E5F6G7]\n"
    )


def current(opener: str, begin: str, end: str, text: str = TEXT) -> str:
    return (
        f"{opener}\n\n------------- {begin} -------------\n\n{text}\n\n------------- {end} -------------\n\n"
        "https://sellercentral.amazon.com/messaging/no-response-needed?t=abc&m=def&mp=ATVPDKIKX0DER\n\n"
        "SPC-US-123456789\n"
    )


@pytest.mark.parametrize(
    ("tld", "marketplace", "frame"),
    [
        ("com", "US", older("Begin message", "End message")),
        ("de", "DE", older("Anfang der Nachricht", "Ende der Nachricht")),
        ("it", "IT", older("Inizio messaggio", "Fine messaggio")),
        ("fr", "FR", older("Début du message", "Fin du message")),
        ("es", "ES", older("Iniciar mensaje", "Finalizar mensaje")),
        ("com.mx", "MX", older("Iniciar mensaje", "Finalizar mensaje")),
        ("co.jp", "JP", older("メッセージはここから", "メッセージはここまで")),
        ("ca", "CA", older("Begin message / Début du message", "End message / Fin du message", dashes=14)),
        ("com.br", "BR", older("Iniciar mensagem", "Mensagem final")),
        ("nl", "NL", older("Begin bericht", "Einde bericht")),
        ("com", "US", current("You have received a message.", "Message:", "End of message")),
        ("it", "IT", current("Hai ricevuto un messaggio.", "Messaggio:", "Fine messaggio")),
        ("fr", "FR", current("Vous avez reçu un message.", "Message:", "Fin du message")),
        ("co.jp", "JP", current("メッセージを受信しました。", "メッセージ:", "メッセージはここまで")),
        ("com.br", "BR", current("Você recebeu uma mensagem.", "Mensagem:", "Encerrar mensagem")),
        ("de", "DE", current("Sie haben eine Nachricht erhalten.", "Nachricht:", "Ende der Nachricht")),
        ("es", "ES", current("Has recibido un mensaje.", "Mensaje:", "Fin del mensaje")),
    ],
)
def test_localised_markers_cut_out_the_buyer_text(tld: str, marketplace: str, frame: str) -> None:
    parsed = parse_mail(mail(frame, sender=f"Buyer - Amazon Marketplace <abc123@marketplace.amazon.{tld}>"))
    assert parsed.kind is MailKind.BUYER_MESSAGE
    assert parsed.body == TEXT
    assert parsed.marketplace == marketplace


def test_older_template_fields() -> None:
    parsed = parse_mail(mail(older("Begin message", "End message")))
    assert (parsed.order_id, parsed.asin, parsed.product_title) == (
        "113-4829301-5520947",
        "B0D4K7N2QX",
        "Trailhead 40L Hiking Backpack",
    )
    assert parsed.comm_token == "A1B2C3D4E5F6G7"
    assert parsed.buyer_name == "Alisa"


def test_current_template_without_order_keys_the_thread_by_alias() -> None:
    body = current("You have received a message.", "Message:", "End of message")
    parsed = parse_mail(mail(body, subject="Message from buyer"))
    assert (parsed.order_id, parsed.asin, parsed.comm_token, parsed.topic) == (None, None, None, None)
    assert thread_key(parsed.buyer_address, parsed.order_id) == ALIAS


def test_missing_end_marker_keeps_the_rest() -> None:
    parsed = parse_mail(mail("------------- Begin message -------------\n\nhello there\nsecond line\n"))
    assert parsed.body == "hello there\nsecond line"


def test_relay_mail_without_markers_keeps_the_whole_text() -> None:
    parsed = parse_mail(mail("just a plain reply\n", subject="Re: your message"))
    assert (parsed.kind, parsed.body) == (MailKind.BUYER_MESSAGE, "just a plain reply")


def test_email_addresses_removed_by_amazon_stay_as_written() -> None:
    text = "Please write to [e-mail address removed] instead."
    parsed = parse_mail(mail(older("Begin message", "End message", text)))
    assert parsed.body == text


def test_html_only_mail_takes_the_pre_block() -> None:
    markup = (
        "<html><body><p>Order ID 113-4829301-5520947</p><pre>Is it &lt;waterproof&gt;?\nThanks</pre>"
        '<a href="https://sellercentral.amazon.de/messaging/no-response-needed?t=1&amp;mp=A1PA6795UKMFR9">x</a>'
        "<p>[commMgrTok:HTMLTOKEN1]</p></body></html>"
    )
    encoded = base64.encodebytes(markup.encode()).decode()
    parsed = parse_mail(mail(encoded, content_type="text/html; charset=utf-8", cte="base64"))
    assert parsed.body == "Is it <waterproof>?\nThanks"
    assert (parsed.order_id, parsed.comm_token) == ("113-4829301-5520947", "HTMLTOKEN1")


def test_html_without_pre_is_stripped_of_tags() -> None:
    markup = "<html><head><style>p{}</style></head><body><p>Hello&nbsp;there</p><script>x()</script></body></html>"
    parsed = parse_mail(mail(markup, content_type="text/html; charset=utf-8"))
    assert parsed.body == "Hello there"


@pytest.mark.parametrize(
    ("notification_type", "kind"),
    [
        ("BUYER_OPTED_OUT_BSM_MESSAGES", MailKind.OPTOUT),
        ("A_Z_CLAIM_RESPONDENT_NOTIFY", MailKind.ATOZ_CLAIM),
        ("RETURN_REQUEST", MailKind.RETURN_REQUEST),
        ("BRC_SELLER_NOTIFICATION", MailKind.CANCELLATION_REQUEST),
        ("REFUND_ISSUED", MailKind.REFUND_NOTICE),
        ("BBC_MESSAGE_CONFIRMATION_TO_MERCHANT", MailKind.SENT_COPY),
        ("SOMETHING_NEW", MailKind.OTHER),
    ],
)
def test_notification_header_decides_first(notification_type: str, kind: MailKind) -> None:
    raw = mail(
        "Refund issued for your order.",  # a phrase pointing elsewhere: the header must win
        subject="Notification",
        sender="Amazon Seller Central <donotreply@amazon.de>",
        headers={"X-Space-Notification-Type": notification_type},
    )
    parsed = parse_mail(raw)
    expected = MailKind.REFUND_NOTICE if kind is MailKind.OTHER else kind
    assert parsed.kind is expected
    assert parsed.notification_type == notification_type


# Subjects without the notification header: every notice kind in at least five languages.
PHRASE_SUBJECTS: list[tuple[MailKind, str]] = [
    (MailKind.OPTOUT, "Your message was not delivered: the buyer has opted out"),
    (MailKind.OPTOUT, "Der Käufer hat sich von Nachrichten abgemeldet"),
    (MailKind.OPTOUT, "L'acheteur a choisi de ne plus recevoir de messages"),
    (MailKind.OPTOUT, "L'acquirente ha scelto di non ricevere messaggi"),
    (MailKind.OPTOUT, "El comprador ha optado por no recibir mensajes"),
    (MailKind.OPTOUT, "購入者はメッセージの受信を停止しています"),
    (MailKind.SENT_COPY, "Here is a copy of the e-mail that you sent to Alisa"),
    (MailKind.SENT_COPY, "Hier ist eine Kopie der E-Mail, die Sie an Jonas gesendet haben"),
    (MailKind.SENT_COPY, "Voici une copie de l'e-mail que vous avez envoyé à Camille"),
    (MailKind.SENT_COPY, "Ecco una copia dell'e-mail che hai inviato a Giulia"),
    (MailKind.SENT_COPY, "Esta es una copia del correo electrónico que enviaste a Lucía"),
    (MailKind.SENT_COPY, "山田様に送信したメールのコピー"),
    (MailKind.DELIVERY_FAILURE, "Undelivered Mail Returned to Sender"),
    (MailKind.DELIVERY_FAILURE, "Unzustellbar: Re: Ihre Anfrage"),
    (MailKind.DELIVERY_FAILURE, "Non remis : Re: votre demande"),
    (MailKind.DELIVERY_FAILURE, "Non recapitabile: Re: la tua richiesta"),
    (MailKind.DELIVERY_FAILURE, "No se puede entregar: Re: su consulta"),
    (MailKind.DELIVERY_FAILURE, "配信不能: Re: お問い合わせ"),
    (MailKind.ATOZ_CLAIM, "A-to-z Guarantee claim for order 113-4829301-5520947"),
    (MailKind.ATOZ_CLAIM, "A-bis-z-Garantie: Antrag zu Bestellung 302-5561237-7781920"),
    (MailKind.ATOZ_CLAIM, "Réclamation au titre de la Garantie A à Z"),
    (MailKind.ATOZ_CLAIM, "Reclamo Garanzia dalla A alla Z"),
    (MailKind.ATOZ_CLAIM, "Reclamación de la Garantía de la A a la Z"),
    (MailKind.ATOZ_CLAIM, "Amazonマーケットプレイス保証の申請"),
    (MailKind.CANCELLATION_REQUEST, "Cancellation request for order 113-4829301-5520947"),
    (MailKind.CANCELLATION_REQUEST, "Stornierungsanfrage für Bestellung 302-5561237-7781920"),
    (MailKind.CANCELLATION_REQUEST, "Demande d'annulation de la commande 171-3320984-7715302"),
    (MailKind.CANCELLATION_REQUEST, "Richiesta di cancellazione dell'ordine 405-7729130-5582016"),
    (MailKind.CANCELLATION_REQUEST, "Solicitud de cancelación del pedido 406-1183920-7740251"),
    (MailKind.CANCELLATION_REQUEST, "注文のキャンセルリクエスト"),
    (MailKind.RETURN_REQUEST, "Return request for order 113-4829301-5520947"),
    (MailKind.RETURN_REQUEST, "Rücksendeanfrage zu Bestellung 302-5561237-7781920"),
    (MailKind.RETURN_REQUEST, "Demande de retour pour la commande 171-3320984-7715302"),
    (MailKind.RETURN_REQUEST, "Richiesta di reso per l'ordine 405-7729130-5582016"),
    (MailKind.RETURN_REQUEST, "Solicitud de devolución del pedido 406-1183920-7740251"),
    (MailKind.RETURN_REQUEST, "返品リクエストが届きました"),
    (MailKind.REFUND_NOTICE, "Refund issued for order 113-4829301-5520947"),
    (MailKind.REFUND_NOTICE, "Erstattung veranlasst für Bestellung 302-5561237-7781920"),
    (MailKind.REFUND_NOTICE, "Remboursement effectué pour la commande 171-3320984-7715302"),
    (MailKind.REFUND_NOTICE, "Rimborso emesso per l'ordine 405-7729130-5582016"),
    (MailKind.REFUND_NOTICE, "Reembolso emitido para el pedido 406-1183920-7740251"),
    (MailKind.REFUND_NOTICE, "返金処理が完了しました"),
    (MailKind.OTHER, "Your monthly seller newsletter"),
    (MailKind.OTHER, "Ihr monatlicher Verkäufer-Newsletter"),
    (MailKind.OTHER, "Votre lettre d'information vendeur"),
    (MailKind.OTHER, "La tua newsletter mensile per venditori"),
    (MailKind.OTHER, "Tu boletín mensual para vendedores"),
    (MailKind.OTHER, "出品者向けニュースレター"),
]


@pytest.mark.parametrize(("kind", "subject"), PHRASE_SUBJECTS)
def test_notice_phrases_classify_without_the_header(kind: MailKind, subject: str) -> None:
    parsed = parse_mail(mail("See Seller Central.", subject=subject, sender="Amazon <donotreply@amazon.com>"))
    assert parsed.kind is kind


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        ("Mail Delivery System <MAILER-DAEMON@mx.example>", "Notice", "see below"),
        ("postmaster@mx.example", "Notice", "see below"),
        ("Amazon <donotreply@amazon.it>", "Aggiornamento", "Il messaggio non recapitabile al destinatario."),
    ],
)
def test_delivery_failure_by_sender_or_body(sender: str, subject: str, body: str) -> None:
    assert parse_mail(mail(body, subject=subject, sender=sender)).kind is MailKind.DELIVERY_FAILURE


def test_atoz_sender_is_a_claim_even_when_the_subject_does_not_say_so() -> None:
    raw = mail("Please respond.", subject="Action required", sender="atoz-guarantee-no-reply@amazon.co.uk")
    assert parse_mail(raw).kind is MailKind.ATOZ_CLAIM


def test_buyer_words_do_not_turn_a_buyer_message_into_a_notice() -> None:
    text = "Refund issued? I filed a return request and a cancellation request, please help"
    parsed = parse_mail(mail(older("Begin message", "End message", text)))
    assert parsed.kind is MailKind.BUYER_MESSAGE


def test_dsn_with_rfc822_headers_part_gives_related_message_id() -> None:
    boundary = "b1"
    body = (
        f"--{boundary}\nContent-Type: text/plain\n\nDelivery to the following recipient failed.\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\nAction: failed\nStatus: 5.0.0\n\n"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\nFrom: service@shop.example\n"
        "Message-ID: <our-reply-42@shop.example>\nSubject: Re: hello\n\n"
        f"--{boundary}--\n"
    )
    raw = mail(
        body,
        subject="Delivery Status Notification (Failure)",
        sender="mailer-daemon@googlemail.com",
        content_type=f'multipart/report; report-type=delivery-status; boundary="{boundary}"',
    )
    parsed = parse_mail(raw)
    assert parsed.kind is MailKind.DELIVERY_FAILURE
    assert parsed.related_message_id == "our-reply-42@shop.example"
    assert parsed.body == "Delivery to the following recipient failed."
    assert parsed.attachments == ()


def test_bounce_with_original_message_id_in_text() -> None:
    raw = mail("Undeliverable.\nOriginal-Message-ID: <r-7@shop.example>\n", sender="postmaster@shop.example")
    assert parse_mail(raw).related_message_id == "r-7@shop.example"


def test_in_reply_to_wins_for_related_message_id() -> None:
    raw = mail("x", sender="postmaster@shop.example", headers={"In-Reply-To": "<first@shop.example>"})
    parsed = parse_mail(raw)
    assert (parsed.in_reply_to, parsed.related_message_id) == ("first@shop.example", "first@shop.example")


@pytest.mark.parametrize(
    ("sender", "reply_to", "expected"),
    [
        (f"A <{ALIAS}>", None, ALIAS),
        ("A <AbC123+Case9X@marketplace.amazon.de>", None, "AbC123+Case9X@marketplace.amazon.de"),
        (f"A <{ALIAS}>", "A <abc+SUF1@marketplace.amazon.com>", "abc+SUF1@marketplace.amazon.com"),
        ("A <xyz@m.marketplace.amazon.co.jp>", None, "xyz@m.marketplace.amazon.co.jp"),
        ("Amazon <donotreply@marketplace.amazon.com.br>", None, None),
        ("Someone <someone@gmail.com>", None, None),
        ("Fake <abc@marketplace.amazon.com.evil.example>", None, None),
    ],
)
def test_buyer_address_is_the_exact_relay_alias(sender: str, reply_to: str | None, expected: str | None) -> None:
    headers = {"Reply-To": reply_to} if reply_to else None
    assert parse_mail(mail("hi", sender=sender, headers=headers)).buyer_address == expected


def test_m_marketplace_host_is_japan() -> None:
    parsed = parse_mail(mail("hi", sender="A <xyz@m.marketplace.amazon.co.jp>"))
    assert parsed.marketplace == "JP"


def test_marketplace_falls_back_to_header_then_link_then_sender_host() -> None:
    notice = "Amazon <donotreply@amazon.com>"
    by_header = mail("x", sender=notice, headers={"X-Marketplace-ID": "APJ6JRA9NG5V4"})
    assert parse_mail(by_header).marketplace == "IT"
    by_link = mail("see https://sellercentral.amazon.com/x?msg=1&mp=A1PA6795UKMFR9", sender=notice)
    assert parse_mail(by_link).marketplace == "DE"
    assert parse_mail(mail("x", sender=notice)).marketplace == "US"
    assert parse_mail(mail("x", sender="someone@shop.example")).marketplace is None


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("Alisa - Amazon Marketplace", "Alisa"),
        ("Jonas über Amazon", "Jonas"),
        ("Camille via Amazon", "Camille"),
        ("Giulia tramite Amazon", "Giulia"),
        ("Lucía a través de Amazon", "Lucía"),
        ("Anna przez Amazon", "Anna"),
        ("Fernanda por meio da Amazon", "Fernanda"),
        ("Just A Name", None),
    ],
)
def test_buyer_name_from_display_name(display: str, expected: str | None) -> None:
    raw = mail("hi", subject="Message from buyer", sender=f'"{display}" <{ALIAS}>')
    assert parse_mail(raw).buyer_name == expected


@pytest.mark.parametrize(
    ("subject", "topic", "name"),
    [
        ("Product details inquiry from Amazon customer Alisa (Order: 113-4829301-5520947)", "Product details", "Alisa"),
        ("RE: Ship faster inquiry from Amazon customer Bob Smith", "Ship faster", "Bob Smith"),
        ("Inquiry from Amazon customer Alisa (Order: 113-4829301-5520947)", None, "Alisa"),
        ("AW: Anfrage zu Rücksendung von Amazon-Kunde Lena (Bestellung: 304-2290311-6648172)", "Rücksendung", "Lena"),
        ("Demande concernant Livraison du client Amazon Camille (Commande : 171-3320984-7715302)", "Livraison",
         "Camille"),
        ("Richiesta su Dettagli prodotto dal cliente Amazon Giulia (Ordine: 405-7729130-5582016)",
         "Dettagli prodotto", "Giulia"),
        ("Consulta sobre Devoluciones del cliente de Amazon Lucía (Pedido: 406-1183920-7740251)", "Devoluciones",
         "Lucía"),
        ("Amazonのお客様 山田様からのお問い合わせ「商品の詳細」(注文番号: 503-2281937-4460218)", "商品の詳細", "山田"),
        ("Message from buyer", None, None),
    ],
)  # fmt: skip
def test_subject_topic_and_name(subject: str, topic: str | None, name: str | None) -> None:
    parsed = parse_mail(mail("hi", subject=subject, sender=f"<{ALIAS}>"))
    assert (parsed.topic, parsed.buyer_name) == (topic, name)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n  ",
        b"\x00\x01\x02\x03garbage\xff\xfe\x00",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"just some text\nwith no header block\n",
        b"Weird-Name: value\n\nno known header at all\n",
        bytes(range(256)) * 4,
    ],
)
def test_bytes_that_are_not_a_mail_raise(raw: bytes) -> None:
    with pytest.raises(MailParseError):
        parse_mail(raw)


def test_damaged_first_line_does_not_cost_the_headers() -> None:
    parsed = parse_mail(b"\xff\xfe garbled line\n" + mail(older("Begin message", "End message")))
    assert (parsed.buyer_address, parsed.body) == (ALIAS, TEXT)


def test_mutated_mails_parse_or_raise_mail_parse_error_only() -> None:
    rng = random.Random(20261109)
    raws = [p.read_bytes() for p in sorted(DEMO.glob("*.eml"))]
    tokens = [b"=?", b"?=", b"=?utf-8?b?", b"<", b">", b"\n\n", b"--", b";", b'"', b"\x00", b"=\n"]
    parsed = 0
    for _ in range(1500):
        raw = bytearray(rng.choice(raws))
        at = rng.randrange(len(raw))
        match rng.randrange(4):
            case 0:
                raw = raw[:at]
            case 1:
                raw[at] = rng.randrange(256)
            case 2:
                del raw[at : at + rng.randrange(200)]
            case _:
                raw[at:at] = rng.choice(tokens)
        try:
            parse_mail(bytes(raw))
            parsed += 1
        except MailParseError:
            pass
    assert parsed > 1000


def test_multipart_alternative_prefers_the_plain_frame() -> None:
    boundary = "alt"
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{older('Begin message', 'End message')}\n"
        f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n<html><body><pre>other text</pre></body></html>\n"
        f"--{boundary}--\n"
    )
    parsed = parse_mail(mail(body, content_type=f'multipart/alternative; boundary="{boundary}"'))
    assert parsed.body == TEXT
    assert parsed.attachments == ()


def test_attached_mail_and_text_file_are_listed_as_attachments() -> None:
    boundary = "mix"
    inner = "From: a@x\nSubject: old\nMessage-ID: <old@x>\n\nold body\n"
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{older('Begin message', 'End message')}\n"
        f'--{boundary}\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename="old.eml"\n\n'
        f"{inner}\n"
        f'--{boundary}\nContent-Type: text/plain\nContent-Disposition: attachment; filename="log.txt"\n\nabc\n'
        f"--{boundary}--\n"
    )
    parsed = parse_mail(mail(body, content_type=f'multipart/mixed; boundary="{boundary}"'))
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("old.eml", "message/rfc822"),
        ("log.txt", "text/plain"),
    ]
    assert parsed.attachments[1].size == 3
    assert parsed.body == TEXT


def test_bogus_charset_is_read_best_effort() -> None:
    utf8 = mail("Grüße aus Köln".encode(), content_type="text/plain; charset=x-bogus-42")
    assert parse_mail(utf8).body == "Grüße aus Köln"
    latin = mail("Grüße aus Köln".encode("latin-1"), content_type='text/plain; charset="utf-8"')
    assert parse_mail(latin).body == "Grüße aus Köln"


@pytest.mark.parametrize(
    ("charset", "cte"),
    [("iso-2022-jp", "7bit"), ("shift_jis", "base64"), ("euc-jp", "base64"), ("windows-1252", "quoted-printable")],
)
def test_charsets_and_transfer_encodings(charset: str, cte: str) -> None:
    import quopri

    text = "Café déjà vu" if charset == "windows-1252" else "注文した商品がまだ届きません"
    data = text.encode(charset)
    encoded = {
        "7bit": data,
        "base64": base64.encodebytes(data),
        "quoted-printable": quopri.encodestring(data),
    }[cte]
    parsed = parse_mail(mail(encoded, content_type=f"text/plain; charset={charset}", cte=cte))
    assert parsed.body == text


def test_malformed_headers_do_not_break_parsing() -> None:
    raw = (
        b"From: =?utf-8?q?broken\nSubject: =?nonsense-cs?q?h=E9llo?= \xe4\xf6\xfc raw\n"
        b"Date: not a date at all\nTo: ,,,\nMessage-ID: no-angle-brackets@x\n"
        b"Received: from a by b; Tue, 10 Nov 2026 09:14:20 +0100\n\nbody\n"
    )
    parsed = parse_mail(raw)
    assert parsed.kind is MailKind.OTHER
    assert parsed.subject.startswith("h") and "raw" in parsed.subject
    assert parsed.message_id == "no-angle-brackets@x"
    assert parsed.received_at == datetime(2026, 11, 10, 8, 14, 20, tzinfo=UTC)  # from Received
    assert parsed.body == "body"


def test_date_without_zone_is_taken_as_utc() -> None:
    parsed = parse_mail(mail("x", date="Mon, 09 Nov 2026 08:41:17 -0000"))
    assert parsed.received_at == datetime(2026, 11, 9, 8, 41, 17, tzinfo=UTC)


def test_huge_body_is_capped_and_says_so() -> None:
    text = ("word " * 60_000).strip()
    parsed = parse_mail(mail(older("Begin message", "End message", text)))
    assert len(parsed.body) == BODY_LIMIT + len(TRUNCATION_NOTE)
    assert parsed.body.endswith(TRUNCATION_NOTE)
    assert parsed.order_id == "113-4829301-5520947"


def test_dedupe_key_prefers_message_id_then_token() -> None:
    with_id = parse_mail(mail(older("Begin message", "End message")))
    assert with_id.dedupe_key == "mid:0101019a.t1@email.amazonses.com"
    no_id = parse_mail(mail(older("Begin message", "End message"), message_id=None))
    assert (no_id.message_id, no_id.dedupe_key) == (None, "tok:A1B2C3D4E5F6G7")
    neither = parse_mail(mail("hello", message_id=None))
    assert neither.dedupe_key == ""


def test_references_and_addresses() -> None:
    raw = mail(
        "x",
        headers={"References": "<a@x> <b@y>\n <c@z>", "Cc": "other@x"},
        sender='"=?utf-8?q?J=C3=B6rg?= - Amazon Marketplace" <JoRg1@marketplace.amazon.de>',
    )
    parsed = parse_mail(raw)
    assert parsed.references == ("a@x", "b@y", "c@z")
    assert parsed.to_addresses == ("service@northwind-gear.example",)
    assert (parsed.from_address, parsed.from_name, parsed.buyer_name) == (
        "JoRg1@marketplace.amazon.de",
        "Jörg - Amazon Marketplace",
        "Jörg",
    )


def test_suspicious_only_when_claiming_amazon_and_failing_authentication() -> None:
    failing = {"Authentication-Results": "mx.shop.example; dkim=fail header.d=amazon.com; spf=softfail"}
    assert parse_mail(mail("x", headers=failing)).suspicious is True
    assert parse_mail(mail("x", sender="a@gmail.com", headers=failing)).suspicious is False
    passing = {"Authentication-Results": "mx.shop.example; dkim=pass; spf=pass"}
    assert parse_mail(mail("x", headers=passing)).suspicious is False


def test_mbox_from_line_is_tolerated() -> None:
    raw = b"From MAILER-DAEMON Mon Nov  9 08:41:17 2026\n" + mail("hi")
    assert parse_mail(raw).buyer_address == ALIAS


@pytest.mark.parametrize(
    ("alias", "order_id", "key"),
    [
        ("Abc+Case1@marketplace.amazon.de", "302-5561237-7781920",
         "abc+case1@marketplace.amazon.de|302-5561237-7781920"),
        ("abc@marketplace.amazon.de", None, "abc@marketplace.amazon.de"),
        ("abc+x@marketplace.amazon.de", None, "abc+x@marketplace.amazon.de"),
        (None, "302-5561237-7781920", "|302-5561237-7781920"),
        (None, None, ""),
    ],
)  # fmt: skip
def test_thread_key(alias: str | None, order_id: str | None, key: str) -> None:
    assert thread_key(alias, order_id) == key


def test_thread_key_keeps_suffixes_apart() -> None:
    assert thread_key("abc+one@marketplace.amazon.de", None) != thread_key("abc+two@marketplace.amazon.de", None)


def test_cli_record_shape() -> None:
    record = to_cli_record(_demo("us-order_status-older-template.eml"), "knowledge/demo/x.eml")
    assert list(record) == [
        "source", "kind", "marketplace", "buyer_address", "order_id", "asin", "product_title", "topic",
        "subject", "body", "message_id", "comm_token", "received_at",
    ]  # fmt: skip
    assert record["received_at"] == "2026-11-09T13:41:17Z"
    assert record["kind"] == "buyer_message"
    json.dumps(record)  # plain JSON values only
    no_date = parse_mail(mail("x", date=None))
    assert to_cli_record(no_date, "s")["received_at"] is None


def test_amazon_it_return_request_in_the_current_format_gives_its_asin() -> None:
    # Italian typography puts a no-break space before the colon: "ASIN : B0...", in text and HTML alike.
    raw = (Path(__file__).parent / "fixtures" / "it-return_request-current-format.eml").read_bytes()
    parsed = parse_mail(raw)
    assert (parsed.kind, parsed.marketplace) == (MailKind.RETURN_REQUEST, "IT")
    assert (parsed.order_id, parsed.asin) == ("405-1938274-6650931", "B0CZ7QK4M2")
    assert not parsed.suspicious


@pytest.mark.parametrize(
    ("line", "asin"),
    [
        ("ASIN: B0CZ7QK4M2", "B0CZ7QK4M2"),
        ("ASIN\u00a0: B0CZ7QK4M2", "B0CZ7QK4M2"),
        ("ASIN : B0CZ7QK4M2", "B0CZ7QK4M2"),
        ("Codice ASIN\u202f: 3161484100", "3161484100"),
        ("[ASIN: B0D4K7N2QX]", "B0D4K7N2QX"),
        ("ASIN: B0CZ7QK4M2X", None),  # eleven characters: no ASIN
        ("PASINB0", None),
    ],
)
def test_asin_mentions(line: str, asin: str | None) -> None:
    parsed = parse_mail(mail(f"Gentile venditore,\n{line}\n", sender="Amazon <donotreply@amazon.it>"))
    assert parsed.asin == asin
