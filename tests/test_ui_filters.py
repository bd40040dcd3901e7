"""The shared intent/language filter pair, run on its own under AppTest."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from engine.taxonomy import INTENTS, LANGUAGES


def filter_script() -> None:
    import streamlit as st

    from engine.ui import filters

    left, right = st.columns(2)
    st.session_state["chosen"] = filters.intent_and_language(left, right, key_prefix="f")


def test_both_filters_start_at_all_and_mean_no_filter() -> None:
    at = AppTest.from_function(filter_script).run()
    assert not at.exception, at.exception
    intent, language = at.selectbox(key="f_intent"), at.selectbox(key="f_language")
    assert (intent.label, language.label) == ("Intent", "Language")
    assert intent.options[0] == "All" and len(intent.options) == len(INTENTS) + 1
    assert language.options == ["All", *LANGUAGES]
    assert at.session_state["chosen"] == (None, None)


def test_a_chosen_intent_and_language_are_returned_as_keys() -> None:
    at = AppTest.from_function(filter_script).run()
    at.selectbox(key="f_intent").select("order_status")
    at.selectbox(key="f_language").select("de").run()
    assert at.session_state["chosen"] == ("order_status", "de")
    assert at.selectbox(key="f_intent").options[INTENTS.index("order_status") + 1] == "Where is my order"


def test_labels_follow_the_interface_language() -> None:
    at = AppTest.from_function(filter_script)
    at.session_state["ui_language"] = "zh"
    at.run()
    assert at.selectbox(key="f_intent").options[0] == "全部"
    assert at.selectbox(key="f_language").label == "语言"
