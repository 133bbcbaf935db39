from __future__ import annotations

import httpx
import pytest

from tests.api.rounds_support import ORG, create_program, push_org


@pytest.fixture
async def program_id(client: httpx.AsyncClient, admin, hris) -> int:
    await push_org(client, hris)
    return await create_program(client, admin)


async def _enrolled(client: httpx.AsyncClient, admin, program_id: int) -> dict[str, dict]:
    items = (await client.get(f"/v1/programs/{program_id}/enrollments", params={"limit": 200}, headers=admin)).json()["items"]
    return {item["external_id"]: item for item in items}


async def test_put_creates_then_updates_then_unchanged(client: httpx.AsyncClient, admin, program_id) -> None:
    url = f"/v1/programs/{program_id}/enrollments/alice"
    response = await client.put(url, json={"role": "mentor", "capacity": 3, "blocked": ["eli"]}, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["external_id"], body["role"], body["capacity"], body["blocked"], body["active"]) == ("alice", "mentor", 3, ["eli"], True)
    response = await client.put(url, json={"role": "both", "capacity": 1}, headers=admin)
    assert response.status_code == 200 and response.json()["role"] == "both" and response.json()["blocked"] == []
    assert (await client.get(url, headers=admin)).json()["capacity"] == 1


async def test_batch_reports_each_item(client: httpx.AsyncClient, admin, program_id) -> None:
    url = f"/v1/programs/{program_id}/enrollments/batch"
    assert (await client.post(url, json={"enrollments": [{"external_id": "dana", "role": "mentee"}]}, headers=admin)).status_code == 200
    response = await client.post(
        url,
        json={
            "enrollments": [
                {"external_id": "dana", "role": "mentee"},  # unchanged
                {"external_id": "alice", "role": "mentor", "capacity": 2, "preferred": ["dana"]},  # created
                {"external_id": "ghost", "role": "mentee"},  # unknown person
                {"external_id": "eli", "role": "teacher"},  # invalid role
                {"external_id": "fumi", "role": "mentee", "capacity": 2},  # capacity on a mentee
                {"external_id": "gen", "role": "mentee", "blocked": ["gen"]},  # blocks themselves
                {"external_id": "alice", "role": "mentee"},  # duplicate in the batch
                {"role": "mentee"},  # no id
            ]
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [(r["external_id"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("dana", "unchanged"), ("alice", "created"), ("ghost", "error"), ("eli", "error"),
        ("fumi", "error"), ("gen", "error"), ("alice", "error"), (None, "error"),
    ]  # fmt: skip
    errors = {r["external_id"]: r["error"] for r in body["results"] if r["status"] == "error"}
    assert "unknown" in errors["ghost"] and "role" in errors["eli"] and "capacity" in errors["fumi"]
    assert "themselves" in errors["gen"]
    assert (body["created"], body["unchanged"], body["errors"]) == (1, 1, 6)
    assert set(await _enrolled(client, admin, program_id)) == {"dana", "alice"}


async def test_unknown_or_erased_person_single_put_is_422_and_not_stored(client: httpx.AsyncClient, admin, hris, program_id) -> None:
    response = await client.put(f"/v1/programs/{program_id}/enrollments/ghost", json={"role": "mentee"}, headers=admin)
    assert response.status_code == 422
    assert "unknown" in response.json()["detail"]
    assert (await client.delete("/v1/people/gen", headers=hris)).status_code == 204
    response = await client.put(f"/v1/programs/{program_id}/enrollments/gen", json={"role": "mentee"}, headers=admin)
    assert response.status_code == 422
    assert "erased" in response.json()["detail"]
    assert await _enrolled(client, admin, program_id) == {}


async def test_unknown_program_is_404(client: httpx.AsyncClient, admin, program_id) -> None:
    assert (await client.put("/v1/programs/999/enrollments/dana", json={"role": "mentee"}, headers=admin)).status_code == 404
    response = await client.post("/v1/programs/999/enrollments/batch", json={"enrollments": [{"external_id": "dana", "role": "mentee"}]}, headers=admin)
    assert response.status_code == 404
    assert (await client.get("/v1/programs/999/enrollments", headers=admin)).status_code == 404


async def test_batch_over_the_cap_is_422(client: httpx.AsyncClient, admin, program_id) -> None:
    items = [{"external_id": f"p{n}", "role": "mentee"} for n in range(1001)]
    response = await client.post(f"/v1/programs/{program_id}/enrollments/batch", json={"enrollments": items}, headers=admin)
    assert response.status_code == 422
    assert await _enrolled(client, admin, program_id) == {}


async def test_list_filters_and_paginates(client: httpx.AsyncClient, admin, program_id) -> None:
    items = [{"external_id": p["external_id"], "role": "mentee" if p["level"] < 8 else "mentor"} for p in ORG]
    await client.post(f"/v1/programs/{program_id}/enrollments/batch", json={"enrollments": items}, headers=admin)
    url = f"/v1/programs/{program_id}/enrollments"
    seen, cursor = [], None
    while True:
        page = (await client.get(url, params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=admin)).json()
        seen += [i["external_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(p["external_id"] for p in ORG) and len(seen) == len(set(seen))
    mentors = (await client.get(url, params={"role": "mentor"}, headers=admin)).json()["items"]
    assert {m["external_id"] for m in mentors} == {"ceo", "alice", "bruno", "chen", "ines"}
    assert (await _enrolled(client, admin, program_id))["hana"]["active"] is False  # inactive person


async def test_delete(client: httpx.AsyncClient, admin, program_id) -> None:
    url = f"/v1/programs/{program_id}/enrollments/dana"
    await client.put(url, json={"role": "mentee"}, headers=admin)
    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.delete(url, headers=admin)).status_code == 404
    assert (await client.get(url, headers=admin)).status_code == 404


async def test_enrolments_need_an_admin(client: httpx.AsyncClient, hris, integration, program_id) -> None:
    for key in (hris, integration):
        response = await client.put(f"/v1/programs/{program_id}/enrollments/dana", json={"role": "mentee"}, headers=key)
        assert response.status_code == 403



async def test_racing_batches_report_each_enrolment_created_once(client: httpx.AsyncClient, admin, hris, program_id) -> None:
    import asyncio

    from tests.api.people_payloads import batch_item

    people = [batch_item(f"race-{i:03d}") for i in range(400)]
    assert (await client.post("/v1/people/batch", json={"people": people}, headers=hris)).json()["errors"] == 0
    items = [{"external_id": p["external_id"], "role": "mentee"} for p in people]
    url = f"/v1/programs/{program_id}/enrollments/batch"
    # Overlapping windows: each batch starts at a different offset, so each person is raced.
    batches = [items[k:] + items[:k] for k in (0, 100, 200, 300)]
    responses = await asyncio.gather(*(client.post(url, json={"enrollments": b}, headers=admin) for b in batches))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    created = sorted(r["external_id"] for resp in responses for r in resp.json()["results"] if r["status"] == "created")
    assert created == sorted(item["external_id"] for item in items), "an enrolment was reported created twice"
