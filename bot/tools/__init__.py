"""Tools the model may call: MCP servers configured by the operator."""
