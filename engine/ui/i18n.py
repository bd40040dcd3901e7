"""Every string the app shows, in English and Simplified Chinese: `t("queue.title", "zh")`.

Keys are `<page>.<what>`; values may hold `{name}` fields, identical in both languages (a test checks).
A missing key shows the key itself rather than breaking a page; the tests make sure none is missing.
"""

from __future__ import annotations

import logging

from engine.ui.strings_team import TEAM_STRINGS
from engine.ui.strings_work import WORK_STRINGS

log = logging.getLogger(__name__)

UI_LANGUAGE_NAMES = {"en": "English", "zh": "简体中文"}

# Two tables, split by who uses the pages; a key lives in exactly one (a test checks).
_STRINGS: dict[str, tuple[str, str]] = {**WORK_STRINGS, **TEAM_STRINGS}


def has(key: str) -> bool:
    return key in _STRINGS


def all_keys() -> list[str]:
    return list(_STRINGS)


def raw(key: str) -> tuple[str, str]:
    return _STRINGS[key]


def t(key: str, lang: str = "en", **values: object) -> str:
    """The string for `key` in `lang` ("en", or "zh"/"zh-CN"), with `{fields}` filled from `values`."""
    pair = _STRINGS.get(key)
    if pair is None:
        log.warning("No interface string for %r", key)
        return key
    text = pair[1] if lang.lower().startswith("zh") else pair[0]
    return text.format(**values) if values else text
