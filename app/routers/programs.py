from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app import programs as service
from app.auth import AdminKey
from app.deps import SessionDep
from schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from schemas.programs import ProgramCreate, ProgramOut, ProgramPatch

router = APIRouter(prefix="/v1/programs", tags=["programs"])

ProgramIdPath = Annotated[int, Path(ge=1, le=2**62)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProgramOut)
async def create_program(body: ProgramCreate, session: SessionDep, _: AdminKey, response: Response) -> ProgramOut:
    """Create a program; rules left out take the defaults of a traditional program."""
    row = await service.create_program(session, body)
    response.headers["Location"] = f"/v1/programs/{row.id}"
    return service.program_out(row)


@router.get("", response_model=Page[ProgramOut])
async def list_programs(
    session: SessionDep,
    _: AdminKey,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ProgramOut]:
    rows, next_cursor = await service.list_programs(session, limit=limit, cursor=cursor)
    return Page[ProgramOut](items=[service.program_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/{program_id}", response_model=ProgramOut)
async def get_program(program_id: ProgramIdPath, session: SessionDep, _: AdminKey) -> ProgramOut:
    return service.program_out(await service.get_program(session, program_id))


@router.patch("/{program_id}", response_model=ProgramOut)
async def patch_program(program_id: ProgramIdPath, body: ProgramPatch, session: SessionDep, _: AdminKey) -> ProgramOut:
    """Change some fields; weights and rules are merged and validated whole. Rounds already
    triggered keep the settings they were triggered with."""
    return service.program_out(await service.patch_program(session, program_id, body))


@router.delete("/{program_id}", status_code=status.HTTP_204_NO_CONTENT, responses={409: {"description": "A round is queued or running"}})
async def delete_program(program_id: ProgramIdPath, session: SessionDep, _: AdminKey) -> Response:
    """Delete the program with its enrolments, rounds and pairings."""
    await service.delete_program(session, program_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
