"""Edge inputs found in review: each is a clear 422 and stores nothing."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from tests.api.rounds_support import setup_program


@pytest.mark.parametrize("description", ["line one\x00", "evil\u202etxt.exe", "bell\x07"])
async def test_program_descriptions_refuse_control_characters(
    client: httpx.AsyncClient, admin: dict[str, str], description: str
) -> None:
    response = await client.post("/v1/programs", json={"name": "P", "description": description}, headers=admin)
    assert response.status_code == 422, response.text
    assert (await client.get("/v1/programs", headers=admin)).json()["items"] == []


async def test_program_description_keeps_line_breaks(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/v1/programs", json={"name": "P", "description": "Goals:\n\t- grow"}, headers=admin)
    assert response.status_code == 201
    assert response.json()["description"] == "Goals:\n\t- grow"


@pytest.mark.parametrize("days", [-4000, 4000])
async def test_round_dates_far_from_today_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], hris: dict[str, str], days: int
) -> None:
    program_id = await setup_program(client, admin, hris)
    far = (date.today() + timedelta(days=days)).isoformat()
    response = await client.post(f"/v1/programs/{program_id}/rounds", json={"round_date": far}, headers=admin)
    assert response.status_code == 422, response.text
    assert (await client.get(f"/v1/programs/{program_id}/rounds", headers=admin)).json()["items"] == []
    for extreme in ("0001-01-01", "9999-12-31"):
        response = await client.post(
            f"/v1/programs/{program_id}/rounds",
            json={"round_date": extreme, "pins": [{"mentor": "alice", "mentee": "dana"}]},
            headers=admin,
        )
        assert response.status_code == 422, response.text
