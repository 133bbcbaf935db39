"""All tables; importing this module registers them on ``SQLModel.metadata`` (Alembic reads it)."""

from sqlmodel import SQLModel

from app.models.api_keys import ApiKey
from app.models.people import Person

metadata = SQLModel.metadata

__all__ = ["ApiKey", "Person", "metadata"]
