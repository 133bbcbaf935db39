"""Schemathesis against the app's own OpenAPI document: every operation, in process (ASGI).

Checks: no 5xx, responses match their declared schema, every status code is documented,
auth is enforced where declared (``ignored_auth``), and object-level authorization between
two participants as peers: a participant token never reads the other's pairings.

The database is seeded with a published round, so generated path parameters hit real
objects about half the time (``flatmap_path_parameters`` below) instead of always 404.
Generation is derandomized and bounded so CI time stays predictable.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import ignored_auth, response_schema_conformance, status_code_conformance

from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.runner import RoundRunner
from app.settings import Settings
from tests.api.people_payloads import person_payload
from tests.conftest import ADMIN_SECRET, bearer, wipe

MAX_EXAMPLES = 25  # per operation; ~37 operations → about a thousand requests per database
ROUND_DATE = "2026-11-18"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, ignored_auth]


@dataclass
class Seeded:
    """What the fuzzed database holds; path parameters are drawn from here half the time."""

    people: list[str] = field(default_factory=list)
    program_ids: list[int] = field(default_factory=list)
    round_ids: list[int] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    participants: dict[str, dict[str, str]] = field(default_factory=dict)  # external id → bearer header
    pairing_ids: dict[str, set[int]] = field(default_factory=dict)  # external id → their pairing ids


SEEDED = Seeded()
# Two participants who are peers: each has a published pairing; neither may see the other's.
PEER_A, PEER_B = "mentee-a", "mentee-b"


def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in statuses, f"seeding: {response.status_code} {response.text[:300]}"
    return response.json() if response.content else None


def _run_queued_round(app_settings: Settings) -> None:
    """Run the queued round with a runner of our own (the fuzzed app's runner is off)."""

    async def run() -> None:
        engine = create_engine(app_settings)
        try:
            runner = RoundRunner(create_sessionmaker(engine), app_settings, owner="schemathesis-seed")
            result = await runner.run_once()
            assert result is not None and result.outcome == "completed", result
        finally:
            await engine.dispose()

    asyncio.run(run())


def seed(app: Any, app_settings: Settings) -> None:
    with asgi.get_client(app) as client:  # `with`: runs the app's lifespan
        _seed_with(client, app_settings)


def _seed_with(client: Any, app_settings: Settings) -> None:
    admin = bearer(ADMIN_SECRET)
    people = {
        "mentor-a": person_payload("mentor-a", level=9, department="Engineering"),
        "mentor-b": person_payload("mentor-b", level=9, department="Engineering"),
        PEER_A: person_payload(PEER_A, level=5, department="Sales"),
        PEER_B: person_payload(PEER_B, level=5, department="Sales"),
    }
    for external_id, body in people.items():
        _ok(client.put(f"http://{asgi.HOST}/v1/people/{external_id}", json=body, headers=admin), 201)
    SEEDED.people = list(people)
    program = _ok(client.post(f"http://{asgi.HOST}/v1/programs", json={"name": "Fuzzed"}, headers=admin), 201)
    SEEDED.program_ids = [program["id"]]
    enrolments = [
        {"external_id": "mentor-a", "role": "mentor", "capacity": 1},
        {"external_id": "mentor-b", "role": "mentor", "capacity": 1},
        {"external_id": PEER_A, "role": "mentee"},
        {"external_id": PEER_B, "role": "mentee"},
    ]
    url = f"http://{asgi.HOST}/v1/programs/{program['id']}"
    _ok(client.post(f"{url}/enrollments/batch", json={"enrollments": enrolments}, headers=admin), 200)
    published = _ok(client.post(f"{url}/rounds", json={"round_date": ROUND_DATE}, headers=admin), 202)
    _run_queued_round(app_settings)
    _ok(client.post(f"http://{asgi.HOST}/v1/rounds/{published['id']}/publish", headers=admin), 200)
    draft = _ok(client.post(f"{url}/rounds", json={"round_date": ROUND_DATE}, headers=admin), 202)
    _run_queued_round(app_settings)
    SEEDED.round_ids = [published["id"], draft["id"]]
    for peer in (PEER_A, PEER_B):
        token = _ok(client.post(f"http://{asgi.HOST}/v1/people/{peer}/tokens", headers=admin), 201)
        SEEDED.participants[peer] = bearer(token["token"])
        pairings = _ok(client.get(f"http://{asgi.HOST}/v1/people/{peer}/pairings", headers=admin), 200)["items"]
        assert pairings, f"{peer} should have a published pairing to protect"
        SEEDED.pairing_ids[peer] = {p["id"] for p in pairings}
    spare = _ok(client.post(f"http://{asgi.HOST}/v1/api-keys", json={"name": "spare", "role": "hris"}, headers=admin), 201)
    SEEDED.key_ids = [spare["id"]]


def _app_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, bootstrap_admin_key=ADMIN_SECRET, runner="off", runner_executor="thread")


