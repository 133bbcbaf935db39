from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AwareDatetime

from app import people as service
from app.auth import PeopleReader, PeopleWriter
from app.deps import SessionDep
from schemas.common import DEFAULT_PAGE_SIZE, EXTERNAL_ID_PATTERN, MAX_PAGE_SIZE, Page
from schemas.people import PeopleBatch, PeopleBatchResult, PersonOut, PersonPatch, PersonPut

router = APIRouter(prefix="/v1/people", tags=["people"])

ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN, max_length=255)]


@router.put(
    "/{external_id}",
    response_model=PersonOut,
    responses={201: {"model": PersonOut, "description": "Created"}, 409: {"description": "Erased person"}},
)
async def put_person(
    external_id: ExternalIdPath, body: PersonPut, session: SessionDep, _: PeopleWriter, response: Response
) -> PersonOut:
    """Create or replace a profile (200 on update or no change, 201 on create)."""
    row, created = await service.put_person(session, external_id, body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return service.person_out(row)


@router.post("/batch", response_model=PeopleBatchResult)
async def batch_upsert(body: PeopleBatch, session: SessionDep, _: PeopleWriter) -> PeopleBatchResult:
    """Upsert up to 1,000 profiles; each item gets its own result and one bad item spoils none."""
    outcome = await service.upsert_people(session, body.people)
    return PeopleBatchResult.of(outcome.results)


@router.get("", response_model=Page[PersonOut])
async def list_people(
    session: SessionDep,
    _: PeopleReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    department: Annotated[str | None, Query(max_length=200)] = None,
    active: bool | None = None,
    updated_since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with a UTC offset")] = None,
) -> Page[PersonOut]:
    rows, next_cursor = await service.list_people(
        session, limit=limit, cursor=cursor, department=department, active=active, updated_since=updated_since
    )
    return Page[PersonOut](items=[service.person_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/{external_id}", response_model=PersonOut)
async def get_person(external_id: ExternalIdPath, session: SessionDep, _: PeopleReader) -> PersonOut:
    return service.person_out(await service.get_live_person(session, external_id))


@router.patch("/{external_id}", response_model=PersonOut)
async def patch_person(
    external_id: ExternalIdPath, body: PersonPatch, session: SessionDep, _: PeopleWriter
) -> PersonOut:
    """Change some fields; the resulting profile is validated as a whole."""
    row = await service.patch_person(session, external_id, body.model_dump(exclude_unset=True, mode="json"))
    return service.person_out(row)


@router.delete("/{external_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_person(external_id: ExternalIdPath, session: SessionDep, _: PeopleWriter) -> Response:
    """Erase the person's personal data and remove them from future matching."""
    await service.erase_person(session, external_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
