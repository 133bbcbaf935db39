"""The whole flow: people → program → enrol → trigger → run → review → pin/block, re-run →
publish → integrations and participants read pairings → a later round."""

from __future__ import annotations

import asyncio

import httpx

from app.runner import RoundRunner
from tests.api.rounds_support import (
    all_pages,
    pairs_of,
    setup_program,
    stored_solution_violations,
    trigger,
)
from tests.conftest import bearer


async def test_whole_flow(
    client: httpx.AsyncClient, app, admin, hris, integration, runner: RoundRunner
) -> None:
    program_id = await setup_program(client, admin, hris)

    # Trigger: 202, Location, queued.
    response = await trigger(client, admin, program_id)
    assert response.status_code == 202, response.text
    first = response.json()
    assert response.headers["location"] == f"/v1/rounds/{first['id']}"
    assert first["status"] == "queued"
    assert first["program"]["rules"]["level_gap_max"] == 4

    result = await runner.run_once()
    assert result is not None and result.outcome == "completed", result
    assert await runner.run_once() is None  # nothing else queued

    # Review.
    response = await client.get(f"/v1/rounds/{first['id']}", headers=admin)
    body = response.json()
    assert body["status"] == "completed", body
    assert body["stats"]["mentees"] == 4  # hana is inactive: left out
    assert body["stats"]["matched_mentees"] == 3
    assert body["solver"]["status"] == "optimal"
    assert {"load_seconds", "solve_seconds"} <= set(body["timings"])
    assert await pairs_of(client, admin, first["id"]) == {"dana": "alice", "eli": "bruno", "fumi": "ines"}
    assert await stored_solution_violations(app, first["id"]) == []

    matches = await all_pages(client, f"/v1/rounds/{first['id']}/matches", admin)
    for match in matches:
        assert 0 <= match["score"] <= 1
        assert match["reasons"] and match["components"]
        assert match["overlap_hours"] >= 2
        assert set(match["mentor"]) == {"external_id", "display_name", "department", "level", "time_zone"}
    unmatched = await all_pages(client, f"/v1/rounds/{first['id']}/unmatched", admin)
    by_role = {(u["external_id"], u["role"]): u for u in unmatched}
    assert set(by_role) == {("gen", "mentee"), ("chen", "mentor")}  # chen mentors nobody this round
    assert "common_language" in by_role[("gen", "mentee")]["rule_counts"]
    assert by_role[("gen", "mentee")]["reasons"]

    # Drafts are not visible outside admin.
    response = await client.get("/v1/people/dana/pairings", headers=integration)
    assert response.status_code == 200 and response.json()["items"] == []

    # Re-run with a block and a pin: the new round supersedes the draft.
    response = await trigger(
        client, admin, program_id,
        {"blocks": [{"mentor": "alice", "mentee": "dana"}], "pins": [{"mentor": "ines", "mentee": "fumi"}]},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    second = response.json()
    assert (await client.get(f"/v1/rounds/{first['id']}", headers=admin)).json()["status"] == "discarded"
    assert (await runner.run_once()).outcome == "completed"  # type: ignore[union-attr]
    assert await pairs_of(client, admin, second["id"]) == {"dana": "ines", "eli": "bruno", "fumi": "ines"}
    assert await stored_solution_violations(app, second["id"]) == []
    pinned = [m for m in await all_pages(client, f"/v1/rounds/{second['id']}/matches", admin) if m["pinned"]]
    assert [(m["mentor"]["external_id"], m["mentee"]["external_id"]) for m in pinned] == [("ines", "fumi")]

    # The discarded draft cannot be published; the new one can, once.
    assert (await client.post(f"/v1/rounds/{first['id']}/publish", headers=admin)).status_code == 409
    response = await client.post(f"/v1/rounds/{second['id']}/publish", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published" and response.json()["published_at"]
    assert (await client.post(f"/v1/rounds/{second['id']}/publish", headers=admin)).status_code == 409
    assert (await client.post(f"/v1/rounds/{second['id']}/discard", headers=admin)).status_code == 409

    # Integrations read every participant's pairing.
    expected = {"dana": ("mentee", "ines"), "eli": ("mentee", "bruno"), "fumi": ("mentee", "ines")}
    for ext, (role, counterpart) in expected.items():
        response = await client.get(f"/v1/people/{ext}/pairings", headers=integration)
        assert response.status_code == 200, response.text
        [pairing] = response.json()["items"]
        assert pairing["role"] == role
        assert pairing["counterpart"]["external_id"] == counterpart
        assert pairing["counterpart"]["email"] == f"{counterpart}@example.com"
        assert pairing["program"] == {"id": program_id, "name": "Mentoring 2026"}
        assert pairing["status"] == "active"
        assert pairing["reasons"]
        assert pairing["overlap"]["hours"] >= 2
        windows = pairing["overlap"]["windows"]
        assert windows and all(w["start_utc"] < w["end_utc"] for w in windows)
        hours = sum(
            (_parse(w["end_utc"]) - _parse(w["start_utc"])).total_seconds() / 3600 for w in windows
        )
        assert abs(hours - pairing["overlap"]["hours"]) < 0.01
    ines = (await client.get("/v1/people/ines/pairings", headers=integration)).json()["items"]
    assert sorted(p["counterpart"]["external_id"] for p in ines) == ["dana", "fumi"]
    assert {p["role"] for p in ines} == {"mentor"}
    assert (await client.get("/v1/people/gen/pairings", headers=integration)).json()["items"] == []
    assert (await client.get("/v1/people/nobody/pairings", headers=integration)).status_code == 404

    # A participant token reads only its own person.
    response = await client.post("/v1/people/dana/tokens", headers=integration)
    assert response.status_code == 201, response.text
    token = response.json()
    assert token["token"].startswith("kz_") and token["expires_at"]
    dana = bearer(token["token"])
    mine = await client.get("/v1/me/pairings", headers=dana)
    assert mine.status_code == 200
    assert [p["counterpart"]["external_id"] for p in mine.json()["items"]] == ["ines"]
    assert (await client.get("/v1/people/dana/pairings", headers=dana)).status_code == 200
    for other in ("eli", "ines", "nobody"):
        response = await client.get(f"/v1/people/{other}/pairings", headers=dana)
        assert response.status_code == 404, other
    assert (await client.get(f"/v1/rounds/{second['id']}", headers=dana)).status_code == 403
    assert (await client.get("/v1/me/pairings", headers=integration)).status_code == 403

    # A later round: only mentees without an active pairing, remaining capacity, no repeats.
    response = await trigger(client, admin, program_id)
    assert response.status_code == 202
    third = response.json()
    assert (await runner.run_once()).outcome == "completed"  # type: ignore[union-attr]
    body = (await client.get(f"/v1/rounds/{third['id']}", headers=admin)).json()
    assert body["stats"]["mentees"] == 1  # only gen is still without a mentor
    assert body["stats"]["mentors"] == 2  # alice (2 left) and chen (2); bruno and ines are full
    assert await pairs_of(client, admin, third["id"]) == {}


async def test_in_process_runner_completes_a_round(
    client: httpx.AsyncClient, app, admin, hris, settings
) -> None:
    """With KIZUNA_RUNNER=inprocess the API's own background runner picks the round up."""
    program_id = await setup_program(client, admin, hris)
    background = RoundRunner(app.state.sessionmaker, settings.model_copy(update={"runner_poll_seconds": 0.05}))
    app.state.runner = background
    background.start()
    try:
        response = await trigger(client, admin, program_id)
        round_url = response.headers["location"]
        for _ in range(200):
            status = (await client.get(round_url, headers=admin)).json()["status"]
            if status not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        assert status == "completed"
    finally:
        await background.stop()


def _parse(value: str):  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_peer_round(client: httpx.AsyncClient, app, admin, hris, runner: RoundRunner) -> None:
    """Peer programs pair people of one pool (roles are ignored, level gap 0–1 by default)."""
    from tests.api.rounds_support import create_program, enrol, person, push_org, trigger as trigger_round

    peers = [
        person(f"peer{n}", 5 + n % 2, ("Engineering", "Sales")[n % 2], "Europe/Berlin", skills={"python": 3}, goals={"python": 1})
        for n in range(6)
    ]
    await push_org(client, hris, peers)
    program_id = await create_program(client, admin, relationship="peer")
    await enrol(client, admin, program_id, [{"external_id": p["external_id"], "role": "both"} for p in peers])
    round_id = (await trigger_round(client, admin, program_id)).json()["id"]
    assert (await runner.run_once()).outcome == "completed"  # type: ignore[union-attr]
    pairs = await pairs_of(client, admin, round_id)
    people_in_pairs = list(pairs) + list(pairs.values())
    assert len(pairs) == 3 and sorted(people_in_pairs) == sorted(p["external_id"] for p in peers)
    assert await stored_solution_violations(app, round_id) == []
    assert (await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200
    for p in peers:
        items = (await client.get(f"/v1/people/{p['external_id']}/pairings", headers=admin)).json()["items"]
        assert len(items) == 1
