"""The slash commands (/reset, /tools, /model, /status, /system, /prompt) and their error handler.

Imports bot.core, discord and the wing's door (bot.discord.*); the client imports them, never the reverse.
"""