# Built at import so Schemathesis can parametrize at collection time (its lazy fixture loader
# does not work with pytest 9); the database is only chosen, and reached, by the fixture below.
APP = create_app(_app_settings("sqlite+aiosqlite:///:memory:"))


@pytest.fixture(autouse=True)
def fuzzed_database(database_url: str) -> None:
    """A fresh seeded world for each operation: what one operation deletes, the next still has."""
    wipe(database_url)
    APP.state.settings = _app_settings(database_url)  # read by the lifespan when it starts
    seed(APP, APP.state.settings)


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the time, swap generated ids for ones that exist, so handlers get past "not found"."""
    if not path_parameters:
        return st.just(path_parameters)
    existing = {
        "external_id": SEEDED.people,
        "program_id": SEEDED.program_ids,
        "round_id": SEEDED.round_ids,
        "key_id": SEEDED.key_ids,
    }
    swaps = {name: st.sampled_from(existing[name]) for name in path_parameters if existing.get(name)}
    if not swaps:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries(swaps).map(lambda new: {**path_parameters, **new}))


schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # requests go to the app in process (ASGI)
schema.hook(flatmap_path_parameters)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run: a failure in CI reproduces locally
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its reproduction anyway
)


def _credentials_for(case: Any) -> dict[str, str]:
    if case.path.startswith("/v1/me/"):
        return SEEDED.participants[PEER_A]
    return bearer(ADMIN_SECRET)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_conforms(case: Any) -> None:
    # Generated Authorization headers would replace the key; send a real one (ignored_auth
    # then probes the operation without and with a bad key on its own).
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.call_and_validate(headers=_credentials_for(case), checks=CHECKS)


@schemathesis.check
def peers_never_see_each_other(ctx: Any, response: Any, case: Any) -> bool | None:
    """Object-level authorization between two participants: the token's owner may read only
    their own pairings; any other person's are 404 (existence is not revealed either)."""
    owner = case.headers.get("X-Test-Peer") if case.headers else None
    if case.method != "GET":
        return None  # other methods on these paths are 405 for everyone
    if owner is None or response.status_code >= 400:
        if owner is not None and case.path == "/v1/people/{external_id}/pairings" and response.status_code not in (404, 422):
            raise AssertionError(f"expected 404 for another person's pairings, got {response.status_code}")
        return None
    other = PEER_B if owner == PEER_A else PEER_A
    if case.path == "/v1/people/{external_id}/pairings":
        assert case.path_parameters["external_id"] == owner, f"{owner} read {case.path_parameters['external_id']}'s pairings"
    items = response.json()["items"]
    leaked = {item["id"] for item in items} & SEEDED.pairing_ids[other]
    assert not leaked, f"{owner}'s token read {other}'s pairings {sorted(leaked)}"
    assert all(item["counterpart"]["external_id"] != owner for item in items)
    return None


@schema.include(path_regex=r"pairings$", method="GET").parametrize()
@settings(FUZZ_SETTINGS, max_examples=40)
def test_participants_are_peers_who_cannot_read_each_other(case: Any) -> None:
    """Each generated request is sent once with each peer's token."""
    generated = dict(case.path_parameters or {})
    for peer in (PEER_A, PEER_B):
        other = PEER_B if peer == PEER_A else PEER_A
        case.path_parameters = dict(generated)
        if "external_id" in generated and generated["external_id"] in SEEDED.people:
            # Aim half of the in-world ids at the other peer, the case that matters most.
            if zlib.crc32(generated["external_id"].encode()) % 2:
                case.path_parameters["external_id"] = other
        case.headers = {**SEEDED.participants[peer], "X-Test-Peer": peer}
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, peers_never_see_each_other])
        if case.path == "/v1/me/pairings" and response.status_code == 200:
            assert {item["id"] for item in response.json()["items"]} <= SEEDED.pairing_ids[peer]
