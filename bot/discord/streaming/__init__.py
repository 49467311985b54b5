"""Streaming a turn into Discord: rendering, splitting, the write budget and its retries.

Imports bot.core and discord only; never the commands or asks wings, nor the client.
"""
