"""The web service: a Litestar app around one shared `Engine`.

Imports go one way: `app` (the factory) → `api`, `pages` (controllers) → `service`, `reloader`,
`security`, `errors`, `openapi` → `settings` → the core (`qa.answer.engine`, `qa.bootstrap`, ...).
`serve` runs the app under uvicorn, in one process or several. Nothing in the core imports this package.
"""
