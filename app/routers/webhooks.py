from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from app import webhooks as service
from app.auth import AdminKey
from app.deps import SessionDep
from schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from schemas.webhooks import WebhookCreate, WebhookCreated, WebhookDeliveryOut, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookIdPath = Annotated[str, Path(max_length=36)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, request: Request, response: Response, session: SessionDep, _: AdminKey
) -> WebhookCreated:
    """Register an endpoint for round events. The signing secret is in this answer only.

    The URL must be http(s) and resolve to public addresses only (422 otherwise), unless
    the service runs with KIZUNA_WEBHOOK_ALLOW_PRIVATE=true."""
    row = await service.create_endpoint(
        session, body, allow_private=request.app.state.settings.webhook_allow_private
    )
    response.headers["Location"] = f"/v1/webhooks/{row.id}"
    return WebhookCreated(**service.webhook_out(row).model_dump(), secret=row.secret)


@router.get("", response_model=Page[WebhookOut])
async def list_webhooks(
    session: SessionDep, _: AdminKey, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[WebhookOut]:
    """Registered endpoints (never their secrets)."""
    rows, next_cursor = await service.list_endpoints(session, limit=limit, cursor=cursor)
    return Page[WebhookOut](items=[service.webhook_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: WebhookIdPath, session: SessionDep, _: AdminKey) -> WebhookOut:
    return service.webhook_out(await service.get_endpoint(session, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: WebhookIdPath, session: SessionDep, _: AdminKey) -> Response:
    """Stop sending to this endpoint; deliveries not yet made are dropped."""
    await service.delete_endpoint(session, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryOut])
async def list_webhook_deliveries(
    webhook_id: WebhookIdPath, session: SessionDep, _: AdminKey, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[WebhookDeliveryOut]:
    """Deliveries to this endpoint, newest first, each with every attempt's outcome."""
    items, next_cursor = await service.list_deliveries(session, webhook_id, limit=limit, cursor=cursor)
    return Page[WebhookDeliveryOut](items=items, next_cursor=next_cursor)
