"""mcpcord: a Discord bot that streams LLM answers and runs MCP tools behind approval buttons."""
