"""The JSON API, one module per resource: ask and search, letters, Kamervragen, feedback, saved questions, health, admin.

Request bodies are msgspec Structs whose `Meta` constraints Litestar enforces (400 with the
field and the rule) and documents in the OpenAPI schema at /api/docs; what the resources' requests
share is in fields.py, the response shapes the CLI shares too in qa/schemas.py.
"""

from __future__ import annotations

from qa.server.api.admin import AdminController
from qa.server.api.ask import AskController
from qa.server.api.feedback import FeedbackController
from qa.server.api.health import HealthController
from qa.server.api.kamervragen import KamervragenController
from qa.server.api.letters import LetterController
from qa.server.api.watches import WatchController

CONTROLLERS = [AskController, LetterController, FeedbackController, KamervragenController, WatchController, HealthController]  # AdminController: behind the admin guard

__all__ = ["CONTROLLERS", "AdminController"]
