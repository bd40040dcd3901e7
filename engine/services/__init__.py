"""What the pages, the CLI and the workers call. Every function takes a `Session`; the caller owns
the transaction (one per user action, one per sync batch)."""
