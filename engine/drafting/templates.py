"""Reply templates per intent and language: syntax, loading, choosing and rendering.

Template syntax (a small, logic-less subset of Mustache):

    {{name}}                 a variable; outside any section it is *required*
    {{#name}}...{{/name}}    rendered only when `name` is present (non-empty)
    {{^name}}...{{/name}}    rendered only when `name` is missing
    {{answer}}               the optional slot where the default drafter inserts retrieved sentences

Template files (`knowledge/templates/<language>.json`) may also define `partials` (the greeting and the
sign-off) that bodies include with `{{>greeting}}`; they are expanded at load time, so every `Template`
body is self-contained and can be stored elsewhere (the database) as is.

Ids are `<intent>.<language>` or `<intent>.<language>.<variant>`. A variant named in `SITUATIONS`
(`fba`) is chosen only when the caller asks for that situation; any other variant (`tracking`) is
chosen automatically when all its required variables are known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.compliance import check_reply
from engine.compliance.normalize import is_invisible
from engine.drafting.locale_format import format_date, format_money, marketplace_currency
from engine.drafting.protocols import DraftRequest
from engine.errors import TemplateError
from engine.taxonomy import INTENTS, KNOWLEDGE_DIR, LANGUAGES

__all__ = [
    "ANSWER_SLOT",
    "SITUATIONS",
    "VARIABLES",
    "Template",
    "TemplateSet",
    "load_templates",
    "render",
    "template_variables",
]

ANSWER_SLOT = "answer"
VARIABLES: tuple[str, ...] = (
    "buyer_name",
    "order_id",
    "product_title",
    "asin",
    "carrier",
    "tracking_number",
    "ship_date",
    "delivery_date",
    "order_total",
    "store_name",
    ANSWER_SLOT,
)
SITUATIONS: frozenset[str] = frozenset({"fba"})
PRODUCT_TITLE_MAX = 80  # Amazon titles run to 200 characters; a reply needs only the recognisable start
BUYER_NAME_MAX = 60
# Values the buyer (or a listing) controls: they reach the reply's text, so the gate sees them first.
BUYER_CONTROLLED = ("buyer_name", "product_title")

_TAG = re.compile(r"\{\{\s*([#^/>]?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES = re.compile(r"\{\{|\}\}")


@dataclass(frozen=True)
class _Token:
    kind: str  # "text", "var", "#", "^", "/"
    value: str


def _tokenize(body: str, template_id: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    for match in _TAG.finditer(body):
        tokens.append(_Token("text", body[position : match.start()]))
        sigil, name = match.group(1), match.group(2)
        if sigil == ">":
            raise TemplateError(
                f"Template {template_id} includes the partial '{name}' that is not defined; "
                "define it under 'partials' in the template file."
            )
        if name not in VARIABLES:
            raise TemplateError(
                f"Template {template_id} uses the unknown variable '{name}'; use one of: {', '.join(VARIABLES)}."
            )
        tokens.append(_Token(sigil or "var", name))
        position = match.end()
    tokens.append(_Token("text", body[position:]))
    for token in tokens:
        if token.kind == "text" and _ANY_BRACES.search(token.value):
            snippet = token.value[max(0, token.value.find("{{")) :][:30]
            raise TemplateError(
                f"Template {template_id} has a malformed placeholder near '{snippet}'; "
                "write variables as {{name}} with a known name."
            )
    return tokens


def _required_in(tokens: list[_Token], template_id: str) -> list[str]:
    """Variables used outside a section guarded by themselves; also checks that sections balance."""
    open_sections: list[tuple[str, str]] = []
    required: list[str] = []
    for token in tokens:
        if token.kind in ("#", "^"):
            open_sections.append((token.kind, token.value))
        elif token.kind == "/":
            if not open_sections or open_sections[-1][1] != token.value:
                raise TemplateError(
                    f"Template {template_id} closes the section '{token.value}' that is not open; "
                    "check the {{#...}} / {{/...}} pairs."
                )
            open_sections.pop()
        elif token.kind == "var":
            guarded = any(kind == "#" and name == token.value for kind, name in open_sections)
            if not guarded and token.value != ANSWER_SLOT and token.value not in required:
                required.append(token.value)
    if open_sections:
        raise TemplateError(
            f"Template {template_id} leaves the section '{open_sections[-1][1]}' open; "
            "close it with {{/" + open_sections[-1][1] + "}}."
        )
    return required


@dataclass(frozen=True)
class Template:
    """One reply template; `required` is completed with every variable the body uses unguarded."""

    id: str
    intent: str
    language: str
    name: str
    body: str
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        tokens = _tokenize(self.body, self.id)
        derived = _required_in(tokens, self.id)
        for name in self.required:
            if name not in VARIABLES:
                raise TemplateError(f"Template {self.id} requires the unknown variable '{name}'.")
        merged = tuple(dict.fromkeys((*self.required, *derived)))
        object.__setattr__(self, "required", merged)

    @property
    def variables(self) -> tuple[str, ...]:
        names = [t.value for t in _tokenize(self.body, self.id) if t.kind in ("var", "#", "^")]
        return tuple(dict.fromkeys(names))

    @property
    def variant(self) -> str | None:
        parts = self.id.split(".", 2)
        return parts[2] if len(parts) == 3 else None

    @property
    def has_answer_slot(self) -> bool:
        return ANSWER_SLOT in self.variables


class TemplateSet:
    """Templates from anywhere (files, database); looked up by id or by intent and language."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self._by_id: dict[str, Template] = {}
        for template in templates:
            if template.id in self._by_id:
                raise TemplateError(f"Template id {template.id} appears twice; ids must be unique.")
            self._by_id[template.id] = template

    def get(self, template_id: str) -> Template | None:
        return self._by_id.get(template_id)

    def best(
        self,
        intent: str,
        language: str,
        *,
        variables: Mapping[str, str | None] | None = None,
        situation: str | None = None,
    ) -> Template | None:
        """The template that uses the most known data; a `situation` variant (fba) wins when asked for."""
        known = {k for k, v in (variables or {}).items() if v}
        candidates = [
            t
            for t in self._by_id.values()
            if t.intent == intent and t.language == language and set(t.required) <= known
        ]
        if situation is not None:
            chosen = [t for t in candidates if t.variant == situation]
            if chosen:
                return max(chosen, key=lambda t: len(t.required))
        ordinary = [t for t in candidates if t.variant not in SITUATIONS]
        if not ordinary:
            return None
        # Most satisfied requirements first; the plain template (no variant) breaks ties.
        return max(ordinary, key=lambda t: (len(t.required), t.variant is None))

    def __iter__(self) -> Iterator[Template]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def _clean_value(value: str) -> str:
    # A value must never reintroduce template syntax into the output.
    return _ANY_BRACES.sub("", value).strip()


