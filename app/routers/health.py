from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.migrations import current_revision, head_revision

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None
    expected_revision: str | None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (no dependency checked)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and its schema is at the migrations' head."""
    expected = head_revision()
    try:
        async with request.app.state.engine.connect() as connection:
            revision = await current_revision(connection)
    except Exception:
        body = Readiness(status="unavailable", database="unreachable", schema_revision=None, expected_revision=expected)
        return JSONResponse(body.model_dump(), status_code=503)
    ready = revision == expected
    body = Readiness(
        status="ok" if ready else "unavailable",
        database="ok",
        schema_revision=revision,
        expected_revision=expected,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
