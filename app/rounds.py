"""Matching rounds, end to end: queue (trigger), claim, store results, publish, discard.

A round is a durable row: ``queued → running → completed | failed``, then ``published`` or
``discarded``. Requests only ever queue, read, publish or discard; runners (``app/runner.py``)
claim, solve and store. Every runner write is fenced on ``(id, lease_token, status='running')``
so a runner that lost its lease (crashed, paused, partitioned) can never store a result after
another runner re-claimed the round.

Services flush and never commit: the request's session, or the runner's ``session_scope``,
commits. Round events (``round.completed`` …) are handed to registered hooks inside the same
transaction as the status change, so a hook writing an outbox row commits or rolls back with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import matching
import matching.problem as mp
from app.errors import PROBLEM_TYPE_BASE, Conflict, InvalidInput, NotFound
from app.models import Pairing, Person, Round, RoundMatch, RoundUnmatched
from app.models.base import UTCDateTime, utcnow
from app.models.rounds import ACTIVE_ROUND_STATUSES
from app.pagination import decode_cursor, encode_cursor
from app.problem_builder import BuiltProblem, build_problem, program_snapshot
from app.programs import get_program
from schemas.rounds import MatchOut, PersonSummary, RoundCreate, RoundOut, UnmatchedOut

STORE_CHUNK = 1000

# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class RoundEvent:
    type: str  # round.completed | round.failed | round.published | round.discarded
    round_id: int
    program_id: int


RoundEventHook = Callable[[AsyncSession, RoundEvent], Awaitable[None]]
_event_hooks: list[RoundEventHook] = []


def add_round_event_hook(hook: RoundEventHook) -> None:
    """Register a hook called with the writing session on every round event (e.g. webhooks)."""
    if hook not in _event_hooks:
        _event_hooks.append(hook)


def remove_round_event_hook(hook: RoundEventHook) -> None:
    if hook in _event_hooks:
        _event_hooks.remove(hook)


async def emit(session: AsyncSession, event_type: str, round_id: int, program_id: int) -> None:
    event = RoundEvent(event_type, round_id, program_id)
    for hook in list(_event_hooks):
        await hook(session, event)


def problem_details(code: str, title: str, status: int, detail: str) -> dict[str, Any]:
    """A problem+json object, as stored in a failed round's ``error``."""
    return {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status, "detail": detail}


# ---------------------------------------------------------------------------------------------
# Reading


def round_out(row: Round) -> RoundOut:
    return RoundOut(
        id=row.id,  # type: ignore[arg-type]
        program_id=row.program_id,
        status=row.status,  # type: ignore[arg-type]
        round_date=row.round_date,
        program=row.program_snapshot,  # type: ignore[arg-type]
        pins=[{"mentor": m, "mentee": e} for m, e in row.pins],  # type: ignore[misc]
        blocks=[{"mentor": m, "mentee": e} for m, e in row.blocks],  # type: ignore[misc]
        stats=row.stats,  # type: ignore[arg-type]
        solver=row.solver,  # type: ignore[arg-type]
        timings=row.timings,
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        published_at=row.published_at,
        discarded_at=row.discarded_at,
    )