def render(template: Template, variables: Mapping[str, str | None]) -> str:
    """Fill the template; empty sections and slots leave no blank runs or leftover placeholders."""
    present = {k: _clean_value(v) for k, v in variables.items() if v and _clean_value(v)}
    missing = [name for name in template.required if name not in present]
    if missing:
        raise TemplateError(
            f"Template {template.id} needs {', '.join(missing)}, which is not known for this message; "
            "fill it in or choose another template."
        )
    output: list[str] = []
    skipping = 0  # depth of sections being skipped
    for token in _tokenize(template.body, template.id):
        if token.kind in ("#", "^"):
            shown = (token.value in present) == (token.kind == "#")
            if skipping or not shown:
                skipping += 1
        elif token.kind == "/":
            if skipping:
                skipping -= 1
        elif skipping:
            continue
        elif token.kind == "text":
            output.append(token.value)
        else:
            output.append(present.get(token.value, ""))
    return _tidy("".join(output))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def template_variables(request: DraftRequest) -> dict[str, str]:
    """Template variables from the request, with dates and money in the marketplace's format."""
    order = request.order
    market = request.marketplace
    values: dict[str, str | None] = {
        "buyer_name": _gated(request.buyer_name, BUYER_NAME_MAX),
        "order_id": order.order_id,
        "product_title": _gated(_shorten(request.product_title), PRODUCT_TITLE_MAX + 1),
        "asin": request.asin,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "store_name": request.store_name,
    }
    for field_name, iso in (("ship_date", order.ship_date), ("delivery_date", order.delivery_date)):
        if iso:
            try:
                values[field_name] = format_date(iso, request.language, market)
            except ValueError:
                values[field_name] = None  # an unreadable date is better left out than shown raw
    if order.order_total:
        currency = order.currency or marketplace_currency(market)
        try:
            amount = Decimal(order.order_total)
        except InvalidOperation:
            amount = None
        if amount is not None and currency:
            values["order_total"] = format_money(amount, currency, request.language, market)
    return {k: v.strip() for k, v in values.items() if v and v.strip()}


