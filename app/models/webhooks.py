"""Webhook endpoints and the delivery outbox.

A round event writes one ``WebhookDelivery`` row per subscribed endpoint in the same
transaction as the round's status change (the outbox): the event is recorded if and only
if the change is. Deliverers then send the rows, recording each try as a ``WebhookAttempt``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Float, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=36)
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = Field(default=None, max_length=500)
    # The signing key must be usable to sign, so unlike API keys it cannot be stored as a hash.
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: ``pending`` until ``delivered`` or ``failed`` (attempts used up)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    # The Standard Webhooks ``webhook-id``: the same on every retry, so receivers can de-duplicate.
    message_id: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    endpoint_id: str = Field(
        sa_column=Column(String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))  # the exact bytes signed and sent
    status: str = Field(max_length=20)  # pending | delivered | failed
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # When the next try is due; while a deliverer holds the row, when its claim lapses.
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "number"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    delivery_id: int = Field(
        sa_column=Column(BigId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False)
    )
    number: int
    outcome: str = Field(max_length=20)  # delivered | failed | refused
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: float = Field(sa_column=Column(Float, nullable=False))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
