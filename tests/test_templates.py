"""Templates: syntax, loading, choosing, rendering, and locale formats."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine.compliance import check_reply
from engine.drafting.locale_format import format_date, format_money
from engine.drafting.protocols import DraftRequest, OrderContext
from engine.drafting.templates import (
    Template,
    TemplateSet,
    load_templates,
    render,
    template_variables,
)
from engine.errors import TemplateError
from engine.taxonomy import INTENTS, LANGUAGES

TEMPLATES = load_templates()
FULL_VARIABLES = {
    "buyer_name": "Anna Schmidt",
    "order_id": "302-1234567-1234567",
    "product_title": "Coffee grinder",
    "asin": "B0TEST1234",
    "carrier": "DHL",
    "tracking_number": "00340434161094042557",
    "ship_date": "27.11.2026",
    "delivery_date": "01.12.2026",
    "order_total": "24,99 €",
    "store_name": "Muster Shop",
}
_FORBIDDEN = re.compile(r"https?://|www\.|@|<[a-z/][^>]*>|\breview\b|\bcoupon\b|\bwhatsapp\b", re.IGNORECASE)


def test_every_intent_and_language_has_a_template_that_needs_no_variable() -> None:
    for intent in INTENTS:
        for language in LANGUAGES:
            template = TEMPLATES.get(f"{intent}.{language}")
            assert template is not None, f"{intent}.{language} missing"
            assert template.required == (), f"{template.id} must render with nothing known"
    assert len(TEMPLATES) >= len(INTENTS) * len(LANGUAGES)


@pytest.mark.parametrize("template", list(TEMPLATES), ids=lambda t: t.id)
def test_every_template_renders_clean_with_and_without_data(template: Template) -> None:
    for variables in (FULL_VARIABLES, {k: FULL_VARIABLES[k] for k in template.required}):
        text = render(template, variables)
        assert text and "{{" not in text and "}}" not in text
        assert "\n\n\n" not in text and text == text.strip()
        assert not _FORBIDDEN.search(text), f"{template.id}: {text}"
        verdict = check_reply(text, buyer_language=template.language, reply_language=template.language)
        assert verdict.allowed, f"{template.id}: {verdict}"
    with_id = render(template, FULL_VARIABLES)
    if template.intent not in ("shipping_options", "product_question"):  # often asked before buying
        assert FULL_VARIABLES["order_id"] in with_id, template.id


@pytest.mark.parametrize(
    ("language", "with_name", "without_name"),
    [
        ("en", "Hello Anna Schmidt,", "Hello,"),
        ("de", "Hallo Anna Schmidt,", "Guten Tag,"),
        ("fr", "Bonjour Anna Schmidt,", "Bonjour,"),
        ("ja", "Anna Schmidt 様", "お客様"),
    ],
)
def test_greeting_handles_a_missing_buyer_name(language: str, with_name: str, without_name: str) -> None:
    template = TEMPLATES.get(f"other.{language}")
    assert template is not None
    assert render(template, {"buyer_name": "Anna Schmidt"}).startswith(with_name)
    assert render(template, {}).startswith(without_name)
    assert render(template, {"buyer_name": "  "}).startswith(without_name)


def test_missing_required_variable_names_variable_and_template() -> None:
    template = Template("order_status.en.x", "order_status", "en", "x", "Sent with {{carrier}}: {{tracking_number}}")
    assert template.required == ("carrier", "tracking_number")
    with pytest.raises(TemplateError, match=r"order_status\.en\.x needs tracking_number"):
        render(template, {"carrier": "DHL"})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("Your order {{Order ID}}", "malformed"),
        ("Your order {{order_number}}", "unknown variable 'order_number'"),
        ("{{#order_id}}open", "leaves the section 'order_id' open"),
        ("{{/order_id}}", "closes the section"),
        ("{{>greeting}} hi", "partial 'greeting'"),
        ("Hello {{ buyer_name }", "malformed"),
    ],
)
def test_broken_bodies_are_rejected(body: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        Template("other.en", "other", "en", "x", body)


def test_values_cannot_inject_template_syntax() -> None:
    template = Template("other.en", "other", "en", "x", "Hi {{buyer_name}}, {{#order_id}}{{order_id}}{{/order_id}}")
    assert render(template, {"buyer_name": "{{order_id}}"}) == "Hi order_id,"


def test_sections_nest_and_blank_lines_collapse() -> None:
    body = "A\n\n{{#order_id}}B {{order_id}}{{^carrier}} no carrier{{/carrier}}{{/order_id}}\n\n{{answer}}\n\nC"
    template = Template("other.en", "other", "en", "x", body)
    assert render(template, {}) == "A\n\nC"
    assert render(template, {"order_id": "1", "answer": "X."}) == "A\n\nB 1 no carrier\n\nX.\n\nC"
    assert template.variables == ("order_id", "carrier", "answer")


def test_best_prefers_the_variant_that_uses_known_data_and_fba_only_when_asked() -> None:
    known = {"carrier": "DHL", "tracking_number": "123"}
    assert TEMPLATES.best("order_status", "de", variables=known).id == "order_status.de.tracking"  # type: ignore[union-attr]
    assert TEMPLATES.best("order_status", "de").id == "order_status.de"  # type: ignore[union-attr]
    assert TEMPLATES.best("order_status", "de", situation="fba").id == "order_status.de.fba"  # type: ignore[union-attr]
    assert TEMPLATES.best("product_question", "de", situation="fba").id == "product_question.de"  # type: ignore[union-attr]
    assert TEMPLATES.best("order_status", "xx") is None


def test_template_set_does_not_care_where_templates_come_from() -> None:
    stored = Template("other.en", "other", "en", "Stored", "Hello {{#buyer_name}}{{buyer_name}}{{/buyer_name}}")
    templates = TemplateSet([stored])
    assert len(templates) == 1 and list(templates) == [stored]
    assert templates.best("other", "en") is stored
    with pytest.raises(TemplateError, match="twice"):
        TemplateSet([stored, stored])


def _write(directory: Path, name: str, data: object) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    (directory / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("en.json", "{not json", "en.json is not valid JSON"),
        ("en.json", {"language": "en", "templates": [{"id": "greeting.en", "body": "x"}]}, "unknown intent"),
        ("xx.json", {"language": "xx", "templates": []}, "unknown language 'xx'"),
        ("en.json", {"language": "en", "templates": [{"id": "other.en", "body": "{{shop_url}}"}]}, "shop_url"),
        ("en.json", {"language": "en", "templates": [{"id": "other.de", "body": "x"}]}, "not in this file"),
        ("en.json", {"language": "en", "templates": [{"id": "other", "body": "x"}]}, "needs an id"),
    ],
)
def test_load_templates_names_file_and_problem(tmp_path: Path, name: str, content: object, problem: str) -> None:
    _write(tmp_path, name, content)
    with pytest.raises(TemplateError, match=re.escape(problem)) as error:
        load_templates(tmp_path)
    assert name in str(error.value)


def test_load_templates_expands_partials(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "en.json",
        {
            "language": "en",
            "partials": {"hi": "Hi{{#buyer_name}} {{buyer_name}}{{/buyer_name}},"},
            "templates": [{"id": "other.en", "name": "Other", "body": "{{>hi}}\n\nText"}],
        },
    )
    template = load_templates(tmp_path).get("other.en")
    assert template is not None and "{{>" not in template.body
    assert render(template, {"buyer_name": "Bo"}) == "Hi Bo,\n\nText"


@pytest.mark.parametrize(
    ("language", "marketplace", "iso", "amount", "currency", "date_text", "money_text"),
    [
        ("de", "DE", "2026-11-27", "24.99", "EUR", "27.11.2026", "24,99 €"),
        ("fr", "FR", "2026-11-27", "1234.5", "EUR", "27/11/2026", "1 234,50 €"),
        ("en", "US", "2026-11-27", "24.99", "USD", "11/27/2026", "$24.99"),
        ("en", "UK", "2026-11-27", "24.99", "GBP", "27/11/2026", "£24.99"),
        ("en", "CA", "2026-11-27", "24.99", "CAD", "2026-11-27", "$24.99"),
        ("ja", "JP", "2026-11-27", "1980", "JPY", "2026年11月27日", "¥1,980"),
        ("it", "IT", "2026-01-05", "1234.56", "EUR", "05/01/2026", "1.234,56 €"),
        ("es", "ES", "2026-11-27", "1234.56", "EUR", "27/11/2026", "1234,56 €"),
        ("es", "MX", "2026-11-27", "1234.56", "MXN", "27/11/2026", "$1,234.56"),
        ("pt", "BR", "2026-11-27", "99.9", "BRL", "27/11/2026", "R$ 99,90"),
        ("nl", "NL", "2026-11-27", "24.99", "EUR", "27-11-2026", "€ 24,99"),
        ("pl", "PL", "2026-11-27", "12345.6", "PLN", "27.11.2026", "12 345,60 zł"),
        ("sv", "SE", "2026-11-27", "249", "SEK", "2026-11-27", "249,00 kr"),
        ("tr", "TR", "2026-11-27", "249.9", "TRY", "27.11.2026", "₺249,90"),
        ("en", "DE", "2026-11-27T10:00:00Z", "24.99", "USD", "27/11/2026", "US$24.99"),
    ],
)
def test_dates_and_money_in_the_marketplace_format(
    language: str, marketplace: str, iso: str, amount: str, currency: str, date_text: str, money_text: str
) -> None:
    assert format_date(iso, language, marketplace) == date_text
    assert format_money(Decimal(amount), currency, language, marketplace) == money_text


def test_template_variables_from_request() -> None:
    request = DraftRequest(
        text="Wo ist mein Paket?",
        language="de",
        intent="order_status",
        marketplace="DE",
        buyer_name="Anna",
        product_title="Kaffeemühle aus Edelstahl mit Kegelmahlwerk, 40 Mahlgraden, Timer, "
        "Bohnenbehälter 250 g, schwarz",
        order=OrderContext(
            order_id="302-1234567-1234567", ship_date="2026-11-27", delivery_date="not a date", order_total="24.99"
        ),
    )
    variables = template_variables(request)
    assert variables["ship_date"] == "27.11.2026"
    assert variables["order_total"] == "24,99 €"  # currency from the marketplace
    assert "delivery_date" not in variables  # unreadable: left out, never shown raw
    assert variables["product_title"].endswith("…") and len(variables["product_title"]) <= 81
    assert "carrier" not in variables and "store_name" not in variables
