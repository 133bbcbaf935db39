"""openapi.yaml is the published contract: it must be exactly what the app serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.main import create_app
from app.openapi_doc import render_yaml
from app.settings import Settings

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.yaml"


def test_committed_openapi_matches_the_app() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    committed = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert committed == yaml.safe_load(render_yaml(app)), (
        "openapi.yaml is out of date: run `make openapi` and commit the result"
    )


def test_every_operation_documents_its_auth_and_errors() -> None:
    schema = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                assert operation.get("security"), f"{method.upper()} {path} documents no security"
