"""The synthetic organisation: deterministic, realistic shape, API payloads."""

from collections import Counter

from matching import person_to_api_payload, synthetic_organisation
from matching.synthetic import skill_vocabulary


def test_deterministic_for_a_seed():
    a = synthetic_organisation(200, 100, seed=7)
    b = synthetic_organisation(200, 100, seed=7)
    c = synthetic_organisation(200, 100, seed=8)
    assert a == b
    assert a != c


def test_realistic_shape():
    people, enrollments = synthetic_organisation(3000, 1500, seed=1)
    assert len(people) == 4500 and len(enrollments) == 4500
    roles = Counter(e.role for e in enrollments)
    assert roles == {"mentee": 3000, "mentor": 1500}
    assert all(1 <= e.capacity <= 3 for e in enrollments if e.role == "mentor")
    levels = Counter(p.level for p in people.values())
    assert levels[1] > levels[5] > levels[10] and max(levels) <= 20
    continents = {p.time_zone.split("/")[0] for p in people.values()}
    assert {"America", "Europe", "Africa", "Asia", "Australia", "Pacific"} <= continents
    assert len({p.department for p in people.values()}) >= 11
    assert all(3 <= len(p.goals) <= 7 for p in people.values())
    assert any(p.work_end_min <= p.work_start_min for p in people.values())  # crosses midnight
    # managers are one or more levels up (or dangling)
    for p in people.values():
        boss = people.get(p.manager_id) if p.manager_id else None
        if boss is not None:
            assert boss.level > p.level and boss.department == p.department
    assert any(p.manager_id and p.manager_id not in people for p in people.values())
    assert 250 <= len(skill_vocabulary()[0]) <= 400


def test_api_payload_shape():
    people, _ = synthetic_organisation(3, 2, seed=0)
    payload = person_to_api_payload(people["p000001"])
    assert set(payload) == {
        "external_id", "display_name", "email", "title", "department", "division", "level",
        "manager_external_id", "time_zone", "working_hours", "languages", "skills", "goals", "active",
    }
    assert payload["display_name"] == "Person 1" and payload["email"] == "p000001@example.com"
    assert set(payload["working_hours"]) == {"start", "end", "crosses_midnight"} and len(payload["working_hours"]["start"]) == 5
    assert all(set(s) == {"name", "level"} for s in payload["skills"])
    assert all(set(g) == {"skill", "priority"} for g in payload["goals"])

