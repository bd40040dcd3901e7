"""Outbound replies: the outbox state machine and the SMTP sender."""
