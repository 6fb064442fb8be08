"""The HTML pages: the chat, the search view, the letters, earlier Kamervragen and saved questions, one module each.

Everything renders on the server, so the pages work without JavaScript (qa/server/pages/chat.py says how the chat
does); the helpers they share render (rendering.py), filter (filters.py) and mark text (highlight.py).
"""

from __future__ import annotations

from qa.server.pages.chat import ChatController
from qa.server.pages.kamervragen import KamervragenPages
from qa.server.pages.letters import LetterPages
from qa.server.pages.rendering import template_config
from qa.server.pages.search import SearchPage
from qa.server.pages.watches import WatchPages

CONTROLLERS = [ChatController, SearchPage, LetterPages, KamervragenPages, WatchPages]

__all__ = ["CONTROLLERS", "template_config"]
