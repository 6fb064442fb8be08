"""The OpenAPI schema and Swagger UI at /api/docs, served from the swagger-ui-bundle-v2 package (no CDN)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from qa.server.security import DOCS_PATH


class LocalSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI started by a static script (strict CSP)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema["info"]["title"]
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title} API</title>'
            '<link rel="stylesheet" href="/static/swagger/swagger-ui.css"><link rel="icon" href="/static/favicon.svg"></head>'
            f'<body><div id="swagger-ui" data-spec="{self.get_openapi_json_route(request)}"></div>'
            '<script src="/static/swagger/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script>'
            "</body></html>"
        ).encode()


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Kamerbrieven QA",
        version="0.1.0",
        description="Questions about Dutch parliamentary letters, answered with verbatim, cited quotes.",
        path=DOCS_PATH,  # the UI here, the schema at /api/docs/openapi.json
        render_plugins=[LocalSwaggerPlugin(path="/")],
    )


def swagger_files() -> Router:
    return create_static_files_router("/static/swagger", [swagger_ui_path], name="swagger", include_in_schema=False)
