"""Localised wording of Amazon's relay mails: frame markers, subjects, sender names, notice phrases.

Data only (plus the compiled patterns built from it). Amazon localises every marketplace; the tables
hold the variants seen in public samples and the team's demo inbox. Adding a language means adding
rows here, never code in the parser. Labels are compared case-folded with a trailing ":" dropped.

Every pattern over mail text is RE2 (`re2`): its time is linear in the text whatever the text, since
anyone can write to a relay mailbox. RE2 has no look-around and no back-references; `_S` stands for Python's Unicode
blank (RE2's `\\s` is ASCII only), and digits are spelled `[0-9]`.
"""

from __future__ import annotations

import re

import re2

from engine.mail.kinds import MailKind

_S = r"[\s\p{Z}]"  # any blank, Unicode ones (no-break space, ideographic space) included

# The line that frames the buyer text: 13 dashes (14 on amazon.ca), a label, the same dashes.
MARKER_LINE = re2.compile(r"(?m)^[ \t]*-{5,}[ \t]*(?P<label>[^-\r\n][^\r\n]*?)[ \t]*-{5,}[ \t]*$")

# Older template "Begin message" and current template "Message:" labels.
BEGIN_LABELS: frozenset[str] = frozenset(
    {
        # older generation
        "begin message",
        "anfang der nachricht",
        "inizio messaggio",
        "début du message",
        "debut du message",
        "iniciar mensaje",
        "inicio del mensaje",
        "iniciar mensagem",
        "início da mensagem",
        "inicio da mensagem",
        "begin bericht",
        "początek wiadomości",
        "meddelandet börjar",
        "mesaj başlangıcı",
        "بداية الرسالة",
        "メッセージはここから",
        # current generation ("------------- Message: -------------")
        "message",
        "nachricht",
        "messaggio",
        "mensaje",
        "mensagem",
        "bericht",
        "wiadomość",
        "meddelande",
        "mesaj",
        "الرسالة",
        "メッセージ",
    }
)

END_LABELS: frozenset[str] = frozenset(
    {
        "end message",
        "end of message",
        "ende der nachricht",
        "fine messaggio",
        "fin du message",
        "finalizar mensaje",
        "fin del mensaje",
        "encerrar mensagem",
        "fim da mensagem",
        "mensagem final",
        "einde bericht",
        "koniec wiadomości",
        "meddelandet slutar",
        "mesaj sonu",
        "نهاية الرسالة",
        "メッセージはここまで",
    }
)

# First line of the current template; it marks a relayed buyer message even without markers.
RECEIVED_OPENERS: tuple[str, ...] = (
    "you have received a message.",
    "sie haben eine nachricht erhalten.",
    "hai ricevuto un messaggio.",
    "vous avez reçu un message.",
    "has recibido un mensaje.",
    "você recebeu uma mensagem.",
    "u hebt een bericht ontvangen.",
    "otrzymałeś wiadomość.",
    "du har fått ett meddelande.",
    "メッセージを受信しました。",
)

# "1 of <title> [ASIN: B0...]" and its translations ("1 von", "1 di", "1 個" ...).
PRODUCT_LINE = re2.compile(
    r"(?m)^[ \t]*[0-9]+[ \t]*(?:of|von|di|de|sur|van|z|av|x|×|/|個|点|件)[ \t]+(?P<title>[^\r\n]+?)[ \t]*"
    r"\[ASIN:[ \t]*(?P<asin>[A-Z0-9]{10})[ \t]*\]"
)
# Current template: "Item: <title> [ASIN: ...]" / "Artikel: ..." / "商品: ..." (any short label).
ITEM_LINE = re2.compile(
    r"(?m)^[ \t]*[^\s:：]{1,20}[ \t]*[:：][ \t]*(?P<title>[^\r\n]+?)[ \t]*\[ASIN:[ \t]*(?P<asin>[A-Z0-9]{10})[ \t]*\]"
)
# Any ASIN mention: "[ASIN: B0...]", "ASIN B0...", and French/Italian typography "ASIN : B0..." (a blank,
# often a no-break one, before the colon), as in amazon.it return-request notifications.
ASIN = re2.compile(r"ASIN[ \t\x{a0}\x{202f}]*[:：]?[ \t\x{a0}\x{202f}]*(?P<asin>B0[A-Z0-9]{8}|[0-9]{9}[0-9X])\b")
ORDER_ID = re2.compile(r"(?:^|[^0-9])([0-9]{3}-[0-9]{7}-[0-9]{7})(?:[^0-9]|$)")
COMM_TOKEN = re2.compile(r"\[commMgrTok:[ \t]*(?P<token>[A-Za-z0-9_\-]{1,200})[ \t]*\]")
MARKETPLACE_PARAM = re2.compile(r"(?:[?&]|&amp;)mp=(?P<id>[A-Z0-9]{8,20})\b")

