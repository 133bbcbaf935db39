from __future__ import annotations

import httpx
import pytest

from tests.api.rounds_support import create_program, setup_program, trigger

TRADITIONAL_DEFAULTS = {
    "level_gap_min": 1,
    "level_gap_max": 4,
    "min_overlap_hours": 2.0,
    "exclude_management_chain": True,
    "cross_functional": "prefer",
    "min_cross_functional_share": None,
    "require_common_language": True,
    "avoid_repeat_pairs": True,
    "min_score": 0.0,
    "default_mentor_capacity": 2,
    "min_department_match_rate": None,
}


async def test_create_with_traditional_defaults(client: httpx.AsyncClient, admin) -> None:
    response = await client.post("/v1/programs", json={"name": "Engineering mentoring"}, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/programs/{body['id']}"
    assert body["relationship"] == "traditional"
    assert body["objective"] == "coverage_first"
    assert body["rules"] == TRADITIONAL_DEFAULTS
    assert body["weights"] == {"goals": 0.4, "time_zone": 0.2, "seniority": 0.2, "cross_functional": 0.2}
    assert (await client.get(f"/v1/programs/{body['id']}", headers=admin)).json() == body


async def test_peer_programs_default_to_a_level_gap_of_at_most_one(client: httpx.AsyncClient, admin) -> None:
    response = await client.post(
        "/v1/programs", json={"name": "Peers", "relationship": "peer", "rules": {"min_overlap_hours": 3}}, headers=admin
    )
    assert response.status_code == 201, response.text
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"], rules["min_overlap_hours"]) == (0, 1, 3)


async def test_patch_to_peer_resets_the_level_gap_to_the_peer_default(client: httpx.AsyncClient, admin) -> None:
    program_id = await create_program(client, admin, rules={"min_overlap_hours": 3})
    response = await client.patch(f"/v1/programs/{program_id}", json={"relationship": "peer"}, headers=admin)
    assert response.status_code == 200, response.text
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"], rules["min_overlap_hours"]) == (0, 1, 3)
    # And back: the traditional default again, not the peer gap.
    response = await client.patch(f"/v1/programs/{program_id}", json={"relationship": "traditional"}, headers=admin)
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"], rules["min_overlap_hours"]) == (1, 4, 3)


async def test_patch_to_peer_keeps_a_level_gap_given_with_it(client: httpx.AsyncClient, admin) -> None:
    program_id = await create_program(client, admin)
    response = await client.patch(
        f"/v1/programs/{program_id}",
        json={"relationship": "peer", "rules": {"level_gap_min": 0, "level_gap_max": 2}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"]) == (0, 2)
    # Only one bound given: the other takes the new relationship's default.
    response = await client.patch(
        f"/v1/programs/{program_id}", json={"relationship": "traditional", "rules": {"level_gap_max": 6}}, headers=admin
    )
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"]) == (1, 6)
    # Without a relationship change, a stored gap is kept.
    response = await client.patch(f"/v1/programs/{program_id}", json={"rules": {"min_score": 0.1}}, headers=admin)
    rules = response.json()["rules"]
    assert (rules["level_gap_min"], rules["level_gap_max"]) == (1, 6)


async def test_patch_merges_rules_and_weights(client: httpx.AsyncClient, admin) -> None:
    program_id = await create_program(client, admin)
    response = await client.patch(
        f"/v1/programs/{program_id}",
        json={"rules": {"min_overlap_hours": 3.5, "cross_functional": "require"}, "weights": {"goals": 1}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rules"] == {**TRADITIONAL_DEFAULTS, "min_overlap_hours": 3.5, "cross_functional": "require"}
    assert body["weights"]["goals"] == 1 and body["weights"]["time_zone"] == 0.2
    assert body["updated_at"] >= body["created_at"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"name": "x", "weights": {"goals": 0, "time_zone": 0, "seniority": 0, "cross_functional": 0}}, "at least one weight"),
        ({"name": "x", "weights": {"goals": -1}}, "weights.goals"),
        ({"name": "x", "rules": {"level_gap_min": 5, "level_gap_max": 2}}, "level_gap_min"),
        ({"name": "x", "rules": {"min_cross_functional_share": 1.5}}, "min_cross_functional_share"),
        ({"name": "x", "rules": {"min_score": -0.1}}, "min_score"),
        ({"name": "x", "rules": {"cross_functional": "sometimes"}}, "cross_functional"),
        ({"name": "x", "rules": {"surprise": True}}, "surprise"),
        ({"name": "x", "relationship": "sideways"}, "relationship"),
        ({"name": ""}, "name"),
        ({"name": "x", "owner": "me"}, "owner"),
    ],
)
async def test_invalid_program_is_422_and_not_stored(client: httpx.AsyncClient, admin, payload, fragment) -> None:
    response = await client.post("/v1/programs", json=payload, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment in response.text
    assert (await client.get("/v1/programs", headers=admin)).json()["items"] == []


@pytest.mark.parametrize(
    "patch",
    [
        {"rules": {"level_gap_min": 9}},  # above the stored max of 4
        {"weights": {"goals": 0, "time_zone": 0, "seniority": 0, "cross_functional": 0}},
        {"rules": {"min_cross_functional_share": -1}},
        {"name": None},
    ],
)
async def test_invalid_patch_is_422_and_changes_nothing(client: httpx.AsyncClient, admin, patch) -> None:
    program_id = await create_program(client, admin)
    before = (await client.get(f"/v1/programs/{program_id}", headers=admin)).json()
    response = await client.patch(f"/v1/programs/{program_id}", json=patch, headers=admin)
    assert response.status_code == 422, response.text
    assert (await client.get(f"/v1/programs/{program_id}", headers=admin)).json() == before


async def test_list_paginates(client: httpx.AsyncClient, admin) -> None:
    ids = [await create_program(client, admin, name=f"P{n}") for n in range(5)]
    first = (await client.get("/v1/programs", params={"limit": 2}, headers=admin)).json()
    assert [p["id"] for p in first["items"]] == ids[:2]
    rest = (await client.get("/v1/programs", params={"limit": 10, "cursor": first["next_cursor"]}, headers=admin)).json()
    assert [p["id"] for p in rest["items"]] == ids[2:] and rest["next_cursor"] is None


async def test_unknown_program_is_404(client: httpx.AsyncClient, admin) -> None:
    for method, path in (("GET", "/v1/programs/999"), ("PATCH", "/v1/programs/999"), ("DELETE", "/v1/programs/999")):
        response = await client.request(method, path, json={} if method == "PATCH" else None, headers=admin)
        assert response.status_code == 404, (method, response.text)


async def test_round_keeps_the_rules_it_was_triggered_with(client: httpx.AsyncClient, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    response = await client.patch(f"/v1/programs/{program_id}", json={"rules": {"min_overlap_hours": 8}}, headers=admin)
    assert response.status_code == 200
    assert (await runner.run_once()).outcome == "completed"
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["program"]["rules"]["min_overlap_hours"] == 2
    assert body["stats"]["matched_mentees"] == 3  # with 8 h required nobody would match


async def test_delete_removes_enrolments_rounds_and_pairings(client: httpx.AsyncClient, admin, hris, integration, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    # Not while a round is queued.
    assert (await client.delete(f"/v1/programs/{program_id}", headers=admin)).status_code == 409
    await runner.run_once()
    assert (await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200
    assert (await client.get("/v1/people/dana/pairings", headers=integration)).json()["items"]

    assert (await client.delete(f"/v1/programs/{program_id}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1/programs/{program_id}", headers=admin)).status_code == 404
    assert (await client.get(f"/v1/rounds/{round_id}", headers=admin)).status_code == 404
    assert (await client.get("/v1/people/dana/pairings", headers=integration)).json()["items"] == []
