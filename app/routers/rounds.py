from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app import rounds as service
from app.auth import AdminKey
from app.db import session_scope
from app.deps import SessionDep
from app.routers.programs import ProgramIdPath
from schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from schemas.rounds import MatchOut, RoundCreate, RoundOut, UnmatchedOut

router = APIRouter(tags=["rounds"])

RoundIdPath = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]

CSV_PAGE = 1000
CSV_COLUMNS = (
    "match_id", "mentor_external_id", "mentor_display_name", "mentor_email", "mentor_department", "mentor_level",
    "mentor_time_zone", "mentee_external_id", "mentee_display_name", "mentee_email", "mentee_department",
    "mentee_level", "mentee_time_zone", "score", "overlap_hours", "pinned", "reasons",
)  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@router.post(
    "/v1/programs/{program_id}/rounds",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RoundOut,
    responses={
        409: {"description": "A round of this program is already queued or running"},
        422: {"description": "Invalid pins or blocks, or an Idempotency-Key reused with another body"},
    },
)
async def trigger_round(
    program_id: ProgramIdPath,
    session: SessionDep,
    _: AdminKey,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    body: RoundCreate | None = None,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> RoundOut:
    """Queue a matching round. The same Idempotency-Key with the same body answers the same
    round; a new round discards the program's unpublished draft."""
    row, _created = await service.trigger_round(session, program_id, body or RoundCreate(), idempotency_key)
    response.headers["Location"] = f"/v1/rounds/{row.id}"
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        background.add_task(runner.wake)  # runs after the response, i.e. after the commit
    return service.round_out(row)


@router.get("/v1/programs/{program_id}/rounds", response_model=Page[RoundOut])
async def list_rounds(
    program_id: ProgramIdPath, session: SessionDep, _: AdminKey, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[RoundOut]:
    """The program's rounds, newest first."""
    rows, next_cursor = await service.list_rounds(session, program_id, limit=limit, cursor=cursor)
    return Page[RoundOut](items=[service.round_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/v1/rounds/{round_id}", response_model=RoundOut)
async def get_round(round_id: RoundIdPath, session: SessionDep, _: AdminKey) -> RoundOut:
    return service.round_out(await service.get_round(session, round_id))


@router.get(
    "/v1/rounds/{round_id}/matches",
    response_model=Page[MatchOut],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "Matches; all of them as CSV with `Accept: text/csv`"}},
)
async def list_matches(
    round_id: RoundIdPath,
    session: SessionDep,
    _: AdminKey,
    request: Request,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Any:
    """The round's matches (a draft until published). With `Accept: text/csv`, every match as
    one CSV download for mail merges (pagination parameters are ignored)."""
    if "text/csv" in request.headers.get("accept", ""):
        await service.get_round(session, round_id)
        return StreamingResponse(
            _csv_rows(request, round_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="round-{round_id}-matches.csv"'},
        )
    items, next_cursor = await service.list_matches(session, round_id, limit=limit, cursor=cursor)
    return Page[MatchOut](items=items, next_cursor=next_cursor)


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


async def _csv_rows(request: Request, round_id: int) -> AsyncIterator[str]:
    # The request's session is closed once the handler returns; the stream reads with its own.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after: int | None = None
    while True:
        async with session_scope(request.app.state.sessionmaker, write=False) as session:
            rows = (await session.execute(service.matches_query(round_id, after, CSV_PAGE))).all()
        for match, mentor, mentee in rows:
            writer.writerow(
                [
                    csv_cell(value)
                    for value in (
                        match.id, mentor.external_id, mentor.display_name, mentor.email, mentor.department,
                        mentor.level, mentor.time_zone if mentor.erased_at is None else None,
                        mentee.external_id, mentee.display_name, mentee.email, mentee.department, mentee.level,
                        mentee.time_zone if mentee.erased_at is None else None,
                        round(match.score, 4), round(match.overlap_hours, 2), match.pinned, "; ".join(match.reasons),
                    )
                ]
            )  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < CSV_PAGE:
            return
        after = rows[-1][0].id


@router.get("/v1/rounds/{round_id}/unmatched", response_model=Page[UnmatchedOut])
async def list_unmatched(
    round_id: RoundIdPath, session: SessionDep, _: AdminKey, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[UnmatchedOut]:
    """People the round could not match, with the rules that left them out."""
    items, next_cursor = await service.list_unmatched(session, round_id, limit=limit, cursor=cursor)
    return Page[UnmatchedOut](items=items, next_cursor=next_cursor)


@router.post("/v1/rounds/{round_id}/publish", response_model=RoundOut, responses={409: {"description": "Not a completed round"}})
async def publish_round(round_id: RoundIdPath, session: SessionDep, _: AdminKey) -> RoundOut:
    """Publish a completed round: its matches become active pairings, visible to integrations."""
    return service.round_out(await service.publish_round(session, round_id))


@router.post("/v1/rounds/{round_id}/discard", response_model=RoundOut, responses={409: {"description": "Already published, failed or discarded"}})
async def discard_round(round_id: RoundIdPath, session: SessionDep, _: AdminKey) -> RoundOut:
    """Drop a queued, running or completed round; a running round's results are never stored."""
    return service.round_out(await service.discard_round(session, round_id))
