"""All tables; importing this module registers them on ``SQLModel.metadata`` (Alembic reads it)."""

from sqlmodel import SQLModel

from app.models.api_keys import ApiKey
from app.models.people import Person
from app.models.programs import Enrollment, Program
from app.models.rounds import Pairing, Round, RoundMatch, RoundUnmatched
from app.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = SQLModel.metadata

__all__ = [
    "ApiKey", "Enrollment", "Pairing", "Person", "Program", "Round", "RoundMatch", "RoundUnmatched", "metadata",
]  # fmt: skip
__all__ += ["WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
