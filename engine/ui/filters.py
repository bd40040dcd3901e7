"""Filter widgets that several pages share."""

from __future__ import annotations

from streamlit.delta_generator import DeltaGenerator

from engine.taxonomy import INTENTS, LANGUAGES
from engine.ui.state import tr

ALL = ""  # the option that means "no filter"


def intent_and_language(
    intent_column: DeltaGenerator, language_column: DeltaGenerator, *, key_prefix: str
) -> tuple[str | None, str | None]:
    """An intent and a language select box, each starting at "All"; None for a filter left at "All".
    Their keys are `{key_prefix}_intent` and `{key_prefix}_language`."""
    intent = intent_column.selectbox(
        tr("queue.intent"),
        [ALL, *INTENTS],
        key=f"{key_prefix}_intent",
        format_func=lambda i: tr(f"intent.{i}") if i else tr("common.all"),
    )
    language = language_column.selectbox(
        tr("queue.language"),
        [ALL, *LANGUAGES],
        key=f"{key_prefix}_language",
        format_func=lambda code: code or tr("common.all"),
    )
    return intent or None, language or None
