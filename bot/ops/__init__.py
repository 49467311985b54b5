"""What an operator runs beside the bot: check, health, reload, the terminal chat, config docs.

May import every floor below bot.app; bot.app imports only what it needs (reload, live, health).
"""
