"""Valid people payloads for API tests."""

from __future__ import annotations

from typing import Any


def person_payload(n: int | str = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": f"Person {n}",
        "email": f"person{n}@example.com",
        "title": "Engineer",
        "department": "Engineering",
        "division": "Product & Tech",
        "level": 5,
        "time_zone": "Europe/Berlin",
        "working_hours": {"start": "09:00", "end": "17:00"},
        "languages": ["en", "de"],
        "skills": [{"name": "python", "level": 4}, {"name": "public speaking", "level": 2}],
        "goals": [{"skill": "negotiation", "priority": 1}],
        "active": True,
    }
    body.update(overrides)
    return body


def batch_item(external_id: str, **overrides: Any) -> dict[str, Any]:
    return {"external_id": external_id, **person_payload(external_id, **overrides)}
