"""Backend- and Discord-independent logic: events, conversations, approvals."""
