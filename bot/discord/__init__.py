"""The Discord front end: turns gateway events into turns and turn events into messages."""
