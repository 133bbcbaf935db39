"""The synthetic organisation's API payloads (used by `kizuna demo` and the benchmarks) are
accepted by the people schema: none may be refused."""

from __future__ import annotations

from matching import person_to_api_payload, synthetic_organisation
from schemas.people import PersonBatchItem


def test_every_synthetic_payload_is_a_valid_person() -> None:
    people, _ = synthetic_organisation(600, 300, seed=3)
    night_shifts = 0
    for person in people.values():
        item = PersonBatchItem.model_validate(person_to_api_payload(person))
        night_shifts += item.working_hours.crosses_midnight
    assert night_shifts > 0, "the generator should include shifts that cross midnight"
