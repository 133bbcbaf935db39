"""The OpenAPI document: FastAPI's, plus the schemas FastAPI cannot see (batch items that are
validated one by one) and the bearer scheme. ``python -m app.openapi_doc`` writes openapi.yaml."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from schemas.common import Problem
from schemas.people import PersonBatchItem

# Models referenced by "$ref" in json_schema_extra, added to components by hand.
EXTRA_SCHEMAS: list[type[BaseModel]] = [PersonBatchItem]


def register_extra_schema(model: type[BaseModel]) -> None:
    if model not in EXTRA_SCHEMAS:
        EXTRA_SCHEMAS.append(model)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in EXTRA_SCHEMAS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, model_schema)
        components.setdefault("Problem", Problem.model_json_schema())
        _document_problems(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_PROBLEM_STATUSES = {
    "400": "Malformed JSON",
    "401": "Missing, unknown, revoked or expired API key",
    "403": "The key's role may not do this",
    "404": "Not found (also: another person's data for a participant token)",
    "409": "Conflict with the current state",
    "413": "Request body over the size cap",
    "422": "Invalid input",
    "503": "Database unavailable; retry",
}


def _document_problems(schema: dict[str, Any]) -> None:
    """Every error is problem+json; say so on every operation, once, here (FastAPI's default
    422 body describes its own error shape, which this service does not send)."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            statuses = ["422"]
            if path.startswith("/v1/"):
                statuses += ["401", "403", "503"]
                if "{" in path:
                    statuses.append("404")
                if method in ("post", "put", "patch", "delete"):
                    statuses.append("409")
            if "requestBody" in operation:
                statuses += ["400", "413"]
            for status in statuses:
                existing = responses.get(status, {})
                responses[status] = {
                    "description": existing.get("description") if status != "422" else _PROBLEM_STATUSES[status],
                    "content": copy.deepcopy(_PROBLEM_CONTENT),  # no YAML aliases
                }
                responses[status]["description"] = responses[status]["description"] or _PROBLEM_STATUSES[status]
            if not operation.get("parameters") and "requestBody" not in operation and not path.startswith("/v1/"):
                responses.pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def render_yaml(app: FastAPI) -> str:
    import yaml

    return yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True, width=120)


def main() -> None:
    from app.main import create_app
    from app.settings import Settings

    text = render_yaml(create_app(Settings()))
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "openapi.yaml"
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