# The relay host: marketplace.amazon.<tld> and its sub-hosts (m.marketplace.amazon.co.jp). Matched by
# the standard `re` at the end of a host cut to 255 characters (the longest a host can be): no nested or
# ambiguous quantifiers, so linear, and many times cheaper per call than RE2 for such short strings.
RELAY_HOST = re.compile(r"(?:^|\.)marketplace\.amazon\.[a-z]{2,3}(?:\.[a-z]{2})?$", re.IGNORECASE)
AMAZON_HOST = re.compile(r"(?:^|\.)amazon\.[a-z]{2,3}(?:\.[a-z]{2})?$", re.IGNORECASE)
_HOST_LIMIT = 255


def is_relay_host(host: str) -> bool:
    host = host[-_HOST_LIMIT:]
    return "amazon" in host.lower() and RELAY_HOST.search(host) is not None


def is_amazon_host(host: str) -> bool:
    """Amazon's own hosts, relay hosts included."""
    host = host[-_HOST_LIMIT:]
    return "amazon" in host.lower() and AMAZON_HOST.search(host) is not None


# Local parts of Amazon's own senders; on a relay host they are notices, not buyers.
NOTICE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "donotreply",
        "do-not-reply",
        "no-reply",
        "noreply",
        "auto-communication",
        "atoz-guarantee-no-reply",
        "seller-notification",
        "seller-notifications",
        "notification",
        "community-help",
        "payments-messages",
    }
)
BOUNCE_LOCAL_PARTS: frozenset[str] = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})

# `"Alisa - Amazon Marketplace"`, `"Jonas über Amazon"`, `"Camille via Amazon"` -> the buyer's name.
DISPLAY_NAME_PATTERNS: tuple[re2._Regexp, ...] = tuple(
    re2.compile("(?i)" + p.replace(r"\s", _S))
    for p in (
        r"^(?P<name>.+?)\s*[-–—]\s*Amazon(?:\s*Marketplace|\s*マーケットプレイス)?(?:\.[a-z.]+)?$",
        r"^(?P<name>.+?)\s+(?:über|via|par|tramite|a través de|por meio da|por|przez|från|door)\s+"
        r"Amazon(?:\s*Marketplace)?(?:\.[a-z.]+)?$",
        r"^(?P<name>.+?)\s*\((?:via|über|par|tramite)\s+Amazon\)$",
    )
)

# Reply/forward prefixes stacked before a subject ("AW: RE: ...").
SUBJECT_PREFIX = re2.compile(
    (r"(?i)^(?:\s*(?:re|aw|antw|sv|vs|r|rif|rv|tr|wg|fw|fwd|odp|ynt|返信|回复|答复)\s*:\s*)+").replace(r"\s", _S)
)
# "(Order: 123-...)", "(Bestellung: ...)", "（注文番号: ...）": dropped before the subject patterns.
SUBJECT_ORDER_SUFFIX = re2.compile(
    (r"\s*[(（][^()（）]*[0-9]{3}-[0-9]{7}-[0-9]{7}[^()（）]*[)）]\s*$").replace(r"\s", _S)
)

# Relay subjects: "<Topic> inquiry from Amazon customer <Name>" and translations.
SUBJECT_PATTERNS: tuple[re2._Regexp, ...] = tuple(
    re2.compile("(?i)" + p.replace(r"\s", _S))
    for p in (
        r"^(?:(?P<topic>.+?)\s+)?inquiry from (?:an )?Amazon customer\s+(?P<name>.+)$",
        r"^Anfrage(?:\s+zu[mr]?\s+(?P<topic>.+?))?\s+von Amazon-Kunde(?:/-in|in)?\s+(?P<name>.+)$",
        r"^(?:Demande|Question)(?:\s+concernant\s+(?P<topic>.+?))?\s+(?:du|de la part du) client Amazon"
        r"\s+(?P<name>.+)$",
        r"^Richiesta(?:\s+su\s+(?P<topic>.+?))?\s+dal(?:la)? cliente Amazon\s+(?P<name>.+)$",
        r"^Consulta(?:\s+sobre\s+(?P<topic>.+?))?\s+del cliente de Amazon\s+(?P<name>.+)$",
        r"^Consulta(?:\s+sobre\s+(?P<topic>.+?))?\s+do cliente da Amazon\s+(?P<name>.+)$",
        r"^Vraag(?:\s+over\s+(?P<topic>.+?))?\s+van Amazon-klant\s+(?P<name>.+)$",
        r"^Zapytanie(?:\s+dotyczące\s+(?P<topic>.+?))?\s+od klienta Amazon\s+(?P<name>.+)$",
        r"^Fråga(?:\s+om\s+(?P<topic>.+?))?\s+från Amazon-kunden\s+(?P<name>.+)$",
        r"^Amazonのお客様\s*(?P<name>.+?)\s*(?:様|さん)からのお問い合わせ(?:\s*[「『](?P<topic>[^」』]+)[」』])?$",
    )
)

