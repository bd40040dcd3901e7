"""The rule catalogue: every rule the gate knows, its severity and the sentence an agent reads.

Sources: Amazon's buyer-seller communication guidelines and the SP-API Messaging v1 model
(`amzn/selling-partner-api-models`, models/messaging-api-model/messaging.json).
"""

from __future__ import annotations

from types import MappingProxyType

from engine.compliance.verdict import RuleInfo

RULES: tuple[RuleInfo, ...] = (
    RuleInfo(
        "link",
        "block",
        "Link or web address",
        "Amazon forbids links and web addresses in buyer messages (except Amazon's own pages): "
        'remove it and describe the step in words, e.g. "Your Orders > Return or replace items".',
    ),
    RuleInfo(
        "email",
        "block",
        "Email address",
        "Amazon forbids email addresses in buyer messages, disguised ones included: "
        "remove it and keep the conversation in Buyer-Seller Messaging.",
    ),
    RuleInfo(
        "phone",
        "block",
        "Phone number",
        "Amazon forbids phone numbers in buyer messages (a manufacturer or carrier hotline only if it is "
        "on the store's allow-list): remove it and answer in the message instead.",
    ),
    RuleInfo(
        "messenger",
        "block",
        "Messenger or social media",
        "Amazon forbids messenger ids, social media names and handles: "
        "remove it and keep the conversation in Buyer-Seller Messaging.",
    ),
    RuleInfo(
        "off_amazon",
        "block",
        "Sale or payment off Amazon",
        "Amazon forbids moving a sale or payment off Amazon (own shop, PayPal, bank transfer, cash): "
        "remove it; payments and refunds go through Amazon only.",
    ),
    RuleInfo(
        "marketing",
        "block",
        "Marketing",
        "Amazon forbids marketing in buyer messages (coupons, discount codes, promotions, newsletters, "
        "other products): remove it and answer only the buyer's question.",
    ),
    RuleInfo(
        "review_manipulation",
        "block",
        "Review or feedback manipulation",
        "Amazon forbids asking for a positive review and tying anything to a review or feedback "
        "(refunds, gifts, removal or change of negative feedback): remove the request.",
    ),
    RuleInfo(
        "html",
        "block",
        "HTML",
        "Amazon accepts plain text only: remove the HTML tag or entity and write the plain character.",
    ),
    RuleInfo(
        "placeholder",
        "block",
        "Unfilled placeholder",
        "The reply still holds a template placeholder: replace it with the real value or delete it.",
    ),
    RuleInfo(
        "length_limit",
        "block",
        "Too long for the message type",
        "The text is longer than this SP-API message type accepts: shorten it.",
    ),
    RuleInfo(
        "invisible",
        "warn",
        "Invisible characters",
        "Invisible characters (zero-width spaces, joiners, direction controls) can hide contact data and "
        "show the buyer something else than the agent saw: delete them (they are blocked inside a word, "
        "a number, an address or a blocked phrase).",
    ),
    RuleInfo(
        "emoji",
        "warn",
        "Emoji",
        "Amazon's guidelines exclude emoji and emoticons: replace them with words.",
    ),
    RuleInfo(
        "language_mismatch",
        "warn",
        "Not in the buyer's language",
        "Amazon asks sellers to write in the buyer's language: translate the reply or check the detected language.",
    ),
    RuleInfo(
        "email_placeholder",
        "warn",
        "Removed-address marker",
        "\"[e-mail address removed]\" is Amazon's marker for an address it stripped from the buyer's "
        "text; it means nothing to the buyer: delete it.",
    ),
    RuleInfo(
        "thanks_only",
        "warn",
        "Thank-you only",
        "Amazon forbids messages that only say thank you: add the service content the buyer needs, "
        'or mark the conversation as "no response needed".',
    ),
)

RULE_BY_ID: MappingProxyType[str, RuleInfo] = MappingProxyType({rule.id: rule for rule in RULES})

# Text length limits (characters) of the SP-API Messaging v1 types that carry text.
SP_API_TEXT_LIMITS: dict[str, int] = {
    "confirmCustomizationDetails": 800,
    "confirmDeliveryDetails": 2000,
    "confirmOrderDetails": 2000,
    "confirmServiceDetails": 2000,
    "unexpectedProblem": 2000,
    "digitalAccessKey": 400,
}

# SP-API message types that carry attachments (and dates) only: any text is a violation.
SP_API_ATTACHMENT_ONLY_TYPES: frozenset[str] = frozenset(
    {"legalDisclosure", "amazonMotors", "warranty", "invoice", "negativeFeedbackRemoval"}
)
