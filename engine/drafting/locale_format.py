"""Dates and money as buyers of a marketplace expect to read them, from small tables (no locale data).

A format is looked up for (language, marketplace) first, then for the language alone: an English reply
on amazon.com reads 11/27/2026 and $24.99, on amazon.co.uk 27/11/2026 and £24.99.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["format_date", "format_money", "marketplace_currency"]

# Fields: {d} day, {m} month, {y} year; zero padding is part of the pattern.
_DATE_BY_LANGUAGE: dict[str, str] = {
    "en": "{d:02d}/{m:02d}/{y}",
    "de": "{d:02d}.{m:02d}.{y}",
    "fr": "{d:02d}/{m:02d}/{y}",
    "it": "{d:02d}/{m:02d}/{y}",
    "es": "{d:02d}/{m:02d}/{y}",
    "pt": "{d:02d}/{m:02d}/{y}",
    "nl": "{d:02d}-{m:02d}-{y}",
    "pl": "{d:02d}.{m:02d}.{y}",
    "sv": "{y}-{m:02d}-{d:02d}",
    "tr": "{d:02d}.{m:02d}.{y}",
    "ar": "{d:02d}/{m:02d}/{y}",
    "ja": "{y}年{m}月{d}日",
    "zh": "{y}年{m}月{d}日",
}
_DATE_BY_LOCALE: dict[tuple[str, str], str] = {
    ("en", "US"): "{m:02d}/{d:02d}/{y}",
    ("en", "CA"): "{y}-{m:02d}-{d:02d}",  # the Canadian standard; avoids the day/month ambiguity
}


@dataclass(frozen=True)
class _NumberStyle:
    decimal: str
    group: str
    pattern: str  # "{s}" symbol, "{n}" number
    min_grouping: int = 1  # 2: no separator in four-digit numbers (es, pl)


_NUMBER_BY_LANGUAGE: dict[str, _NumberStyle] = {
    "en": _NumberStyle(".", ",", "{s}{n}"),
    "de": _NumberStyle(",", ".", "{n} {s}"),
    "fr": _NumberStyle(",", " ", "{n} {s}"),
    "it": _NumberStyle(",", ".", "{n} {s}"),
    "es": _NumberStyle(",", ".", "{n} {s}", min_grouping=2),
    "pt": _NumberStyle(",", ".", "{s} {n}"),
    "nl": _NumberStyle(",", ".", "{s} {n}"),
    "pl": _NumberStyle(",", " ", "{n} {s}", min_grouping=2),
    "sv": _NumberStyle(",", " ", "{n} {s}"),
    "tr": _NumberStyle(",", ".", "{s}{n}"),
    "ar": _NumberStyle(".", ",", "{n} {s}"),
    "ja": _NumberStyle(".", ",", "{s}{n}"),
    "zh": _NumberStyle(".", ",", "{s}{n}"),
}
_NUMBER_BY_LOCALE: dict[tuple[str, str], _NumberStyle] = {
    ("es", "MX"): _NumberStyle(".", ",", "{s}{n}"),
}

_MARKETPLACE_CURRENCY: dict[str, str] = {
    "US": "USD", "CA": "CAD", "MX": "MXN", "BR": "BRL", "UK": "GBP", "DE": "EUR", "FR": "EUR",
    "IT": "EUR", "ES": "EUR", "NL": "EUR", "SE": "SEK", "PL": "PLN", "TR": "TRY", "AE": "AED", "JP": "JPY",
}  # fmt: skip

# (local symbol, marketplaces where it is unambiguous, symbol elsewhere)
_CURRENCY_SYMBOL: dict[str, tuple[str, frozenset[str], str]] = {
    "EUR": ("€", frozenset(), "€"),
    "GBP": ("£", frozenset(), "£"),
    "USD": ("$", frozenset({"US"}), "US$"),
    "CAD": ("$", frozenset({"CA"}), "CA$"),
    "MXN": ("$", frozenset({"MX"}), "MX$"),
    "BRL": ("R$", frozenset(), "R$"),
    "JPY": ("¥", frozenset({"JP"}), "JP¥"),
    "SEK": ("kr", frozenset({"SE"}), "SEK"),
    "PLN": ("zł", frozenset({"PL"}), "PLN"),
    "TRY": ("₺", frozenset(), "₺"),
    "AED": ("د.إ", frozenset({"AE"}), "AED"),
}
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY"})


def marketplace_currency(marketplace: str | None) -> str | None:
    return _MARKETPLACE_CURRENCY.get(marketplace or "")


def format_date(iso: str, language: str, marketplace: str | None = None) -> str:
    """`2026-11-27` (or an ISO timestamp) as the buyer reads it; ValueError if it is not a date."""
    day = date.fromisoformat(iso.strip()[:10])
    pattern = _DATE_BY_LOCALE.get((language, marketplace or "")) or _DATE_BY_LANGUAGE.get(
        language, _DATE_BY_LANGUAGE["en"]
    )
    return pattern.format(d=day.day, m=day.month, y=day.year)


def _symbol(currency: str, marketplace: str | None) -> str:
    entry = _CURRENCY_SYMBOL.get(currency)
    if entry is None:
        return currency
    local, home, elsewhere = entry
    if not home or marketplace is None or marketplace in home:
        return local
    return elsewhere


def _group(digits: str, separator: str, min_grouping: int) -> str:
    if len(digits) < 4 + (min_grouping - 1):
        return digits
    groups: list[str] = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return separator.join(groups)


def format_money(amount: Decimal, currency: str, language: str, marketplace: str | None = None) -> str:
    """`Decimal("24.99")`, EUR, de -> `24,99 €`; JPY has no minor unit (¥1,980)."""
    style = _NUMBER_BY_LOCALE.get((language, marketplace or "")) or _NUMBER_BY_LANGUAGE.get(
        language, _NUMBER_BY_LANGUAGE["en"]
    )
    places = 0 if currency in _ZERO_DECIMAL_CURRENCIES else 2
    quantum = Decimal(1).scaleb(-places)
    value = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    integer, _, fraction = f"{abs(value):f}".partition(".")
    number = _group(integer, style.group, style.min_grouping)
    if fraction:
        number += style.decimal + fraction
    return sign + style.pattern.format(s=_symbol(currency, marketplace), n=number)
