"""LLM backends: each turns a TurnRequest into the shared TurnEvent stream."""
