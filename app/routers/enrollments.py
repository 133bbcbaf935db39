from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from app import enrollments as service
from app.auth import AdminKey
from app.deps import SessionDep
from app.openapi_doc import register_extra_schema
from app.programs import get_program
from app.routers.programs import ProgramIdPath
from schemas.common import DEFAULT_PAGE_SIZE, EXTERNAL_ID_PATTERN, MAX_PAGE_SIZE, Page
from schemas.programs import (
    EnrollmentBatch,
    EnrollmentBatchItem,
    EnrollmentBatchResult,
    EnrollmentOut,
    EnrollmentPut,
)

router = APIRouter(prefix="/v1/programs/{program_id}/enrollments", tags=["enrollments"])

register_extra_schema(EnrollmentBatchItem)  # batch items are validated one by one

ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN, max_length=255)]


@router.put(
    "/{external_id}",
    response_model=EnrollmentOut,
    responses={
        201: {"model": EnrollmentOut, "description": "Enrolled"},
        422: {"description": "Invalid enrolment, or the person is unknown or erased"},
    },
)
async def put_enrollment(
    program_id: ProgramIdPath,
    external_id: ExternalIdPath,
    body: EnrollmentPut,
    session: SessionDep,
    _: AdminKey,
    response: Response,
) -> EnrollmentOut:
    """Enrol a person, or replace their enrolment (201 on create, 200 otherwise). The person
    must have been pushed through the people API and not erased (422 otherwise)."""
    out, created = await service.put_enrollment(session, program_id, external_id, body.model_dump())
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.post("/batch", response_model=EnrollmentBatchResult)
async def batch_enroll(
    program_id: ProgramIdPath, body: EnrollmentBatch, session: SessionDep, _: AdminKey
) -> EnrollmentBatchResult:
    """Enrol up to 1,000 people; each item gets its own result and one bad item spoils none."""
    await get_program(session, program_id)
    return EnrollmentBatchResult.of(await service.upsert_enrollments(session, program_id, body.enrollments))


@router.get("", response_model=Page[EnrollmentOut])
async def list_enrollments(
    program_id: ProgramIdPath,
    session: SessionDep,
    _: AdminKey,
    role: Literal["mentor", "mentee", "both"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[EnrollmentOut]:
    items, next_cursor = await service.list_enrollments(session, program_id, limit=limit, cursor=cursor, role=role)
    return Page[EnrollmentOut](items=items, next_cursor=next_cursor)


@router.get("/{external_id}", response_model=EnrollmentOut)
async def get_enrollment(
    program_id: ProgramIdPath, external_id: ExternalIdPath, session: SessionDep, _: AdminKey
) -> EnrollmentOut:
    await get_program(session, program_id)
    return await service.get_enrollment(session, program_id, external_id)


@router.delete("/{external_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_enrollment(
    program_id: ProgramIdPath, external_id: ExternalIdPath, session: SessionDep, _: AdminKey
) -> Response:
    """Take the person out of future rounds; published pairings stay."""
    await service.delete_enrollment(session, program_id, external_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