# Seller Central notification types (header X-Space-Notification-Type) and what they are.
NOTIFICATION_KINDS: dict[str, MailKind] = {
    "BUYER_OPTED_OUT_BSM_MESSAGES": MailKind.OPTOUT,
    "A_Z_CLAIM_RESPONDENT_NOTIFY": MailKind.ATOZ_CLAIM,
    "RETURN_REQUEST": MailKind.RETURN_REQUEST,
    "BRC_SELLER_NOTIFICATION": MailKind.CANCELLATION_REQUEST,
    "REFUND_ISSUED": MailKind.REFUND_NOTICE,
    "BBC_MESSAGE_CONFIRMATION_TO_MERCHANT": MailKind.SENT_COPY,
}

# Subject/body phrases of the non-buyer kinds, checked in this order (opt-out notices also say
# "not delivered", so they come before delivery failures). Lower-case; matched as substrings.
KIND_PHRASES: tuple[tuple[MailKind, tuple[str, ...]], ...] = (
    (
        MailKind.OPTOUT,
        (
            "opted out",
            "opt-out",
            "hat sich von nachrichten abgemeldet",
            "keine nachrichten mehr erhalten",
            "a choisi de ne plus recevoir",
            "ha scelto di non ricevere",
            "ha optado por no recibir",
            "optou por não receber",
            "heeft zich afgemeld",
            "メッセージの受信を停止",
            "受信を希望していません",
        ),
    ),
    (
        MailKind.SENT_COPY,
        (
            "copy of the e-mail that you sent",
            "copy of the email that you sent",
            "copy of your message",
            "kopie der e-mail, die sie",
            "kopie ihrer nachricht",
            "copie de l'e-mail que vous avez envoyé",
            "copie de votre message",
            "copia dell'e-mail che hai inviato",
            "copia del tuo messaggio",
            "copia del correo electrónico que enviaste",
            "copia de tu mensaje",
            "cópia do e-mail que você enviou",
            "送信したメールのコピー",
            "送信したメッセージのコピー",
        ),
    ),
    (
        MailKind.DELIVERY_FAILURE,
        (
            "delivery status notification",
            "undelivered mail returned to sender",
            "mail delivery failed",
            "delivery has failed",
            "undeliverable",
            "returned mail",
            "could not be delivered",
            "unzustellbar",
            "nicht zustellbar",
            "non remis",
            "échec de la remise",
            "impossible de remettre",
            "mancato recapito",
            "non recapitabile",
            "no se puede entregar",
            "no se pudo entregar",
            "não foi possível entregar",
            "配信不能",
            "配信できません",
            "送信できませんでした",
        ),
    ),
    (
        MailKind.ATOZ_CLAIM,
        (
            "a-to-z guarantee",
            "a-to-z claim",
            "a-bis-z-garantie",
            "garantie a à z",
            "garantie de a à z",
            "garanzia dalla a alla z",
            "garantía de la a a la z",
            "garantia de a a z",
            "マーケットプレイス保証",
        ),
    ),
    (
        MailKind.CANCELLATION_REQUEST,
        (
            "cancellation request",
            "requested cancellation",
            "request to cancel",
            "stornierungsanfrage",
            "stornierungsantrag",
            "demande d'annulation",
            "richiesta di cancellazione",
            "richiesta di annullamento",
            "solicitud de cancelación",
            "solicitação de cancelamento",
            "キャンセルリクエスト",
            "キャンセル依頼",
        ),
    ),
    (
        MailKind.RETURN_REQUEST,
        (
            "return request",
            "return authorization request",
            "rücksendeanfrage",
            "rücksendung angefordert",
            "demande de retour",
            "richiesta di reso",
            "solicitud de devolución",
            "solicitação de devolução",
            "retourverzoek",
            "返品リクエスト",
        ),
    ),
    (
        MailKind.REFUND_NOTICE,
        (
            "refund issued",
            "refund has been issued",
            "erstattung veranlasst",
            "erstattung durchgeführt",
            "remboursement effectué",
            "remboursement émis",
            "rimborso emesso",
            "rimborso effettuato",
            "reembolso emitido",
            "reembolso realizado",
            "返金処理",
            "返金が完了",
        ),
    ),
)
