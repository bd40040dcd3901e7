"""Language identification, intent classification, embeddings and the past-answer index."""
