"""Small builders shared by the service tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.orm import Session

from engine.db.models import Agent
from engine.services.agents import authenticated_agent, stored_password_hash, verify_password

DEMO_DIR_NAME = "demo"


def relay_mail(
    *,
    body: str = "Where is my parcel? It has not arrived yet.",
    order_id: str | None = "302-1234567-7654321",
    alias: str = "k8w2m4xq7tz1r3v@marketplace.amazon.de",
    name: str = "Jonas",
    message_id: str | None = "<test-1@amazonses.example>",
    sent: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    subject: str | None = None,
) -> bytes:
    """A buyer message in Amazon's older relay layout."""
    mail = EmailMessage()
    mail["From"] = f'"{name} - Amazon Marketplace" <{alias}>'
    mail["Reply-To"] = alias
    mail["To"] = "service@northwind-gear.example"
    order_part = f" (Order: {order_id})" if order_id else ""
    mail["Subject"] = subject or f"Order delivery inquiry from Amazon customer {name}{order_part}"
    mail["Date"] = format_datetime(sent)
    if message_id:
        mail["Message-ID"] = message_id
    order_line = f"Order ID {order_id}:\n1 of Headlamp 800 lm [ASIN: B0B7P3Q8RW]\n\n" if order_id else ""
    mail.set_content(
        f"{order_line}------------- Begin message -------------\n\n{body}\n\n"
        "------------- End message -------------\n\nFor your information, ... [commMgrTok:]\n"
    )
    return bytes(mail)


def authenticate(session: Session, username: str, password: str) -> Agent:
    """The three steps of a local sign-in in one session (the app verifies between two transactions)."""
    stored = stored_password_hash(session, username)
    verify_password(stored, password)
    assert stored is not None
    return authenticated_agent(session, username, stored)
