"""Points an unmodified discord.py at the fake when FAKE_DISCORD_URL is set (put this dir on PYTHONPATH)."""

import os

_url = os.environ.get("FAKE_DISCORD_URL")
if _url:
    try:
        import discord.gateway
        import discord.http
        import yarl
    except ImportError:  # a process without discord.py (e.g. a helper tool) must still start
        pass
    else:
        _url = _url.rstrip("/")
        discord.http.Route.BASE = _url + "/api/v10"
        _ws = "ws://" + _url.split("://", 1)[1] if _url.startswith("http://") else _url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_ws + "/gateway")
