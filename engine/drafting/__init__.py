"""Templates, the default (offline) drafter, the LLM drafter and buyer-data masking."""
