"""Triggering rounds: idempotency, one active round per program, pins and blocks, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import session_scope
from app.models import Round
from tests.api.rounds_support import create_program, enrol, push_org, setup_program, trigger


async def _round_count(app) -> int:
    async with session_scope(app.state.sessionmaker, write=False) as session:
        return (await session.execute(select(func.count()).select_from(Round))).scalar_one()


async def test_same_idempotency_key_gives_the_same_round(client: httpx.AsyncClient, app, admin, hris) -> None:
    program_id = await setup_program(client, admin, hris)
    first = await trigger(client, admin, program_id, {"blocks": [{"mentor": "alice", "mentee": "dana"}]}, **{"Idempotency-Key": "k-1"})
    again = await trigger(client, admin, program_id, {"blocks": [{"mentor": "alice", "mentee": "dana"}]}, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    other = await trigger(client, admin, program_id, {}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert await _round_count(app) == 1


async def test_same_idempotency_key_concurrently_gives_one_round(client: httpx.AsyncClient, app, admin, hris) -> None:
    program_id = await setup_program(client, admin, hris)
    responses = await asyncio.gather(
        *(trigger(client, admin, program_id, {}, **{"Idempotency-Key": "same"}) for _ in range(4))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _round_count(app) == 1


async def test_two_concurrent_triggers_one_202_one_409(client: httpx.AsyncClient, app, admin, hris) -> None:
    program_id = await setup_program(client, admin, hris)
    responses = await asyncio.gather(trigger(client, admin, program_id), trigger(client, admin, program_id))
    assert sorted(r.status_code for r in responses) == [202, 409], [r.text for r in responses]
    conflict = next(r for r in responses if r.status_code == 409).json()
    winner = next(r for r in responses if r.status_code == 202).json()
    assert conflict["round_id"] == winner["id"]
    assert await _round_count(app) == 1


async def test_database_refuses_a_second_active_round(client: httpx.AsyncClient, app, admin, hris) -> None:
    """The guarantee under races is the partial unique index, not the check before the insert."""
    program_id = await setup_program(client, admin, hris)
    existing = (await trigger(client, admin, program_id)).json()
    with pytest.raises(IntegrityError):
        async with session_scope(app.state.sessionmaker) as session:
            row = await session.get(Round, existing["id"])
            session.add(
                Round(
                    program_id=program_id, status="running", round_date=row.round_date,
                    program_snapshot=row.program_snapshot, request_hash="x",
                )
            )  # fmt: skip
            await session.flush()


async def test_trigger_after_a_round_finished_is_allowed(client: httpx.AsyncClient, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    assert (await trigger(client, admin, program_id)).status_code == 202
    assert (await trigger(client, admin, program_id)).status_code == 409
    await runner.run_once()
    assert (await trigger(client, admin, program_id)).status_code == 202


async def test_pin_that_breaks_a_rule_is_422_naming_the_rules(client: httpx.AsyncClient, app, admin, hris) -> None:
    program_id = await setup_program(client, admin, hris)
    response = await trigger(client, admin, program_id, {"pins": [{"mentor": "chen", "mentee": "fumi"}]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["pins"] == [{"mentor": "chen", "mentee": "fumi", "rules": ["management_chain"]}]
    assert "management_chain" in body["detail"]
    response = await trigger(client, admin, program_id, {"pins": [{"mentor": "alice", "mentee": "gen"}]})
    assert response.status_code == 422
    assert set(response.json()["pins"][0]["rules"]) >= {"min_overlap", "common_language"}
    assert await _round_count(app) == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"pins": [{"mentor": "alice", "mentee": "ghost"}]}, "not enrolled: ghost"),
        ({"blocks": [{"mentor": "ceo", "mentee": "dana"}]}, "not enrolled: ceo"),
        ({"pins": [{"mentor": "alice", "mentee": "hana"}]}, "hana is inactive"),
        ({"pins": [{"mentor": "dana", "mentee": "eli"}]}, "dana is enrolled as mentee, not as mentor"),
        ({"pins": [{"mentor": "bruno", "mentee": "dana"}, {"mentor": "alice", "mentee": "dana"}]}, "one mentor only"),
        ({"pins": [{"mentor": "alice", "mentee": "dana"}], "blocks": [{"mentor": "alice", "mentee": "dana"}]}, "pinned and blocked"),
        ({"pins": [{"mentor": "alice", "mentee": "dana"}], "extra": 1}, "extra"),
        ({"round_date": "not a date"}, "round_date"),
    ],
)
async def test_bad_round_request_is_422_and_nothing_stored(client: httpx.AsyncClient, app, admin, hris, body, fragment) -> None:
    program_id = await setup_program(client, admin, hris)
    response = await trigger(client, admin, program_id, body)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert await _round_count(app) == 0


async def test_pins_over_a_mentors_capacity_are_422(client: httpx.AsyncClient, app, admin, hris) -> None:
    await push_org(client, hris)
    program_id = await create_program(client, admin)
    await enrol(client, admin, program_id, [
        {"external_id": "ines", "role": "mentor", "capacity": 1},
        {"external_id": "dana", "role": "mentee"}, {"external_id": "fumi", "role": "mentee"},
    ])  # fmt: skip
    pins = [{"mentor": "ines", "mentee": "dana"}, {"mentor": "ines", "mentee": "fumi"}]
    response = await trigger(client, admin, program_id, {"pins": pins})
    assert response.status_code == 422 and "capacity" in response.text
    assert await _round_count(app) == 0


async def test_unknown_program_or_round_is_404(client: httpx.AsyncClient, admin) -> None:
    assert (await trigger(client, admin, 999)).status_code == 404
    for path in ("/v1/rounds/999", "/v1/rounds/999/matches", "/v1/rounds/999/unmatched"):
        assert (await client.get(path, headers=admin)).status_code == 404
    for action in ("publish", "discard"):
        assert (await client.post(f"/v1/rounds/999/{action}", headers=admin)).status_code == 404


async def test_rounds_need_an_admin(client: httpx.AsyncClient, admin, hris, integration) -> None:
    program_id = await setup_program(client, admin, hris)
    for key in (hris, integration):
        assert (await trigger(client, {}, program_id, **key)).status_code == 403


async def test_publish_needs_a_completed_round(client: httpx.AsyncClient, admin, hris) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    response = await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)
    assert response.status_code == 409 and "queued" in response.json()["detail"]


async def test_list_rounds_newest_first(client: httpx.AsyncClient, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    ids = []
    for _ in range(3):
        ids.append((await trigger(client, admin, program_id)).json()["id"])
        await runner.run_once()
    page = (await client.get(f"/v1/programs/{program_id}/rounds", params={"limit": 2}, headers=admin)).json()
    assert [r["id"] for r in page["items"]] == ids[::-1][:2]
    rest = (await client.get(f"/v1/programs/{program_id}/rounds", params={"cursor": page["next_cursor"]}, headers=admin)).json()
    assert [r["id"] for r in rest["items"]] == ids[:1]
    # Each new round discarded the previous draft.
    assert [r["status"] for r in page["items"] + rest["items"]] == ["completed", "discarded", "discarded"]


async def test_matches_as_csv(client: httpx.AsyncClient, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    # A name a spreadsheet would run as a formula, and one with a comma and a quote.
    await client.patch("/v1/people/dana", json={"display_name": '=HYPERLINK("http://evil","x")'}, headers=hris)
    await client.patch("/v1/people/ines", json={"display_name": 'Ines "Izzy", PhD'}, headers=hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    await runner.run_once()
    response = await client.get(f"/v1/rounds/{round_id}/matches", headers={**admin, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3
    by_mentee = {row["mentee_external_id"]: row for row in rows}
    assert by_mentee["dana"]["mentee_display_name"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert by_mentee["fumi"]["mentor_display_name"] == 'Ines "Izzy", PhD'
    assert by_mentee["fumi"]["mentor_email"] == "ines@example.com"
    assert 0 < float(by_mentee["fumi"]["score"]) <= 1
    assert by_mentee["fumi"]["reasons"]


async def test_csv_streams_every_match_of_a_large_round(client: httpx.AsyncClient, admin, hris, runner, monkeypatch) -> None:
    from app.routers import rounds as rounds_router

    monkeypatch.setattr(rounds_router, "CSV_PAGE", 2)  # several pages with a small round
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    await runner.run_once()
    response = await client.get(f"/v1/rounds/{round_id}/matches", headers={**admin, "Accept": "text/csv"})
    ids = [row["match_id"] for row in csv.DictReader(io.StringIO(response.text))]
    assert len(ids) == 3 and len(set(ids)) == 3
