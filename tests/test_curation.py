"""Knowledge-base curation: search, promotion with buyer details removed, near-duplicates, edit and retire,
templates with a live preview and the gate, intent example review (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from engine.compliance import Verdict, check_reply
from engine.db.models import (
    Agent,
    Conversation,
    Draft,
    DraftStatus,
    IntentExample,
    KnowledgeItem,
    Message,
    Store,
    TemplateRow,
)
from engine.errors import ConflictError, InputError, PermissionDenied, TemplateError
from engine.services import curation
from engine.workflow.permissions import Principal, Role

AGENT = Principal(agent_id=1, role=Role.AGENT, store_ids=frozenset())


@pytest.fixture
def lead(session: Session) -> Principal:
    agent = Agent(username="curation-lead", display_name="Lead", role=Role.LEAD)
    session.add(agent)
    session.flush()
    return Principal(agent_id=agent.id, role=Role.LEAD, store_ids=frozenset())


@pytest.fixture
def sent_draft(session: Session) -> Draft:
    store = Store(name="Curation store", marketplaces=["DE"], allow_list=[])
    session.add(store)
    session.flush()
    conversation = Conversation(
        store_id=store.id,
        thread_key="t1",
        marketplace="DE",
        buyer_address="b@x.example",
        buyer_name="Anna Schmidt",
        order_id="302-1234567-7654321",
        language="de",
    )
    session.add(conversation)
    session.flush()
    message = Message(
        store_id=store.id,
        conversation_id=conversation.id,
        kind="buyer_message",
        dedupe_key="m1",
        body="Hallo, ich bin Anna Schmidt, wo ist Bestellung 302-1234567-7654321? Tel 0171 2345678",
        received_at=datetime(2024, 6, 1, tzinfo=UTC),
    )
    session.add(message)
    session.flush()
    draft = Draft(
        conversation_id=conversation.id,
        message_id=message.id,
        status=DraftStatus.SENT,
        text="x",
        final_text="Hallo Anna Schmidt,\nIhre Bestellung 302-1234567-7654321 ist unterwegs.\nGruß",
        intent="order_status",
        language="de",
        drafter="default",
        verdict={},
        allowed=True,
        decided_at=datetime(2024, 6, 1, 12, tzinfo=UTC),
    )
    session.add(draft)
    session.flush()
    return draft


@pytest.mark.parametrize(
    ("text", "name", "order", "expected"),
    [
        ("Hallo Anna Schmidt, danke!", "Anna Schmidt", None, "Hallo, danke!"),
        (
            "Dear Anna, order 302-1234567-7654321 shipped.",
            "Anna Schmidt",
            "302-1234567-7654321",
            "Dear, order shipped.",
        ),
        ("Write to anna@example.com or call +49 171 2345678.", None, None, "Write to or call."),
        ("Nothing personal here.", "Anna", None, "Nothing personal here."),
    ],
)
def test_scrub_buyer_details(text: str, name: str | None, order: str | None, expected: str) -> None:
    assert curation.scrub_buyer_details(text, buyer_name=name, order_id=order) == expected


def test_promote_removes_buyer_details_and_refuses_duplicates(
    session: Session, lead: Principal, sent_draft: Draft
) -> None:
    assert [c.draft_id for c in curation.promotion_candidates(session, lead)][:1] == [sent_draft.id]
    item = curation.promote_reply(session, lead, sent_draft.id)
    assert (item.intent, item.language, item.source) == ("order_status", "de", "promoted")
    for secret in ("Anna", "Schmidt", "302-1234567-7654321", "0171"):
        assert secret not in item.answer and secret not in item.question
    assert "Ihre Bestellung ist unterwegs." in item.answer
    assert sent_draft.id not in [c.draft_id for c in curation.promotion_candidates(session, lead)]
    with pytest.raises(ConflictError, match="near-identical"):
        curation.promote_reply(session, lead, sent_draft.id)
    again = curation.promote_reply(session, lead, sent_draft.id, allow_duplicate=True)
    assert again.id != item.id


def test_near_duplicates_by_similarity(session: Session, lead: Principal) -> None:
    base = curation.add_item(
        session,
        lead,
        question="Q",
        answer="Your parcel is on its way and arrives soon.",
        intent="warranty",
        language="it",
    )
    assert [
        v.id
        for v, _ in curation.near_duplicates(
            session, "Your parcel is on its way and arrives soon!", intent="warranty", language="it"
        )
    ] == [base.id]
    assert curation.near_duplicates(session, "Completely different words here.", intent="warranty", language="it") == []
    assert curation.near_duplicates(session, base.answer, intent="warranty", language="fr") == []


def test_search_edit_retire_restore(session: Session, lead: Principal) -> None:
    item = curation.add_item(
        session,
        lead,
        question="Zebra stripes?",
        answer="Unique zebra answer.",
        intent="product_question",
        language="en",
    )
    assert [v.id for v in curation.search_knowledge(session, lead, text="ZEBRA")] == [item.id]
    edited = curation.update_item(
        session,
        lead,
        item.id,
        question="Zebra stripes?",
        answer="Edited zebra answer.",
        intent="product_question",
        language="en",
    )
    assert edited.answer == "Edited zebra answer."
    curation.set_item_active(session, lead, item.id, False)
    assert curation.search_knowledge(session, lead, text="zebra") == []
    assert [v.id for v in curation.search_knowledge(session, lead, text="zebra", include_retired=True)] == [item.id]
    assert session.get_one(KnowledgeItem, item.id).active is False
    curation.set_item_active(session, lead, item.id, True)
    assert [v.id for v in curation.search_knowledge(session, lead, text="zebra")] == [item.id]
    with pytest.raises(InputError, match="Unknown intent"):
        curation.update_item(session, lead, item.id, question="q", answer="a", intent="nope", language="en")


def test_agents_may_not_curate(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        curation.search_knowledge(session, AGENT)
    with pytest.raises(PermissionDenied):
        curation.list_templates(session, AGENT)


def test_template_preview_renders_sample_data_and_runs_the_gate() -> None:
    body = "Hallo {{buyer_name}},\nIhre Bestellung {{order_id}} kommt am {{delivery_date}}.\n{{answer}}"
    preview = curation.preview_template(
        body, key="order_status.de", intent="order_status", language="de", check=check_reply_for, answer="Danke."
    )
    assert preview.error is None and preview.text is not None and preview.verdict is not None
    assert "Alex Sample" in preview.text and "302-1234567-1234567" in preview.text and "{{" not in preview.text
    assert preview.verdict.allowed
    blocked = curation.preview_template(
        body + "\nMail: shop@example.com",
        key="order_status.de",
        intent="order_status",
        language="de",
        check=check_reply_for,
    )
    assert blocked.verdict is not None and [v.rule for v in blocked.verdict.blocking] == ["email"]
    broken = curation.preview_template(
        "Hallo {{nonsense}}", key="order_status.de", intent="order_status", language="de", check=check_reply_for
    )
    assert broken.text is None and broken.error is not None and "unknown variable" in broken.error


def check_reply_for(text: str, language: str | None) -> Verdict:
    return check_reply(text, buyer_language=language)


def test_save_template_validates(session: Session, lead: Principal) -> None:
    row = TemplateRow(key="warranty.it.test", intent="warranty", language="it", name="t", body="Ciao", required=[])
    session.add(row)
    session.flush()
    saved = curation.save_template(session, lead, row.id, body="Ciao {{buyer_name}}", name="New", active=True)
    assert (saved.body, saved.name) == ("Ciao {{buyer_name}}", "New")
    with pytest.raises(TemplateError):
        curation.save_template(session, lead, row.id, body="Ciao {{#buyer_name}}", name="x", active=True)
    assert session.get_one(TemplateRow, row.id).body == "Ciao {{buyer_name}}"


def test_review_and_add_intent_examples(session: Session, lead: Principal) -> None:
    example = IntentExample(
        text="Wo ist mein Paket?", intent="other", language="de", source="correction", status="pending"
    )
    session.add(example)
    session.flush()
    assert example.id in [e.id for e in curation.list_examples(session, lead)]
    reviewed = curation.review_example(session, lead, example.id, accept=True, intent="order_status")
    assert (reviewed.status, reviewed.intent) == ("accepted", "order_status")
    assert example.id not in [e.id for e in curation.list_examples(session, lead)]
    added = curation.add_example(session, lead, text="Rechnung bitte", intent="invoice_vat", language="de")
    assert added.status == "accepted"
    with pytest.raises(InputError):
        curation.add_example(session, lead, text="x", intent="bogus", language="de")
