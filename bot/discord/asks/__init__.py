"""What the bot asks a person with buttons and forms: tool approvals and servers' questions.

Imports bot.core, discord and the wing's door (bot.discord.*); never the commands wing.
"""
