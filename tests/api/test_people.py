"""People API through HTTP with real keys: upsert, batch, list, patch, erase, and bad input."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import create_engine, select

from app.migrations import sync_url
from app.models import Person
from app.pagination import encode_cursor
from tests.api.people_payloads import batch_item, person_payload


async def _get(client: httpx.AsyncClient, headers: dict[str, str], external_id: str) -> httpx.Response:
    return await client.get(f"/v1/people/{external_id}", headers=headers)


async def test_put_creates_then_updates_then_reports_unchanged(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    created = await client.put("/v1/people/E-1", json=person_payload(1), headers=hris)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["external_id"] == "E-1"
    assert body["working_hours"] == {"start": "09:00", "end": "17:00", "crosses_midnight": False}

    updated = await client.put("/v1/people/E-1", json=person_payload(1, level=6), headers=hris)
    assert updated.status_code == 200
    assert updated.json()["level"] == 6
    assert updated.json()["updated_at"] > body["updated_at"]

    again = await client.put("/v1/people/E-1", json=person_payload(1, level=6), headers=hris)
    assert again.status_code == 200
    assert again.json()["updated_at"] == updated.json()["updated_at"]
    batch = await client.post("/v1/people/batch", json={"people": [{"external_id": "E-1", **person_payload(1, level=6)}]}, headers=hris)
    assert batch.json()["results"] == [{"external_id": "E-1", "status": "unchanged", "error": None}]


async def test_profile_is_normalised(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    payload = person_payload(
        2,
        languages=["EN", "en", " ja "],
        skills=[{"name": "  Public   Speaking ", "level": 2}, {"name": "public speaking", "level": 4}],
        goals=[{"skill": "Negotiation", "priority": 3}, {"skill": "negotiation ", "priority": 1}],
        display_name="Ōtani 翔平 🎌",
    )
    response = await client.put("/v1/people/p2", json=payload, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["languages"] == ["en", "ja"]
    assert body["skills"] == [{"name": "public speaking", "level": 4}]
    assert body["goals"] == [{"skill": "negotiation", "priority": 1}]
    assert body["display_name"] == "Ōtani 翔平 🎌"


async def test_night_shift_must_say_it_crosses_midnight(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    night = {"start": "22:00", "end": "06:00", "crosses_midnight": True}
    response = await client.put("/v1/people/night", json=person_payload("n", working_hours=night), headers=hris)
    assert response.status_code == 201
    assert response.json()["working_hours"] == night


async def test_batch_with_good_and_bad_items(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    await client.put("/v1/people/old", json=person_payload("old"), headers=hris)
    people = [
        batch_item("new-1", manager_external_id="boss"),  # the manager arrives later in the batch
        batch_item("old", level=7),
        batch_item("bad-tz", time_zone="Mars/Olympus"),
        {"external_id": "missing-fields"},
        batch_item("new-1"),  # duplicate of item 0
        batch_item("boss", level=9),
        "not an object",
    ]
    response = await client.post("/v1/people/batch", json={"people": people}, headers=hris)
    assert response.status_code == 422  # a non-object item is a malformed request as a whole
    people.pop()
    response = await client.post("/v1/people/batch", json={"people": people}, headers=hris)
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [(r["external_id"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("new-1", "created"),
        ("old", "updated"),
        ("bad-tz", "error"),
        ("missing-fields", "error"),
        ("new-1", "error"),
        ("boss", "created"),
    ]
    assert "time_zone" in body["results"][2]["error"]
    assert "duplicate" in body["results"][4]["error"]
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (2, 1, 0, 3)
    assert (await _get(client, hris, "new-1")).json()["manager_external_id"] == "boss"
    assert (await _get(client, hris, "bad-tz")).status_code == 404
    assert (await _get(client, hris, "old")).json()["level"] == 7


async def test_manager_cycles_and_self_management_are_rejected(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    await client.put("/v1/people/a", json=person_payload("a", manager_external_id="b"), headers=hris)
    await client.put("/v1/people/b", json=person_payload("b", manager_external_id="c"), headers=hris)
    response = await client.put("/v1/people/c", json=person_payload("c", manager_external_id="a"), headers=hris)
    assert response.status_code == 422
    assert "manager cycle: c → a → b → c" in response.json()["detail"]
    assert (await _get(client, hris, "c")).status_code == 404

    response = await client.put("/v1/people/a", json=person_payload("a", manager_external_id="a"), headers=hris)
    assert response.status_code == 422
    assert "own manager" in response.json()["detail"]
    assert (await _get(client, hris, "a")).json()["manager_external_id"] == "b"

    # A cycle formed entirely inside one batch is refused for each of its members.
    batch = [batch_item("x", manager_external_id="y"), batch_item("y", manager_external_id="x"), batch_item("z")]
    body = (await client.post("/v1/people/batch", json={"people": batch}, headers=hris)).json()
    assert [r["status"] for r in body["results"]] == ["error", "error", "created"]


async def test_patch_changes_only_given_fields_and_validates_the_whole(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    await client.put("/v1/people/p", json=person_payload("p"), headers=hris)
    response = await client.patch("/v1/people/p", json={"title": "Staff Engineer", "active": False}, headers=hris)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["active"], body["level"]) == ("Staff Engineer", False, 5)

    for bad in ({"level": None}, {"level": 0}, {"time_zone": "Nowhere"}, {"unknown": 1}, {"manager_external_id": "p"}):
        response = await client.patch("/v1/people/p", json=bad, headers=hris)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await _get(client, hris, "p")).json() == body
    assert (await client.patch("/v1/people/nobody", json={"title": "x"}, headers=hris)).status_code == 404


async def test_erasure_removes_personal_data_and_blocks_recreation(
    client: httpx.AsyncClient, hris: dict[str, str], database_url: str
) -> None:
    await client.put("/v1/people/gone", json=person_payload("gone"), headers=hris)
    assert (await client.delete("/v1/people/gone", headers=hris)).status_code == 204
    assert (await _get(client, hris, "gone")).status_code == 404
    assert (await client.delete("/v1/people/gone", headers=hris)).status_code == 404
    listed = (await client.get("/v1/people", headers=hris)).json()["items"]
    assert "gone" not in [p["external_id"] for p in listed]

    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        row = connection.execute(select(Person).where(Person.external_id == "gone")).mappings().one()
    engine.dispose()
    assert (row["display_name"], row["email"], row["title"]) == (None, None, None)
    assert row["skills"] == [] and row["goals"] == [] and row["active"] is False

    response = await client.put("/v1/people/gone", json=person_payload("gone"), headers=hris)
    assert response.status_code == 409
    body = (await client.post("/v1/people/batch", json={"people": [batch_item("gone")]}, headers=hris)).json()
    assert body["results"][0]["status"] == "error" and "erased" in body["results"][0]["error"]


async def test_list_filters(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    people = [batch_item("s1", department="Sales"), batch_item("s2", department="Sales", active=False), batch_item("e1")]
    await client.post("/v1/people/batch", json={"people": people}, headers=hris)

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/people?{query}", headers=hris)
        assert response.status_code == 200, response.text
        return sorted(p["external_id"] for p in response.json()["items"])

    assert await ids("department=Sales") == ["s1", "s2"]
    assert await ids("department=Sales&active=false") == ["s2"]
    assert await ids("active=true") == ["e1", "s1"]
    stamp = (await client.patch("/v1/people/s1", json={"title": "Lead"}, headers=hris)).json()["updated_at"]
    assert await ids(f"updated_since={stamp.replace('+', '%2B')}") == ["s1"]
    assert (await client.get("/v1/people?updated_since=yesterday", headers=hris)).status_code == 422
    # A timestamp without a UTC offset is ambiguous: refused, not guessed.
    assert (await client.get("/v1/people?updated_since=2026-01-01T00:00:00", headers=hris)).status_code == 422


async def test_pagination_never_skips_or_repeats_while_rows_are_added(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    original = [f"page-{i:03d}" for i in range(45)]
    await client.post("/v1/people/batch", json={"people": [batch_item(e) for e in original]}, headers=hris)
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        query = "limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/v1/people?{query}", headers=hris)).json()
        seen += [p["external_id"] for p in page["items"]]
        # Another sync job adds rows between pages, some sorting before the ones already read.
        await client.put(f"/v1/people/aaa-{added}", json=person_payload(added), headers=hris)
        added += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert set(original) <= set(seen), "a row was skipped"
    assert (await client.get("/v1/people?limit=201", headers=hris)).status_code == 422
    assert (await client.get("/v1/people?cursor=not-a-cursor", headers=hris)).status_code == 422
    forged = encode_cursor(10**30)  # larger than any BIGINT key
    assert (await client.get(f"/v1/people?cursor={forged}", headers=hris)).status_code == 422


async def test_parallel_overlapping_batches_lose_nothing_and_duplicate_nothing(
    client: httpx.AsyncClient, hris: dict[str, str]
) -> None:
    async def push(offset: int) -> httpx.Response:
        items = [batch_item(f"par-{i}", level=1 + (i + offset) % 20) for i in range(offset, offset + 60)]
        return await client.post("/v1/people/batch", json={"people": items}, headers=hris)

    responses = await asyncio.gather(*(push(offset) for offset in (0, 20, 40, 60)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert all(r.json()["errors"] == 0 for r in responses)
    listed = []
    cursor = None
    while True:
        page = (await client.get("/v1/people?limit=200" + (f"&cursor={cursor}" if cursor else ""), headers=hris)).json()
        listed += [p["external_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(listed) == sorted({f"par-{i}" for i in range(120)})


BAD_PROFILES = [
    ("time zone", {"time_zone": "Europe/Atlantis"}),
    ("level too low", {"level": 0}),
    ("level too high", {"level": 21}),
    ("level as string", {"level": "5"}),
    ("level as bool", {"level": True}),
    ("hours not HH:MM", {"working_hours": {"start": "9am", "end": "17:00"}}),
    ("hour 24", {"working_hours": {"start": "09:00", "end": "24:00"}}),
    ("end before start", {"working_hours": {"start": "17:00", "end": "09:00"}}),
    ("empty window", {"working_hours": {"start": "09:00", "end": "09:00"}}),
    ("midnight flag wrong", {"working_hours": {"start": "09:00", "end": "17:00", "crosses_midnight": True}}),
    ("language code", {"languages": ["eng"]}),
    ("unknown language", {"languages": ["xx"]}),
    ("too many skills", {"skills": [{"name": f"s{i}", "level": 1} for i in range(101)]}),
    ("too many goals", {"goals": [{"skill": f"g{i}", "priority": 1} for i in range(21)]}),
    ("skill level", {"skills": [{"name": "python", "level": 6}]}),
    ("goal priority", {"goals": [{"skill": "python", "priority": 0}]}),
    ("empty skill name", {"skills": [{"name": "   ", "level": 3}]}),
    ("unknown field", {"favourite_colour": "blue"}),
    ("unknown nested field", {"skills": [{"name": "python", "level": 3, "years": 4}]}),
    ("self manager", {"manager_external_id": "victim"}),
    ("bad manager id", {"manager_external_id": "has space"}),
    ("email", {"email": "not-an-email"}),
    ("control characters in email", {"email": "a\x00\x1b[31m@example.com"}),
    ("control characters", {"display_name": "Robert\x00'); DROP TABLE people;--"}),
    ("name too long", {"display_name": "x" * 201}),
    ("missing name", {"display_name": None}),
]


@pytest.mark.parametrize("case,change", BAD_PROFILES, ids=[c for c, _ in BAD_PROFILES])
async def test_bad_profiles_are_refused_and_change_nothing(
    client: httpx.AsyncClient, hris: dict[str, str], case: str, change: dict[str, object]
) -> None:
    before = (await client.put("/v1/people/victim", json=person_payload("victim"), headers=hris)).json()
    response = await client.put("/v1/people/victim", json=person_payload("victim", **change), headers=hris)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422 and response.json()["detail"]
    assert (await _get(client, hris, "victim")).json() == before

    batch = (await client.post("/v1/people/batch", json={"people": [{"external_id": "victim", **person_payload("victim", **change)}]}, headers=hris)).json()
    assert batch["results"][0]["status"] == "error" and batch["results"][0]["error"]
    assert (await _get(client, hris, "victim")).json() == before


@pytest.mark.parametrize("external_id", ["has space", "a" * 256, "-leading-dash", "semi;colon", "%F0%9F%98%80"])
async def test_bad_external_ids_in_the_path(client: httpx.AsyncClient, hris: dict[str, str], external_id: str) -> None:
    response = await client.put(f"/v1/people/{external_id}", json=person_payload(1), headers=hris)
    assert response.status_code == 422
    assert (await client.get("/v1/people", headers=hris)).json()["items"] == []


async def test_malformed_json_oversized_and_wrong_shapes(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    headers = {**hris, "content-type": "application/json"}
    response = await client.put("/v1/people/m", content=b'{"display_name": "x",', headers=headers)
    assert response.status_code == 400
    assert response.json()["title"] == "Malformed JSON"

    response = await client.post("/v1/people/batch", content=b"[1, 2", headers=headers)
    assert response.status_code == 400

    huge = json.dumps({"people": [batch_item("h", title="x" * 200)] * 1}).encode() + b" " * (11 * 1024 * 1024)
    response = await client.post("/v1/people/batch", content=huge, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    too_many = {"people": [batch_item(f"t{i}") for i in range(1001)]}
    assert (await client.post("/v1/people/batch", json=too_many, headers=hris)).status_code == 422
    assert (await client.post("/v1/people/batch", json={"people": []}, headers=hris)).status_code == 422
    assert (await client.post("/v1/people/batch", json={"people": {}}, headers=hris)).status_code == 422
    assert (await client.put("/v1/people/m", json=[1, 2, 3], headers=hris)).status_code == 422
    nested: object = {}
    for _ in range(500):
        nested = {"a": nested}
    assert (await client.put("/v1/people/m", json={**person_payload("m"), "x": nested}, headers=hris)).status_code == 422
    assert (await client.get("/v1/people", headers=hris)).json()["items"] == []


async def test_concurrent_writers_cannot_close_a_manager_cycle(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    for name in ("ca", "cb"):
        await client.put(f"/v1/people/{name}", json=person_payload(name), headers=hris)
    responses = await asyncio.gather(
        client.put("/v1/people/ca", json=person_payload("ca", manager_external_id="cb"), headers=hris),
        client.put("/v1/people/cb", json=person_payload("cb", manager_external_id="ca"), headers=hris),
    )
    assert sorted(r.status_code for r in responses) == [200, 422], [r.text for r in responses]