async def get_round(session: AsyncSession, round_id: int) -> Round:
    row = await session.get(Round, round_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No round {round_id}.")
    return row


async def list_rounds(
    session: AsyncSession, program_id: int, *, limit: int, cursor: str | None
) -> tuple[list[Round], str | None]:
    """Newest first."""
    await get_program(session, program_id)
    before = decode_cursor(cursor)
    query = select(Round).where(Round.program_id == program_id).order_by(Round.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Round.id < before)
    rows = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None  # type: ignore[arg-type]
    return rows[:limit], next_cursor


def person_summary(person: Person) -> PersonSummary:
    erased = person.erased_at is not None
    return PersonSummary(
        external_id=person.external_id,
        display_name=person.display_name,
        department=None if erased else person.department,
        level=person.level,
        time_zone=None if erased else person.time_zone,
    )


def match_out(match: RoundMatch, mentor: Person, mentee: Person) -> MatchOut:
    return MatchOut(
        id=match.id,  # type: ignore[arg-type]
        mentor=person_summary(mentor),
        mentee=person_summary(mentee),
        score=match.score,
        components=match.components,
        reasons=match.reasons,
        overlap_hours=match.overlap_hours,
        pinned=match.pinned,
    )


def matches_query(round_id: int, after: int | None, limit: int):  # type: ignore[no-untyped-def]
    mentor, mentee = aliased(Person), aliased(Person)
    query = (
        select(RoundMatch, mentor, mentee)
        .join(mentor, mentor.id == RoundMatch.mentor_person_id)
        .join(mentee, mentee.id == RoundMatch.mentee_person_id)
        .where(RoundMatch.round_id == round_id)
        .order_by(RoundMatch.id)
        .limit(limit)
    )
    return query.where(RoundMatch.id > after) if after is not None else query


async def list_matches(
    session: AsyncSession, round_id: int, *, limit: int, cursor: str | None
) -> tuple[list[MatchOut], str | None]:
    await get_round(session, round_id)
    rows = (await session.execute(matches_query(round_id, decode_cursor(cursor), limit + 1))).all()
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return [match_out(*row) for row in rows[:limit]], next_cursor


async def list_unmatched(
    session: AsyncSession, round_id: int, *, limit: int, cursor: str | None
) -> tuple[list[UnmatchedOut], str | None]:
    await get_round(session, round_id)
    after = decode_cursor(cursor)
    query = (
        select(RoundUnmatched, Person.external_id)
        .join(Person, Person.id == RoundUnmatched.person_id)
        .where(RoundUnmatched.round_id == round_id)
        .order_by(RoundUnmatched.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(RoundUnmatched.id > after)
    rows = (await session.execute(query)).all()
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    items = [
        UnmatchedOut(external_id=ext, role=row.role, reasons=row.reasons, rule_counts=row.rule_counts)
        for row, ext in rows[:limit]
    ]
    return items, next_cursor


# ---------------------------------------------------------------------------------------------
# Triggering


def request_hash(program_id: int, body: RoundCreate) -> str:
    canonical = json.dumps(
        {"program_id": program_id, **body.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _by_idempotency_key(session: AsyncSession, program_id: int, key: str) -> Round | None:
    query = select(Round).where(Round.program_id == program_id, Round.idempotency_key == key)
    return (await session.execute(query)).scalar_one_or_none()


async def _active_round_id(session: AsyncSession, program_id: int) -> int | None:
    query = select(Round.id).where(Round.program_id == program_id, Round.status.in_(ACTIVE_ROUND_STATUSES))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


def _replay(existing: Round, digest: str) -> Round:
    if existing.request_hash != digest:
        raise InvalidInput(
            f"This Idempotency-Key was used for round {existing.id} with a different request body.",
            round_id=existing.id,
        )
    return existing


def _busy(round_id: int) -> Conflict:
    return Conflict(
        f"Round {round_id} of this program is queued or running; wait for it or discard it.",
        round_id=round_id,
        round_url=f"/v1/rounds/{round_id}",
    )


async def validate_pins_and_blocks(
    session: AsyncSession, program_id: int, snapshot: dict[str, Any], body: RoundCreate, round_date: Any
) -> None:
    """Pins and blocks must name enrolled people; a pin must also be a pair the program's hard
    rules allow (``matching.pair_violations``) within its mentor's capacity."""
    pins = [(p.mentor, p.mentee) for p in body.pins]
    blocks = [(b.mentor, b.mentee) for b in body.blocks]
    named = {pid for pair in (*pins, *blocks) for pid in pair}
    if not named:
        return
    built = await build_problem(
        session, program_id=program_id, snapshot=snapshot, round_date=round_date, pins=pins, blocks=blocks, only=named
    )
    enrolled = set(built.person_ids) | set(built.left_out)
    missing = sorted(named - enrolled)
    if missing:
        raise InvalidInput(f"Pins and blocks must name enrolled people; not enrolled: {', '.join(missing[:20])}.")
    if not pins:
        return
    roles = {e.person_id: e for e in built.problem.enrollments}
    peer = built.problem.program.relationship == "peer"
    errors: list[str] = []
    for mentor_id, mentee_id in pins:
        for pid, side in ((mentor_id, "mentor"), (mentee_id, "mentee")):
            if pid in built.left_out:
                errors.append(f"{pid} {built.left_out[pid]}")
            elif not peer and roles[pid].role not in (side, "both"):
                errors.append(f"{pid} is enrolled as {roles[pid].role}, not as {side}")
    if errors:
        raise InvalidInput("Pins name people who cannot take part: " + "; ".join(sorted(set(errors))[:20]) + ".")
    broken: list[dict[str, Any]] = []
    for mentor_id, mentee_id in pins:
        labels = matching.pair_violations(built.problem, mentor_id, mentee_id)
        if labels:
            broken.append({"mentor": mentor_id, "mentee": mentee_id, "rules": sorted(labels)})
    per_mentor: dict[str, int] = {}
    for mentor_id, _ in pins:
        per_mentor[mentor_id] = per_mentor.get(mentor_id, 0) + 1
    for mentor_id, count in sorted(per_mentor.items()):
        capacity = 1 if peer else (roles[mentor_id].capacity or 0)
        if count > capacity:
            broken.append({"mentor": mentor_id, "mentee": None, "rules": [mp.RULE_CAPACITY]})
    if broken:
        summary = "; ".join(
            f"{b['mentor']} → {b['mentee']}: {', '.join(b['rules'])}" if b["mentee"] else f"{b['mentor']}: capacity"
            for b in broken[:20]
        )
        raise InvalidInput(f"Pins break hard rules of the program: {summary}.", pins=broken)


async def _earlier_answer(
    session: AsyncSession, program_id: int, idempotency_key: str | None, digest: str
) -> Round | None:
    """The round this request already created (same Idempotency-Key), or 409 when another
    round is queued or running; None when a new round may be queued."""
    if idempotency_key is not None:
        existing = await _by_idempotency_key(session, program_id, idempotency_key)
        if existing is not None:
            return _replay(existing, digest)
    active = await _active_round_id(session, program_id)
    if active is not None:
        raise _busy(active)
    return None


async def trigger_round(
    session: AsyncSession, program_id: int, body: RoundCreate, idempotency_key: str | None
) -> tuple[Round, bool]:
    """Queue a round. Returns ``(round, created)``; ``created`` is False for an idempotent replay."""
    program = await get_program(session, program_id, for_update=True)  # serialises triggers on PostgreSQL
    digest = request_hash(program_id, body)
    earlier = await _earlier_answer(session, program_id, idempotency_key, digest)
    if earlier is not None:
        return earlier, False

    snapshot = program_snapshot(program)
    round_date = body.round_date or utcnow().date()
    await validate_pins_and_blocks(session, program_id, snapshot, body, round_date)
    row = Round(
        program_id=program_id,
        status="queued",
        round_date=round_date,
        program_snapshot=snapshot,
        pins=[[p.mentor, p.mentee] for p in body.pins],
        blocks=[[b.mentor, b.mentee] for b in body.blocks],
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        # Lost a race the checks above could not see: the unique indexes decide.
        earlier = await _earlier_answer(session, program_id, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
        raise

    # The new round supersedes an unpublished draft: only one draft is ever up for review.
    superseded = await session.execute(
        update(Round)
        .where(Round.program_id == program_id, Round.status == "completed", Round.id != row.id)
        .values(status="discarded", discarded_at=utcnow())
        .returning(Round.id)
    )
    for (draft_id,) in superseded.all():
        await emit(session, "round.discarded", draft_id, program_id)
    return row, True


# ---------------------------------------------------------------------------------------------
# Publishing and discarding


_mentor, _mentee = aliased(Person, name="mentor"), aliased(Person, name="mentee")


async def publish_round(session: AsyncSession, round_id: int) -> Round:
    """Turn a completed round's matches into active pairings (one transaction)."""
    now = utcnow()
    result = await session.execute(
        update(Round)
        .where(Round.id == round_id, Round.status == "completed")
        .values(status="published", published_at=now)
        .returning(Round.program_id)
    )
    program_id = result.scalar_one_or_none()
    if program_id is None:
        row = await get_round(session, round_id)
        raise Conflict(f"Round {round_id} is {row.status}; only a completed round can be published.")
    await session.execute(
        insert(Pairing).from_select(
            ["program_id", "round_id", "match_id", "mentor_person_id", "mentee_person_id", "status", "published_at"],
            select(
                Round.program_id,
                RoundMatch.round_id,
                RoundMatch.id,
                RoundMatch.mentor_person_id,
                RoundMatch.mentee_person_id,
                literal("active"),
                literal(now, UTCDateTime()),
            )
            .join(Round, Round.id == RoundMatch.round_id)
            .join(_mentor, _mentor.id == RoundMatch.mentor_person_id)
            .join(_mentee, _mentee.id == RoundMatch.mentee_person_id)
            .where(
                RoundMatch.round_id == round_id,
                # Someone erased or made inactive since the round ran is not paired with anyone.
                _mentor.erased_at.is_(None),
                _mentor.active.is_(True),
                _mentee.erased_at.is_(None),
                _mentee.active.is_(True),
            ),
        )
    )
    await emit(session, "round.published", round_id, program_id)
    return await get_round(session, round_id)


DISCARDABLE = ("queued", "running", "completed")


async def discard_round(session: AsyncSession, round_id: int) -> Round:
    """Drop a round that is not published. A running round's runner finds the round gone from
    ``running`` when it stores, so its results are never written."""
    result = await session.execute(
        update(Round)
        .where(Round.id == round_id, Round.status.in_(DISCARDABLE))
        .values(status="discarded", discarded_at=utcnow(), lease_token=None, lease_owner=None, lease_expires_at=None)
        .returning(Round.program_id)
    )
    program_id = result.scalar_one_or_none()
    if program_id is None:
        row = await get_round(session, round_id)
        raise Conflict(f"Round {round_id} is {row.status}; only a queued, running or completed round can be discarded.")
    await emit(session, "round.discarded", round_id, program_id)
    return await get_round(session, round_id)


# ---------------------------------------------------------------------------------------------
# Runner side: claim, renew, store (all fenced on the lease token)


@dataclass(frozen=True, slots=True)
class Claim:
    round_id: int
    program_id: int
    token: str
    owner: str
    attempt: int


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return or_(Round.status == "queued", (Round.status == "running") & (Round.lease_expires_at < now))


async def claim_next_round(
    session: AsyncSession, *, owner: str, lease_seconds: float, max_attempts: int
) -> Claim | None:
    """Claim the oldest queued round, or a running one whose lease expired (its runner died).

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent runners pick different rounds
    without waiting; SQLite: write transactions are serialised (``BEGIN IMMEDIATE``). The
    UPDATE repeats the claimable condition, so a claim is a compare-and-set either way.
    """
    while True:
        now = utcnow()
        query = (
            select(Round)
            .where(_claimable(now))
            .order_by(Round.created_at, Round.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        if row.status == "running" and row.attempts >= max_attempts:
            # Every earlier runner died holding this round: stop retrying it.
            await _finish_failed(
                session,
                row.id,  # type: ignore[arg-type]
                row.program_id,
                fence=Round.lease_token == row.lease_token,
                error=problem_details(
                    "round-abandoned",
                    "Round abandoned",
                    500,
                    f"The round's runner stopped responding {row.attempts} times; giving up.",
                ),
            )
            continue
        token = str(uuid.uuid4())
        round_id, program_id, attempts = row.id, row.program_id, row.attempts  # before the UPDATE refreshes row
        claimed = await session.execute(
            update(Round)
            .where(Round.id == round_id, _claimable(now), Round.attempts == attempts)
            .values(
                status="running",
                attempts=Round.attempts + 1,
                lease_owner=owner,
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
            )
        )
        if claimed.rowcount == 1:
            return Claim(round_id, program_id, token, owner, attempts + 1)  # type: ignore[arg-type]


def _fenced(claim: Claim):  # type: ignore[no-untyped-def]
    return (Round.id == claim.round_id) & (Round.lease_token == claim.token) & (Round.status == "running")


async def renew_lease(session: AsyncSession, claim: Claim, lease_seconds: float) -> bool:
    """Extend the lease; False when the round is no longer ours."""
    result = await session.execute(
        update(Round)
        .where(_fenced(claim))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return result.rowcount == 1


async def release_round(session: AsyncSession, claim: Claim) -> bool:
    """Give a claimed round back to the queue (graceful shutdown); the attempt does not count."""
    result = await session.execute(
        update(Round)
        .where(_fenced(claim))
        .values(status="queued", attempts=Round.attempts - 1, lease_owner=None, lease_token=None, lease_expires_at=None)
    )
    return result.rowcount == 1


async def _finish_failed(session: AsyncSession, round_id: int, program_id: int, *, fence: Any, error: dict[str, Any]) -> bool:
    result = await session.execute(
        update(Round)
        .where(Round.id == round_id, Round.status == "running", fence)
        .values(
            status="failed", error=error, finished_at=utcnow(), lease_owner=None, lease_token=None, lease_expires_at=None
        )
    )
    if result.rowcount != 1:
        return False
    await emit(session, "round.failed", round_id, program_id)
    return True


async def store_failure(session: AsyncSession, claim: Claim, error: dict[str, Any]) -> bool:
    return await _finish_failed(
        session, claim.round_id, claim.program_id, fence=Round.lease_token == claim.token, error=error
    )


def _window_pairs(windows: Sequence[mp.Window]) -> list[list[str]]:
    return [
        [w.start_utc.astimezone(UTC).isoformat(), w.end_utc.astimezone(UTC).isoformat()] for w in windows
    ]


def _stats(solution: mp.Solution) -> dict[str, Any]:
    stats: dict[str, Any] = {key: float(value) for key, value in solution.stats.items()}
    for key in ("mentees", "mentors", "matched_mentees"):
        if key in stats:
            stats[key] = int(stats[key])
    return stats


async def store_results(
    session: AsyncSession,
    claim: Claim,
    built: BuiltProblem,
    solution: mp.Solution,
    timings: dict[str, float],
) -> bool:
    """Store a solved round in the caller's transaction. The status change comes first and is
    fenced on the lease token: if it touches no row, nothing else is written and False is
    returned (the caller rolls back). On PostgreSQL the UPDATE also row-locks the round, so a
    runner re-claiming it concurrently skips it and then finds it completed."""
    started = time.perf_counter()
    result = await session.execute(
        update(Round)
        .where(_fenced(claim))
        .values(
            status="completed",
            stats=_stats(solution),
            solver=asdict(solution.solver),
            timings=timings,
            finished_at=utcnow(),
            lease_owner=None,
            lease_token=None,
            lease_expires_at=None,
        )
    )
    if result.rowcount != 1:
        return False
    timings = {**timings, **{f"solver_{k}": round(float(v), 4) for k, v in solution.timings.items()}}
    ids = built.person_ids
    match_rows = [
        {
            "round_id": claim.round_id,
            "mentor_person_id": ids[m.mentor_id],
            "mentee_person_id": ids[m.mentee_id],
            "score": float(m.score),
            "components": {k: float(v) for k, v in m.components.items()},
            "reasons": list(m.reasons),
            "overlap_hours": float(m.overlap_hours),
            "overlap_windows": _window_pairs(m.overlap_windows),
            "pinned": bool(m.pinned),
        }
        for m in solution.matches
    ]
    unmatched_rows = [
        {
            "round_id": claim.round_id,
            "person_id": ids[u.person_id],
            "role": u.role,
            "reasons": list(u.reasons),
            "rule_counts": {k: int(v) for k, v in u.rule_counts.items()},
        }
        for u in solution.unmatched
    ]
    for table, rows in ((RoundMatch, match_rows), (RoundUnmatched, unmatched_rows)):
        for start in range(0, len(rows), STORE_CHUNK):
            await session.execute(insert(table), rows[start : start + STORE_CHUNK])
            await asyncio.sleep(0)  # let requests in between chunks
    timings = {**timings, "store_seconds": round(time.perf_counter() - started, 4)}
    await session.execute(update(Round).where(Round.id == claim.round_id).values(timings=timings))
    await emit(session, "round.completed", claim.round_id, claim.program_id)
    return True
