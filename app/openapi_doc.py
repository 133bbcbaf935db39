"""The OpenAPI document: FastAPI's, plus the schemas FastAPI cannot see (batch items that are
validated one by one) and the bearer scheme. ``python -m app.openapi_doc`` writes openapi.yaml."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
