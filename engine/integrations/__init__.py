"""Integrations with the seller's other systems (ERP, CRM): signed webhooks from an event outbox, an HTTP API
with bearer tokens, and a full JSON Lines export.

- `events`: `emit()` writes an event (and one delivery per subscribed endpoint) in the caller's transaction.
- `webhooks`: endpoints (add, edit, disable, rotate the secret, replay) and Standard Webhooks signatures.
- `delivery`: the worker's pass that POSTs due deliveries, outside any transaction, with back-off.
- `tokens`: API tokens, stored hashed, each acting as its own service agent.
- `export`: the streamed export; `api`: the Starlette application.
"""
