"""A loopback fake of Discord's REST v10 API and gateway for testing unmodified discord.py bots."""

from .fake import FakeDiscord
from .interactions import Interaction
from .wire import RecordedRequest

__all__ = ["FakeDiscord", "Interaction", "RecordedRequest"]
