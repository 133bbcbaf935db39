"""Webhooks: registering an endpoint, and what the API says about it and its deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from schemas.common import StrictInput, description_field

WebhookDescription = description_field(500)

WebhookEventType = Literal["round.completed", "round.failed", "round.published"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
AttemptOutcome = Literal["delivered", "failed", "refused"]


class WebhookCreate(StrictInput):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="An http(s) URL that resolves to a public address (unless KIZUNA_WEBHOOK_ALLOW_PRIVATE=true).",
        examples=["https://hr.example.com/hooks/kizuna"],
    )
    events: list[WebhookEventType] = Field(min_length=1, max_length=3, description="The events to send here.")
    description: WebhookDescription | None = None

    @field_validator("url")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("a URL cannot contain spaces or control characters")
        return value

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[WebhookEventType]
    description: str | None = None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description=(
            "The signing secret (`whsec_` + base64). Shown only in this answer: verify each delivery's "
            "`webhook-signature` with it (Standard Webhooks)."
        )
    )


class WebhookAttemptOut(BaseModel):
    number: int
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    duration_ms: float
    started_at: datetime


class WebhookDeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header of every try of this delivery.")
    event_type: WebhookEventType
    status: DeliveryStatus
    attempts: list[WebhookAttemptOut]
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    created_at: datetime
    finished_at: datetime | None = None
