"""Webhooks: endpoints admins register, signed per Standard Webhooks, fed from round events.

Recording is transactional (the outbox): ``record_round_event`` runs inside the transaction
that changes a round's status and adds one ``WebhookDelivery`` per subscribed endpoint, so a
delivery exists exactly when the change was committed, and the round never waits for an
HTTP call. ``app/webhook_delivery.py`` sends the rows.

Signing follows https://www.standardwebhooks.com: headers ``webhook-id`` (stable across
retries), ``webhook-timestamp`` (seconds, of the attempt) and ``webhook-signature``
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the base64-decoded part of
the ``whsec_…`` secret.

Services flush and never commit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import on_commit
from app.errors import InvalidInput, NotFound
from app.models import Round, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.pagination import decode_cursor, encode_cursor
from app.rounds import RoundEvent, add_round_event_hook
from app.ssrf import DestinationRefused, check_destination
from schemas.webhooks import WebhookAttemptOut, WebhookCreate, WebhookDeliveryOut, WebhookOut

EVENT_TYPES = ("round.completed", "round.failed", "round.published")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


# --- signing -------------------------------------------------------------------------------


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


# --- endpoints -----------------------------------------------------------------------------


def webhook_out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(id=row.id, url=row.url, events=row.events, description=row.description, created_at=row.created_at)  # type: ignore[arg-type]


async def create_endpoint(session: AsyncSession, body: WebhookCreate, *, allow_private: bool) -> WebhookEndpoint:
    try:
        await check_destination(body.url, allow_private=allow_private)
    except DestinationRefused as exc:
        raise InvalidInput(f"url: {exc}.") from exc
    row = WebhookEndpoint(
        id=str(uuid.uuid4()),
        url=body.url,
        events=list(body.events),
        description=body.description,
        secret=new_signing_secret(),
    )
    session.add(row)
    await session.flush()
    return row


async def get_endpoint(session: AsyncSession, webhook_id: str) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, webhook_id)
    if row is None:
        raise NotFound(f"No webhook {webhook_id!r}.")
    return row


async def list_endpoints(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit + 1)
    after = decode_cursor(cursor, str)
    if after is not None:
        query = query.where(WebhookEndpoint.id > after)
    rows = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def delete_endpoint(session: AsyncSession, webhook_id: str) -> None:
    """Remove the endpoint; its pending deliveries go with it (ON DELETE CASCADE)."""
    row = await get_endpoint(session, webhook_id)
    await session.delete(row)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, webhook_id: str, *, limit: int, cursor: str | None
) -> tuple[list[WebhookDeliveryOut], str | None]:
    """Newest first, each with its attempts."""
    await get_endpoint(session, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())  # type: ignore[union-attr]
        .limit(limit + 1)
    )
    before = decode_cursor(cursor, int)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)  # type: ignore[operator]
    rows = list((await session.execute(query)).scalars())
    page = rows[:limit]
    attempts: dict[int, list[WebhookAttemptOut]] = {row.id: [] for row in page}  # type: ignore[misc]
    if page:
        found = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))  # type: ignore[attr-defined]
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        )
        for attempt in found.scalars():
            attempts[attempt.delivery_id].append(
                WebhookAttemptOut(
                    number=attempt.number,
                    outcome=attempt.outcome,  # type: ignore[arg-type]
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                    started_at=attempt.started_at,
                )
            )
    items = [
        WebhookDeliveryOut(
            id=row.message_id,
            event_type=row.event_type,  # type: ignore[arg-type]
            status=row.status,  # type: ignore[arg-type]
            attempts=attempts[row.id],  # type: ignore[index]
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )
        for row in page
    ]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None  # type: ignore[arg-type]
    return items, next_cursor


# --- recording events (the outbox) ---------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def event_data(row: Round, event_type: str) -> dict[str, Any]:
    """What a receiver learns: ids, status and aggregate numbers, never personal data; the
    matches themselves are read through the API with a key."""
    data: dict[str, Any] = {
        "round_id": row.id,
        "program_id": row.program_id,
        "status": row.status,
        "links": {"round": f"/v1/rounds/{row.id}", "matches": f"/v1/rounds/{row.id}/matches"},
    }
    if event_type == "round.completed":
        data["stats"] = row.stats
        data["finished_at"] = _iso(row.finished_at)
    elif event_type == "round.failed":
        data["error"] = row.error
        data["finished_at"] = _iso(row.finished_at)
    elif event_type == "round.published":
        data["stats"] = row.stats
        data["published_at"] = _iso(row.published_at)
    return data


# Deliverers running in this process, woken when a transaction that recorded deliveries
# commits, so an in-process delivery starts at once rather than at the next poll.
_wakers: set[Callable[[], None]] = set()


def register_waker(wake: Callable[[], None]) -> None:
    _wakers.add(wake)


def unregister_waker(wake: Callable[[], None]) -> None:
    _wakers.discard(wake)


def _wake_deliverers() -> None:
    for wake in list(_wakers):
        wake()


async def record_round_event(session: AsyncSession, event: RoundEvent) -> None:
    """The round event hook: one outbox row per endpoint subscribed to the event."""
    if event.type not in EVENT_TYPES:
        return
    endpoints = [
        endpoint
        for endpoint in (await session.execute(select(WebhookEndpoint))).scalars()
        if event.type in endpoint.events
    ]
    if not endpoints:
        return
    # The status change was an UPDATE statement: read the row as this transaction sees it.
    query = select(Round).where(Round.id == event.round_id).execution_options(populate_existing=True)
    row = (await session.execute(query)).scalar_one()
    now = utcnow()
    body = json.dumps(
        {"type": event.type, "timestamp": _iso(now), "data": event_data(row, event.type)},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                message_id=new_message_id(),
                endpoint_id=endpoint.id,
                event_type=event.type,
                body=body,
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    await session.flush()
    if _wakers:
        on_commit(session, "kizuna_wake_deliverers", _wake_deliverers)


def install_round_event_hook() -> None:
    """Have round status changes record webhook deliveries in this process (idempotent).
    Called by ``create_app`` and ``kizuna worker``: every process that changes rounds."""
    add_round_event_hook(record_round_event)
