from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from app.db import session_scope
from app.models import ApiKey
from tests.api.rounds_support import setup_program, trigger
from tests.conftest import bearer


async def _published(client: httpx.AsyncClient, admin, hris, runner) -> int:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    await runner.run_once()
    assert (await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200
    return program_id


async def test_admin_reads_pairings_too(client: httpx.AsyncClient, admin, hris, runner) -> None:
    await _published(client, admin, hris, runner)
    items = (await client.get("/v1/people/alice/pairings", headers=admin)).json()["items"]
    assert [(p["role"], p["counterpart"]["external_id"]) for p in items] == [("mentor", "dana")]
    assert set(items[0]) >= {"id", "program", "role", "counterpart", "score", "reasons", "overlap", "status", "published_at"}
    assert set(items[0]["counterpart"]) >= {"external_id", "display_name", "email", "title", "department", "time_zone"}


async def test_hris_cannot_read_pairings(client: httpx.AsyncClient, admin, hris, runner) -> None:
    await _published(client, admin, hris, runner)
    assert (await client.get("/v1/people/alice/pairings", headers=hris)).status_code == 403
    assert (await client.post("/v1/people/alice/tokens", headers=hris)).status_code == 403


async def test_erased_counterpart_shows_no_personal_data(client: httpx.AsyncClient, admin, hris, integration, runner) -> None:
    await _published(client, admin, hris, runner)
    assert (await client.delete("/v1/people/dana", headers=hris)).status_code == 204
    [pairing] = (await client.get("/v1/people/alice/pairings", headers=integration)).json()["items"]
    assert pairing["counterpart"] == {
        "external_id": "dana", "display_name": None, "email": None, "title": None,
        "department": None, "time_zone": None, "erased": True,
    }  # fmt: skip
    assert pairing["status"] == "ended"  # nobody is left waiting for an erased mentor
    # Explanations quoted dana's goals, hours and department: they are gone too.
    assert pairing["reasons"] == ["explanation removed: a participant's personal data was erased"]
    assert pairing["overlap"]["windows"] == []
    # The erased person themselves is gone.
    assert (await client.get("/v1/people/dana/pairings", headers=integration)).status_code == 404


async def test_tokens(client: httpx.AsyncClient, app, admin, hris, integration, runner) -> None:
    await _published(client, admin, hris, runner)
    assert (await client.post("/v1/people/ghost/tokens", headers=integration)).status_code == 404
    response = await client.post("/v1/people/eli/tokens", headers=admin)
    assert response.status_code == 201
    token = response.json()
    expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    eli = bearer(token["token"])
    assert [p["counterpart"]["external_id"] for p in (await client.get("/v1/me/pairings", headers=eli)).json()["items"]] == ["bruno"]
    # A participant token is not a key for anything else.
    assert (await client.post("/v1/people/eli/tokens", headers=eli)).status_code == 403
    assert (await client.get("/v1/people/eli", headers=eli)).status_code == 403
    assert (await client.get("/v1/programs", headers=eli)).status_code == 403
    # Participant tokens are not listed among API keys.
    keys = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    assert all(k["role"] != "participant" for k in keys)

    # Expired: unauthorised.
    async with session_scope(app.state.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.role == "participant").values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    # Changed behind the app's back: this process sees it once its cached principal lapses
    # (KIZUNA_AUTH_CACHE_SECONDS); a real token simply reaches its expiry, which the cache honours.
    app.state.principal_cache.clear()
    assert (await client.get("/v1/me/pairings", headers=eli)).status_code == 401


async def test_token_lifetime_is_configurable(client: httpx.AsyncClient, app, admin, hris) -> None:
    await client.put("/v1/people/solo", json={"display_name": "Solo", "level": 3, "time_zone": "UTC"}, headers=hris)
    app.state.settings = app.state.settings.model_copy(update={"participant_token_ttl_seconds": 300})
    token = (await client.post("/v1/people/solo/tokens", headers=admin)).json()
    expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(seconds=300)
    assert (await client.get("/v1/me/pairings", headers=bearer(token["token"]))).json() == {"items": [], "next_cursor": None}


async def test_pairings_paginate(client: httpx.AsyncClient, admin, hris, integration, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    # With alice blocked for dana, ines mentors both dana and fumi.
    response = await trigger(client, admin, program_id, {"blocks": [{"mentor": "alice", "mentee": "dana"}]})
    await runner.run_once()
    assert (await client.post(f"/v1/rounds/{response.json()['id']}/publish", headers=admin)).status_code == 200
    first = (await client.get("/v1/people/ines/pairings", params={"limit": 1}, headers=integration)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = (await client.get("/v1/people/ines/pairings", params={"cursor": first["next_cursor"]}, headers=integration)).json()
    assert rest["next_cursor"] is None
    assert sorted(p["counterpart"]["external_id"] for p in first["items"] + rest["items"]) == ["dana", "fumi"]
    assert (await client.get("/v1/people/ines/pairings", params={"cursor": "bad"}, headers=integration)).status_code == 422



async def test_publishing_skips_people_erased_or_made_inactive_after_the_round(
    client: httpx.AsyncClient, admin, hris, integration, runner
) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    await runner.run_once()
    assert (await client.delete("/v1/people/dana", headers=hris)).status_code == 204
    assert (await client.patch("/v1/people/eli", json={"active": False}, headers=hris)).status_code == 200
    assert (await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200
    assert (await client.get("/v1/people/alice/pairings", headers=integration)).json()["items"] == []
    assert (await client.get("/v1/people/bruno/pairings", headers=integration)).json()["items"] == []
