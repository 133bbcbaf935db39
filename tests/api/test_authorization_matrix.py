"""Every route × every caller → the expected status, generated from the app's route table.

The rule for a route comes from the app itself: the ``allowed_roles`` that
``require_role(...)`` leaves on its dependency, or membership in ``PUBLIC_ROUTES``. A route
with neither fails ``test_every_route_has_a_rule``; a route without a sample request in
``SAMPLES`` fails too, so a new route cannot slip in untested.

Callers: no key, a key nobody issued, a revoked key, an ``hris`` key, an ``integration`` key,
a participant token bound to *another* person, and an ``admin`` key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import routing

from app.auth import create_key
from app.db import session_scope
from app.main import create_app
from app.settings import Settings
from tests.api.people_payloads import batch_item, person_payload
from tests.api.db_snapshot import differences, snapshot
from tests.conftest import bearer, make_key

CALLERS = ("none", "bad_key", "revoked_key", "hris", "integration", "participant_of_other", "admin")
UNAUTHENTICATED = {"none", "bad_key", "revoked_key"}
CALLER_ROLE = {"hris": "hris", "integration": "integration", "participant_of_other": "participant", "admin": "admin"}

# Open to anyone, by design: probes for load balancers, scraping, the API's own description.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # open unless KIZUNA_METRICS_TOKEN is set (tests/api/test_observability.py)
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}

STRANGER = "stranger"  # the person the participant token belongs to
ROUND_DATE = "2026-11-18"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class World:
    """Objects created by ``seed`` that sample requests act on; each writer gets its own."""

    target: str  # a mentee, the person the requests are about
    mentor: str
    spare_key_id: str
    program_id: int | None = None
    round_id: int | None = None  # a completed, unpublished round
    webhook_id: str | None = None


@dataclass(frozen=True)
class Sample:
    """A request that succeeds for an allowed caller, and its success status."""

    path: Callable[[World], str]
    ok: int
    body: Callable[[World], Any] | None = None
    # Status for a participant token of another person when the route admits participants:
    # someone else's data is "not found", never "forbidden" (it does not reveal existence).
    participant_of_other: int = 404


# A literal public address: accepted by the SSRF guard without a DNS lookup. Nothing is
# delivered in these tests (the round runner, which also sends webhooks, is off).
WEBHOOK = {"url": "https://93.184.215.14/hooks/kizuna", "events": ["round.published"]}


def _program(w: World, tail: str = "") -> str:
    return f"/v1/programs/{w.program_id}{tail}"


SAMPLES: dict[tuple[str, str], Sample] = {
    ("POST", "/v1/api-keys"): Sample(lambda w: "/v1/api-keys", 201, lambda w: {"name": "new", "role": "hris"}),
    ("GET", "/v1/api-keys"): Sample(lambda w: "/v1/api-keys", 200),
    ("DELETE", "/v1/api-keys/{key_id}"): Sample(lambda w: f"/v1/api-keys/{w.spare_key_id}", 204),
    ("PUT", "/v1/people/{external_id}"): Sample(lambda w: f"/v1/people/{w.target}", 200, lambda w: person_payload(w.target)),
    ("POST", "/v1/people/batch"): Sample(lambda w: "/v1/people/batch", 200, lambda w: {"people": [batch_item("b1")]}),
    ("GET", "/v1/people"): Sample(lambda w: "/v1/people", 200),
    ("GET", "/v1/people/{external_id}"): Sample(lambda w: f"/v1/people/{w.target}", 200),
    ("PATCH", "/v1/people/{external_id}"): Sample(lambda w: f"/v1/people/{w.target}", 200, lambda w: {"title": "Lead"}),
    ("DELETE", "/v1/people/{external_id}"): Sample(lambda w: f"/v1/people/{w.target}", 204),
    ("POST", "/v1/programs"): Sample(lambda w: "/v1/programs", 201, lambda w: {"name": "Another program"}),
    ("GET", "/v1/programs"): Sample(lambda w: "/v1/programs", 200),
    ("GET", "/v1/programs/{program_id}"): Sample(lambda w: _program(w), 200),
    ("PATCH", "/v1/programs/{program_id}"): Sample(lambda w: _program(w), 200, lambda w: {"name": "Renamed"}),
    ("DELETE", "/v1/programs/{program_id}"): Sample(lambda w: _program(w), 204),
    ("PUT", "/v1/programs/{program_id}/enrollments/{external_id}"): Sample(
        lambda w: _program(w, f"/enrollments/{w.target}"), 200, lambda w: {"role": "mentee"}
    ),
    ("POST", "/v1/programs/{program_id}/enrollments/batch"): Sample(
        lambda w: _program(w, "/enrollments/batch"), 200, lambda w: {"enrollments": [{"external_id": w.target, "role": "mentee"}]}
    ),
    ("GET", "/v1/programs/{program_id}/enrollments"): Sample(lambda w: _program(w, "/enrollments"), 200),
    ("GET", "/v1/programs/{program_id}/enrollments/{external_id}"): Sample(lambda w: _program(w, f"/enrollments/{w.target}"), 200),
    ("DELETE", "/v1/programs/{program_id}/enrollments/{external_id}"): Sample(lambda w: _program(w, f"/enrollments/{w.target}"), 204),
    ("POST", "/v1/programs/{program_id}/rounds"): Sample(lambda w: _program(w, "/rounds"), 202, lambda w: {"round_date": ROUND_DATE}),
    ("GET", "/v1/programs/{program_id}/rounds"): Sample(lambda w: _program(w, "/rounds"), 200),
    ("GET", "/v1/rounds/{round_id}"): Sample(lambda w: f"/v1/rounds/{w.round_id}", 200),
    ("GET", "/v1/rounds/{round_id}/matches"): Sample(lambda w: f"/v1/rounds/{w.round_id}/matches", 200),
    ("GET", "/v1/rounds/{round_id}/unmatched"): Sample(lambda w: f"/v1/rounds/{w.round_id}/unmatched", 200),
    ("POST", "/v1/rounds/{round_id}/publish"): Sample(lambda w: f"/v1/rounds/{w.round_id}/publish", 200),
    ("POST", "/v1/rounds/{round_id}/discard"): Sample(lambda w: f"/v1/rounds/{w.round_id}/discard", 200),
    ("GET", "/v1/people/{external_id}/pairings"): Sample(lambda w: f"/v1/people/{w.target}/pairings", 200),
    ("POST", "/v1/people/{external_id}/tokens"): Sample(lambda w: f"/v1/people/{w.target}/tokens", 201),
    # The token's own pairings: there is no "other person" in this path.
    ("GET", "/v1/me/pairings"): Sample(lambda w: "/v1/me/pairings", 200, participant_of_other=200),
    ("POST", "/v1/webhooks"): Sample(lambda w: "/v1/webhooks", 201, lambda w: WEBHOOK),
    ("GET", "/v1/webhooks"): Sample(lambda w: "/v1/webhooks", 200),
    ("GET", "/v1/webhooks/{webhook_id}"): Sample(lambda w: f"/v1/webhooks/{w.webhook_id}", 200),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Sample(lambda w: f"/v1/webhooks/{w.webhook_id}", 204),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Sample(lambda w: f"/v1/webhooks/{w.webhook_id}/deliveries", 200),
}


@dataclass(frozen=True)
class RouteRule:
    method: str
    path: str
    allowed_roles: tuple[str, ...] | None  # None: no require_role dependency

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def _dependencies(dependant: Any) -> Any:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def route_rules(app: Any) -> list[RouteRule]:
    """One rule per (method, path) of the app, read from the route table."""
    rules: list[RouteRule] = []
    for route in routing.iter_route_contexts(app.routes):
        roles: tuple[str, ...] | None = None
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            found = [sub.call.allowed_roles for sub in _dependencies(dependant) if hasattr(sub.call, "allowed_roles")]
            if found:
                # Several role dependencies on one route would all have to pass.
                roles = tuple(sorted(set.intersection(*(set(r) for r in found))))
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                rules.append(RouteRule(method, route.path, roles))
    return rules


RULES = route_rules(create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")))
ROUTE_KEYS = {rule.key for rule in RULES}


def expected_status(rule: RouteRule, caller: str) -> int:
    if rule.key in PUBLIC_ROUTES:
        return 200
    if caller in UNAUTHENTICATED:
        return 401
    assert rule.allowed_roles is not None
    if CALLER_ROLE[caller] not in rule.allowed_roles:
        return 403
    sample = SAMPLES[rule.key]
    return sample.participant_of_other if caller == "participant_of_other" else sample.ok


def test_every_route_has_a_rule() -> None:
    unruled = [r.key for r in RULES if r.allowed_roles is None and r.key not in PUBLIC_ROUTES]
    assert not unruled, f"routes without require_role(...) and not listed as public: {unruled}"
    protected_public = [r.key for r in RULES if r.allowed_roles is not None and r.key in PUBLIC_ROUTES]
    assert not protected_public, f"listed as public but guarded by a role: {protected_public}"
    unsampled = [r.key for r in RULES if r.key not in PUBLIC_ROUTES and r.key not in SAMPLES]
    assert not unsampled, f"add a sample request to SAMPLES for: {unsampled}"
    assert len(RULES) >= 15


def test_the_rule_table_is_what_the_design_says() -> None:
    """Spot checks that the generated rules are the intended ones, not just self-consistent."""
    rules = {rule.key: rule.allowed_roles for rule in RULES}
    assert rules[("GET", "/v1/people")] == ("admin", "hris")
    assert rules[("POST", "/v1/api-keys")] == ("admin",)
    if ("GET", "/v1/people/{external_id}/pairings") in rules:
        assert rules[("GET", "/v1/people/{external_id}/pairings")] == ("admin", "integration", "participant")
        assert rules[("GET", "/v1/me/pairings")] == ("participant",)
    for key, roles in rules.items():
        if key[1].startswith(("/v1/programs", "/v1/rounds", "/v1/webhooks", "/v1/api-keys")):
            assert roles == ("admin",), key


async def _participant_token(app: Any, person: str) -> dict[str, str]:
    async with session_scope(app.state.sessionmaker) as session:
        _, secret = await create_key(session, name="participant", role="participant", person_external_id=person)
    return bearer(secret)


async def _revoked_key(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    created = (await client.post("/v1/api-keys", json={"name": "old", "role": "admin"}, headers=admin)).json()
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=admin)).status_code == 204
    return bearer(created["secret"])


async def credentials(app: Any, client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    await _expect(client, "PUT", f"/v1/people/{STRANGER}", admin, 201, person_payload(STRANGER))
    return {
        "none": {},
        "bad_key": bearer("kz_" + "x" * 43),
        "revoked_key": await _revoked_key(client, admin),
        "hris": await make_key(client, "hris"),
        "integration": await make_key(client, "integration"),
        "participant_of_other": await _participant_token(app, STRANGER),
        "admin": admin,
    }


async def _expect(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], status: int, body: Any = None) -> Any:
    response = await client.request(method, url, json=body, headers=headers)
    assert response.status_code == status, f"seeding {method} {url}: {response.status_code} {response.text[:300]}"
    return response.json() if response.content else None


async def seed(app: Any, client: httpx.AsyncClient, admin: dict[str, str], n: int) -> World:
    """People, a spare key and (once the rounds API exists) a program with a completed round."""
    target, mentor = f"target-{n}", f"mentor-{n}"
    await _expect(client, "PUT", f"/v1/people/{target}", admin, 201, person_payload(target, level=5, department="Sales"))
    await _expect(client, "PUT", f"/v1/people/{mentor}", admin, 201, person_payload(mentor, level=9))
    spare = await _expect(client, "POST", "/v1/api-keys", admin, 201, {"name": "spare", "role": "integration"})
    webhook_id = None
    if ("POST", "/v1/webhooks") in ROUTE_KEYS:
        webhook_id = (await _expect(client, "POST", "/v1/webhooks", admin, 201, WEBHOOK))["id"]
    if ("POST", "/v1/programs") not in ROUTE_KEYS:
        return World(target=target, mentor=mentor, spare_key_id=spare["id"], webhook_id=webhook_id)

    from app.runner import RoundRunner  # with the rounds API

    program = await _expect(client, "POST", "/v1/programs", admin, 201, {"name": f"Program {n}"})
    enrolments = [{"external_id": target, "role": "mentee"}, {"external_id": mentor, "role": "mentor"}]
    await _expect(client, "POST", f"/v1/programs/{program['id']}/enrollments/batch", admin, 200, {"enrollments": enrolments})
    round_ = await _expect(client, "POST", f"/v1/programs/{program['id']}/rounds", admin, 202, {"round_date": ROUND_DATE})
    settings = app.state.settings.model_copy(update={"runner_executor": "thread"})
    result = await RoundRunner(app.state.sessionmaker, settings, owner="matrix").run_once()
    assert result is not None and result.outcome == "completed", result
    return World(
        target=target, mentor=mentor, spare_key_id=spare["id"], program_id=program["id"], round_id=round_["id"], webhook_id=webhook_id
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Rounds are run by the test itself, never by a background runner.
    return settings.model_copy(update={"runner": "off"}) if "runner" in Settings.model_fields else settings


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.method} {r.path}" for r in RULES])
async def test_route_answers_each_caller_as_its_rule_says(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], rule: RouteRule
) -> None:
    """Refused callers first, on one shared world, checking that nothing was stored; then each
    admitted caller, on a world of its own when the request writes."""
    keys = await credentials(app, client, admin)
    shared = await seed(app, client, admin, 0)
    sample = SAMPLES.get(rule.key)
    writes = rule.method not in SAFE_METHODS
    refused = [c for c in CALLERS if expected_status(rule, c) >= 400]
    admitted = [c for c in CALLERS if c not in refused]

    for caller in refused:
        before = await snapshot(app) if writes else None
        await _check(client, rule, sample, shared, caller, keys[caller])
        if before is not None:
            assert differences(before, await snapshot(app)) == {}, f"{rule.method} {rule.path} as {caller} changed data"
    for n, caller in enumerate(admitted, start=1):
        world = await seed(app, client, admin, n) if writes else shared
        await _check(client, rule, sample, world, caller, keys[caller])


async def _check(
    client: httpx.AsyncClient, rule: RouteRule, sample: Sample | None, world: World, caller: str, headers: dict[str, str]
) -> None:
    path = sample.path(world) if sample else rule.path
    body = sample.body(world) if sample and sample.body else None
    response = await client.request(rule.method, path, json=body, headers=headers)
    expected = expected_status(rule, caller)
    assert response.status_code == expected, f"{rule.method} {path} as {caller}: {response.status_code} {response.text[:300]}"
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == expected
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_erasing_a_person_revokes_their_participant_tokens(
    client: httpx.AsyncClient, admin: dict[str, str], integration: dict[str, str]
) -> None:
    """Found by Schemathesis: a token outlived its person's erasure and answered 404 on /v1/me."""
    await _expect(client, "PUT", "/v1/people/leaver", admin, 201, person_payload("leaver"))
    if ("POST", "/v1/people/{external_id}/tokens") not in ROUTE_KEYS:
        pytest.skip("no participant tokens yet")
    token = bearer((await _expect(client, "POST", "/v1/people/leaver/tokens", integration, 201))["token"])
    assert (await client.get("/v1/me/pairings", headers=token)).status_code == 200
    assert (await client.delete("/v1/people/leaver", headers=admin)).status_code == 204
    response = await client.get("/v1/me/pairings", headers=token)
    assert response.status_code == 401, response.text
    assert (await client.get("/v1/people/leaver/pairings", headers=token)).status_code == 401
