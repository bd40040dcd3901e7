"""The LLM drafter: an OpenAI-compatible chat model, grounded in past answers and the template.

Buyer personal data is masked before the request and restored in the reply. Any failure (timeout,
HTTP error, unreadable answer, refusal) yields the fallback drafter's result with a note saying why,
so a message always gets a draft.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from engine.drafting.chat import ChatFailure, complete
from engine.drafting.default import DefaultDrafter, reply_language
from engine.drafting.pii import Masker, unknown_placeholders, unmask
from engine.drafting.prompts import PROMPT_VERSION, KnowledgeItem, PromptInput, build_messages
from engine.drafting.protocols import Drafter, DraftRequest, DraftResult
from engine.drafting.templates import TemplateSet, render, template_variables
from engine.errors import ConfigError
from engine.taxonomy import load_taxonomy

__all__ = ["LlmDrafter", "LlmFailure", "build_llm_drafter", "parse_reply"]

MAX_KNOWLEDGE = 5
MAX_EARLIER_MESSAGES = 6
MAX_TOKENS = 800
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


class LlmFailure(Exception):
    """Why an LLM answer could not be used; the text becomes the draft's note."""


def parse_reply(content: str | None, allowed_ids: set[int]) -> tuple[str, tuple[int, ...]]:
    """`{"reply": ..., "sources": [...]}` from a model's answer, tolerating code fences and chatter."""
    if not content or not content.strip():
        raise LlmFailure("empty answer")
    text = _FENCE.sub("", content.strip())
    data: Any = None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            try:
                data = json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                data = None
    if not isinstance(data, dict):
        raise LlmFailure("the answer was not the requested JSON")
    reply = data.get("reply")
    if not isinstance(reply, str) or not reply.strip():
        raise LlmFailure("the answer held no reply text")
    sources: list[int] = []
    raw_sources = data.get("sources")
    for raw in raw_sources if isinstance(raw_sources, list) else []:
        try:
            source = int(str(raw).strip().lstrip("#"))
        except ValueError:
            continue
        if source in allowed_ids and source not in sources:  # a model may cite ids it was not given
            sources.append(source)
    return reply.strip(), tuple(sources)


class LlmDrafter:
    """Drafts with a chat model; falls back to `fallback` whenever the model cannot be used."""

    name = "llm"

    def __init__(
        self,
        client: openai.OpenAI,
        model: str,
        templates: TemplateSet,
        fallback: Drafter,
        *,
        timeout: float = 30,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # The SDK's own retries are off: this class retries, so the note can say what happened.
        self.client = client.with_options(timeout=timeout, max_retries=0)
        self.model = model
        self.templates = templates
        self.fallback = fallback
        self.timeout = timeout
        self.max_retries = max_retries
        self._sleep = sleep
        self._template_chooser = DefaultDrafter(templates)

    def draft(self, request: DraftRequest) -> DraftResult:
        if request.intent == "no_response_needed":
            return self.fallback.draft(request)
        try:
            return self._draft_with_model(request)
        except LlmFailure as failure:
            result = self.fallback.draft(request)
            note = f"LLM failed: {failure}; used the {self.fallback.name} drafter"
            return dataclasses.replace(result, note=f"{note}. {result.note}" if result.note else note)

    def _draft_with_model(self, request: DraftRequest) -> DraftResult:
        language = reply_language(request)
        masker = Masker(
            {"buyer_name": request.buyer_name or ""},
            keep=[v for v in (request.order.order_id, request.order.tracking_number) if v],
        )
        template, _ = self._template_chooser.choose_template(request)
        knowledge = [
            KnowledgeItem(a.knowledge_id, masker.mask(a.question), masker.mask(a.answer))
            for a in sorted(request.retrieved, key=lambda a: a.score, reverse=True)[:MAX_KNOWLEDGE]
        ]
        prompt = PromptInput(
            language=language,
            intent_label=load_taxonomy().intent_labels.get(request.intent, request.intent),
            buyer_message=masker.mask(request.text),
            order=_order_facts(request),
            knowledge=knowledge,
            template=masker.mask(render(template, template_variables(request))),
            earlier_messages=[(d, masker.mask(t)) for d, t in request.thread[-MAX_EARLIER_MESSAGES:]],
            product_title=request.product_title,
        )
        content = self._complete(build_messages(prompt))
        reply, sources = parse_reply(content, {item.id for item in knowledge})
        invented = unknown_placeholders(reply, masker.mapping)
        if invented:
            raise LlmFailure(f"the reply holds placeholders it was not given ({', '.join(invented[:3])})")
        return DraftResult(
            text=unmask(reply, masker.mapping),
            action="reply",
            drafter=self.name,
            model=self.model,
            prompt_version=PROMPT_VERSION,
            template_id=template.id,
            source_ids=sources,
        )

    def _complete(self, messages: list[dict[str, str]]) -> str | None:
        try:
            return complete(
                self.client, model=self.model, messages=messages, temperature=0.2, max_tokens=MAX_TOKENS,
                max_retries=self.max_retries, sleep=self._sleep,
            )  # fmt: skip
        except ChatFailure as failure:
            raise LlmFailure(self._reason(failure)) from failure

    def _reason(self, failure: ChatFailure) -> str:
        reasons = {
            "timeout": f"timeout after {self.timeout:g} s",
            "unreachable": "the LLM server could not be reached",
            "status": f"HTTP {failure.status} from the LLM server",
            "client": f"the LLM client failed ({failure.client_error})",
            "no_choices": "the answer held no choices",
            "refused": "the model refused to answer",
            "filtered": "the answer was withheld by the server's content filter",
            "cut_off": "the answer was cut off (too long)",
        }
        reason = reasons[failure.kind]
        counted = failure.kind in ("timeout", "unreachable", "status")
        return f"{reason} ({failure.attempts} attempts)" if counted and failure.attempts > 1 else reason


def _order_facts(request: DraftRequest) -> dict[str, str | bool]:
    order = request.order
    facts: dict[str, str | bool] = {
        k: v for k, v in template_variables(request).items() if k not in ("buyer_name", "store_name")
    }
    if order.status:
        facts["status"] = order.status
    if order.fulfillment_channel:
        facts["fulfilled_by_amazon"] = order.fulfillment_channel == "AFN"
    if request.marketplace:
        facts["marketplace"] = request.marketplace
    return facts


def build_llm_drafter(
    api_key: str | None,
    base_url: str | None,
    model: str,
    templates: TemplateSet,
    fallback: Drafter,
    http_client: httpx.Client | None = None,
) -> LlmDrafter:
    """An `LlmDrafter` for OpenAI or any OpenAI-compatible server (`base_url`, e.g. a local one)."""
    if not model:
        raise ConfigError("No LLM model is set; set the LLM model name or use the default drafter.")
    if not api_key and not base_url:
        raise ConfigError(
            "No LLM API key is set; set the LLM API key, point the LLM base URL at a local server, "
            "or use the default drafter."
        )
    client = openai.OpenAI(
        api_key=api_key or "not-needed",  # local OpenAI-compatible servers accept any key
        base_url=base_url or None,
        # openai accepts an httpx.Client at run time; its annotation names the httpx2 fork only.
        http_client=http_client,  # type: ignore[arg-type]
        max_retries=0,
    )
    return LlmDrafter(client, model, templates, fallback)