def _gated(value: str | None, limit: int) -> str | None:
    """A buyer-controlled value as it may appear in a reply: one line, without invisible characters, at
    most `limit` characters, and left out (the template's section for it then stays empty) when the
    compliance gate blocks it: a buyer named "WhatsApp +49 176 1234567" must not put that in the reply."""
    if not value:
        return None
    visible = "".join(" " if char.isspace() else char for char in value[: limit * 4] if not is_invisible(char))
    cleaned = " ".join(visible.split())[:limit].strip()
    if not cleaned or not check_reply(cleaned).allowed:
        return None
    return cleaned


def _shorten(title: str | None) -> str | None:
    if not title or len(title) <= PRODUCT_TITLE_MAX:
        return title
    cut = title[:PRODUCT_TITLE_MAX].rsplit(" ", 1)[0].rstrip(" ,;-–")
    return cut + "…"


def _expand_partials(body: str, partials: Mapping[str, str], source: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in partials:
            raise TemplateError(f"{source}: the partial '{name}' is not defined; add it under 'partials' in that file.")
        return partials[name]

    return re.sub(r"\{\{\s*>\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", replace, body)


def _templates_from_file(path: Path) -> list[Template]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path.name} is not valid JSON ({exc}); fix the file and reload.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
        raise TemplateError(f"{path.name} must be an object with a 'templates' list.")
    language = data.get("language", path.stem)
    if language not in LANGUAGES:
        raise TemplateError(
            f"{path.name} is for the unknown language '{language}'; use one of: {', '.join(LANGUAGES)}."
        )
    partials = data.get("partials", {})
    templates: list[Template] = []
    for entry in data["templates"]:
        template_id = entry.get("id", "") if isinstance(entry, dict) else ""
        parts = template_id.split(".")
        if len(parts) not in (2, 3) or not isinstance(entry.get("body"), str):
            raise TemplateError(
                f"{path.name}: every template needs an id '<intent>.<language>[.<variant>]' and a body "
                f"(got {template_id!r})."
            )
        intent, id_language = parts[0], parts[1]
        if intent not in INTENTS:
            raise TemplateError(
                f"{path.name}: template {template_id} is for the unknown intent '{intent}'; "
                f"use one of: {', '.join(INTENTS)}."
            )
        if id_language != language:
            raise TemplateError(f"{path.name}: template {template_id} is not in this file's language '{language}'.")
        try:
            body = _expand_partials(entry["body"], partials, path.name)
            templates.append(
                Template(
                    id=template_id,
                    intent=intent,
                    language=language,
                    name=entry.get("name", template_id),
                    body=body,
                    required=tuple(entry.get("required", ())),
                )
            )
        except TemplateError as exc:
            raise TemplateError(f"{path.name}: {exc}") from exc
    return templates


def load_templates(directory: Path = KNOWLEDGE_DIR / "templates") -> TemplateSet:
    """Every `<language>.json` in `directory`, validated; errors name the file and the problem."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise TemplateError(f"No template files in {directory}; the product ships them in knowledge/templates.")
    templates: list[Template] = []
    for path in files:
        templates.extend(_templates_from_file(path))
    return TemplateSet(templates)
