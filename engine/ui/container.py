"""The services the app builds once per process (`st.cache_resource`) and every page uses.

Holds the settings, the database and, built lazily on first need, the NLP components (the compliance
gate's language check, the drafter for "regenerate"): loading models on every rerun would be far too slow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from engine.compliance import Verdict
from engine.components import Components, build_components, read_knowledge
from engine.db import Database
from engine.drafting.translate import Translator, build_translator
from engine.settings import Settings

T = TypeVar("T")


class AppServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self._components: Components | None = None
        self._lock = threading.Lock()
        # One per process, so its cache serves every rerun and every agent; None without an LLM.
        self.translator: Translator | None = build_translator(settings)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One per user action: commits on success, rolls back on any error."""
        with self.db.transaction() as session:
            yield session

    def run(self, action: Callable[[Session], T]) -> T:
        with self.transaction() as session:
            return action(session)

    def components(self) -> Components:
        with self._lock:
            if self._components is None:
                with self.db.read() as session:
                    knowledge = read_knowledge(session, self.settings.knowledge_dir)
                self._components = build_components(self.settings, knowledge)
            return self._components

    def reload_components(self) -> None:
        """After templates, past answers or the intent model change: rebuilt on next use."""
        with self._lock:
            self._components = None

    def check(self, text: str, buyer_language: str | None, allow_list: list[str] | None = None) -> Verdict:
        """The compliance gate exactly as the send path runs it (with reply-language detection)."""
        return self.components().check(text, buyer_language=buyer_language, allow_list=allow_list or [])


@st.cache_resource(show_spinner=False)
def _services(key: str) -> AppServices:
    del key  # only part of the cache key: a different database or data folder gets its own services
    return AppServices(Settings.from_env())


def app_services() -> AppServices:
    settings = Settings.from_env()
    return _services(f"{settings.resolved_database_url}|{settings.data_dir}|{settings.nlp_backend}")
