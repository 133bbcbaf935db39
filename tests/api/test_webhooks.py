"""Webhooks: registration, the SSRF guard, the outbox, signed deliveries, retries.

Deliveries go to a real HTTP receiver listening on 127.0.0.1 (an asyncio server in this
module), so that the signing, the guarded transport and the retry bookkeeping are exercised
over a socket, and are verified with the ``standardwebhooks`` library's own verifier.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from app.db import session_scope
from app.rounds import store_failure
from app.runner import RoundRunner
from app.settings import Settings
from app.ssrf import forbidden_reason
from app.webhook_delivery import WebhookDeliverer, retry_delay
from tests.api.rounds_support import setup_program, trigger
from tests.api.webhook_receiver import receiver_factory  # noqa: F401  (a fixture)
from tests.conftest import bearer, http_client, started

# --- app fixtures: webhooks to loopback need KIZUNA_WEBHOOK_ALLOW_PRIVATE --------------------------


@pytest.fixture
def private_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_private": True, "webhook_retry_base_seconds": 0.05, "webhook_timeout_seconds": 5}
    )


@pytest.fixture
async def local_app(private_settings: Settings) -> AsyncIterator[object]:
    async with started(private_settings) as application:
        yield application


@pytest.fixture
async def local(local_app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(local_app) as http:
        yield http


@pytest.fixture
async def local_hris(local: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    response = await local.post("/v1/api-keys", json={"name": "hris", "role": "hris"}, headers=admin)
    return bearer(response.json()["secret"])


@pytest.fixture
def local_runner(local_app, private_settings: Settings) -> RoundRunner:  # type: ignore[no-untyped-def]
    return RoundRunner(local_app.state.sessionmaker, private_settings, owner="test-webhooks")


@pytest.fixture
async def deliverer(local_app, private_settings: Settings) -> AsyncIterator[WebhookDeliverer]:  # type: ignore[no-untyped-def]
    d = WebhookDeliverer(local_app.state.sessionmaker, private_settings)
    yield d
    await d.client.aclose()


async def register(http: httpx.AsyncClient, admin: dict[str, str], url: str, *events: str) -> dict:  # type: ignore[type-arg]
    response = await http.post(
        "/v1/webhooks", json={"url": url, "events": list(events) or ["round.completed"]}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(http: httpx.AsyncClient, admin: dict[str, str], webhook_id: str) -> list[dict]:  # type: ignore[type-arg]
    response = await http.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def completed_round(http, admin, hris, runner: RoundRunner) -> int:  # type: ignore[no-untyped-def]
    program_id = await setup_program(http, admin, hris)
    round_id = (await trigger(http, admin, program_id)).json()["id"]
    result = await runner.run_once()
    assert result is not None and result.outcome == "completed", result
    return round_id


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- registration ------------------------------------------------------------------------------


async def test_register_list_get_delete(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.216.34/hooks", "events": ["round.published", "round.completed", "round.published"],
              "description": "HR portal"},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
    assert created["events"] == ["round.completed", "round.published"]
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24

    listed = (await client.get("/v1/webhooks", headers=admin)).json()
    assert [w["id"] for w in listed["items"]] == [created["id"]] and listed["next_cursor"] is None
    assert "secret" not in listed["items"][0]
    one = (await client.get(f"/v1/webhooks/{created['id']}", headers=admin)).json()
    assert one["description"] == "HR portal" and "secret" not in one

    assert (await client.delete(f"/v1/webhooks/{created['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1/webhooks/{created['id']}", headers=admin)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{created['id']}", headers=admin)).status_code == 404


async def test_webhooks_are_for_admins_only(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    body = {"url": "https://93.184.216.34/hooks", "events": ["round.completed"]}
    assert (await client.post("/v1/webhooks", json=body, headers=hris)).status_code == 403
    assert (await client.get("/v1/webhooks", headers=hris)).status_code == 403
    assert (await client.post("/v1/webhooks", json=body)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://93.184.216.34/x", "events": ["round.completed"]},
        {"url": "https:///nohost", "events": ["round.completed"]},
        {"url": "https://93.184.216.34/ x", "events": ["round.completed"]},
        {"url": "https://93.184.216.34/", "events": []},
        {"url": "https://93.184.216.34/", "events": ["round.discarded"]},
        {"url": "https://93.184.216.34/", "events": ["round.completed"], "secret": "mine"},
    ],
)
async def test_invalid_registrations_are_422(client: httpx.AsyncClient, admin: dict[str, str], body: dict) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/webhooks", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://172.16.5.5/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "http://100.64.0.1/x",
        "http://no-such-host.invalid/x",
    ],
)
async def test_ssrf_guard_refuses_non_public_destinations(
    client: httpx.AsyncClient, admin: dict[str, str], url: str
) -> None:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ["round.completed"]}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("url: ")


def test_address_policy() -> None:
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert forbidden_reason(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")) is None
    assert forbidden_reason(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert forbidden_reason(ipaddress.ip_address("::ffff:10.0.0.1")) == "private"
    # 6to4 and Teredo addresses embed an IPv4 address: the embedded one decides.
    assert forbidden_reason(ipaddress.ip_address("2002:7f00:1::1")) == "loopback"
    assert forbidden_reason(ipaddress.ip_address("2002:a9fe:a9fe::1")) == "link-local"
    assert forbidden_reason(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:f5ff:fffe")) == "private"
    assert forbidden_reason(ipaddress.ip_address("169.254.169.254")) == "link-local"


async def test_private_destinations_allowed_when_configured(local: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await register(local, admin, "http://127.0.0.1:9/x")
    await register(local, admin, "http://localhost:9/x")


# --- delivery --------------------------------------------------------------------------------------


async def test_delivery_is_signed_and_retried_until_it_succeeds(
    local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(500, 204)
    webhook = await register(local, admin, receiver.url, "round.completed")
    failed_before = counter("kizuna_webhook_delivery_attempts_total", outcome="failed")
    delivered_before = counter("kizuna_webhook_delivery_attempts_total", outcome="delivered")

    # The round completes without waiting for the webhook: the delivery is only recorded.
    round_id = await completed_round(local, admin, local_hris, local_runner)
    assert receiver.requests == []
    [pending] = await deliveries(local, admin, webhook["id"])
    assert pending["status"] == "pending" and pending["attempts"] == [] and pending["event_type"] == "round.completed"

    assert await deliverer.run_once() == 1  # first attempt: the receiver answers 500
    [after_first] = await deliveries(local, admin, webhook["id"])
    assert after_first["status"] == "pending"
    assert [(a["number"], a["outcome"], a["status_code"]) for a in after_first["attempts"]] == [(1, "failed", 500)]
    assert await deliverer.run_once() == 0  # not due yet: backoff

    await asyncio.sleep(0.1)  # past the first backoff (0.05 s + jitter)
    assert await deliverer.run_once() == 1
    [done] = await deliveries(local, admin, webhook["id"])
    assert done["status"] == "delivered" and done["finished_at"] and done["next_attempt_at"] is None
    assert [(a["outcome"], a["status_code"]) for a in done["attempts"]] == [("failed", 500), ("delivered", 204)]
    assert await deliverer.run_once() == 0

    # Both tries: the same message id, each verifiable with the library and the secret.
    assert len(receiver.requests) == 2
    verifier = Webhook(webhook["secret"])
    for request in receiver.requests:
        assert request.headers["webhook-id"] == done["id"]
        assert request.headers["content-type"] == "application/json"
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "round.completed"
        assert payload["data"]["round_id"] == round_id and payload["data"]["status"] == "completed"
        assert payload["data"]["stats"]["matched_mentees"] == 3
    assert receiver.requests[0].body == receiver.requests[1].body
    # No personal data in the payload: ids and numbers only.
    text = receiver.requests[0].body.decode()
    assert "@example.com" not in text and "Alice" not in text

    assert counter("kizuna_webhook_delivery_attempts_total", outcome="failed") == failed_before + 1
    assert counter("kizuna_webhook_delivery_attempts_total", outcome="delivered") == delivered_before + 1


async def test_a_tampered_or_foreign_signature_does_not_verify(
    local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(204)
    webhook = await register(local, admin, receiver.url)
    other = await register(local, admin, receiver.url.replace("/hooks/", "/other/"), "round.published")
    await completed_round(local, admin, local_hris, local_runner)
    await deliverer.run_once()
    [request] = receiver.requests
    with pytest.raises(Exception):
        Webhook(other["secret"]).verify(request.body, request.headers)
    with pytest.raises(Exception):
        Webhook(webhook["secret"]).verify(request.body.replace(b"completed", b"published"), request.headers)


async def test_attempts_stop_at_the_cap(
    local_app, local: httpx.AsyncClient, admin, local_hris, local_runner, private_settings, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(503)
    webhook = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)
    capped = WebhookDeliverer(
        local_app.state.sessionmaker,
        private_settings.model_copy(update={"webhook_max_attempts": 3, "webhook_retry_base_seconds": 0.01}),
    )
    try:
        for _ in range(40):
            await capped.run_once()
            [delivery] = await deliveries(local, admin, webhook["id"])
            if delivery["status"] != "pending":
                break
            await asyncio.sleep(0.03)
    finally:
        await capped.client.aclose()
    assert delivery["status"] == "failed"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503]
    assert len(receiver.requests) == 3


async def test_subscriptions_filter_events_and_failures_are_sent(
    local_app, local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(204)
    published_only = await register(local, admin, receiver.url, "round.published")
    failures = await register(local, admin, receiver.url, "round.failed")

    round_id = await completed_round(local, admin, local_hris, local_runner)
    assert await deliveries(local, admin, published_only["id"]) == []
    assert (await local.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200
    [published] = await deliveries(local, admin, published_only["id"])
    assert published["event_type"] == "round.published"

    # A round that fails (here: the runner stores a failure for its claim) sends round.failed.
    program_id = (await local.get(f"/v1/rounds/{round_id}", headers=admin)).json()["program_id"]
    second = (await trigger(local, admin, program_id)).json()["id"]
    claim = await local_runner.claim()
    assert claim is not None and claim.round_id == second
    async with session_scope(local_app.state.sessionmaker) as session:
        error = {"type": "about:blank", "title": "Solver error", "status": 500, "detail": "boom"}
        assert await store_failure(session, claim, error)
    [failed] = await deliveries(local, admin, failures["id"])
    assert failed["event_type"] == "round.failed"

    assert await deliverer.run_once() == 2
    types = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert types == ["round.failed", "round.published"]
    failure = next(json.loads(r.body) for r in receiver.requests if b"round.failed" in r.body)
    assert failure["data"]["error"]["detail"] == "boom" and failure["data"]["round_id"] == second


async def test_the_guard_applies_again_at_delivery_time(
    local_app, local: httpx.AsyncClient, admin, local_hris, local_runner, private_settings, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    """Registered while private addresses were allowed (or while DNS said "public"); the
    deliverer checks the address it connects to, and refuses."""
    receiver = await receiver_factory(204)
    webhook = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)
    strict = WebhookDeliverer(
        local_app.state.sessionmaker, private_settings.model_copy(update={"webhook_allow_private": False})
    )
    refused_before = counter("kizuna_webhook_delivery_attempts_total", outcome="refused")
    try:
        assert await strict.run_once() == 1
    finally:
        await strict.client.aclose()
    [delivery] = await deliveries(local, admin, webhook["id"])
    [attempt] = delivery["attempts"]
    assert attempt["outcome"] == "refused" and "loopback" in attempt["error"]
    assert delivery["status"] == "pending"  # retried later, in case DNS changes back
    assert receiver.requests == []
    assert counter("kizuna_webhook_delivery_attempts_total", outcome="refused") == refused_before + 1


async def test_deleting_an_endpoint_drops_its_deliveries(
    local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(204)
    webhook = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)
    assert (await local.delete(f"/v1/webhooks/{webhook['id']}", headers=admin)).status_code == 204
    assert await deliverer.run_once() == 0
    assert receiver.requests == []


async def test_redirects_are_not_followed(
    local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    receiver = await receiver_factory(307)
    webhook = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)
    await deliverer.run_once()
    [delivery] = await deliveries(local, admin, webhook["id"])
    assert [(a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [("failed", 307)]
    assert len(receiver.requests) == 1


async def test_the_api_process_delivers_in_the_background(
    private_settings: Settings, admin: dict[str, str], receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    """With the in-process runner on, a triggered round ends in a delivered webhook with no
    other help: runner → outbox → deliverer, woken by the commit."""
    receiver = await receiver_factory(204)
    async with started(private_settings.model_copy(update={"runner": "inprocess"})) as application:
        async with http_client(application) as http:
            hris = bearer(
                (await http.post("/v1/api-keys", json={"name": "h", "role": "hris"}, headers=admin)).json()["secret"]
            )
            await register(http, admin, receiver.url)
            program_id = await setup_program(http, admin, hris)
            assert (await trigger(http, admin, program_id)).status_code == 202
            await asyncio.wait_for(receiver.got_one.wait(), timeout=20)
    assert json.loads(receiver.requests[0].body)["type"] == "round.completed"


def test_retry_delays_grow_and_are_capped() -> None:
    delays = [retry_delay(n, 5.0, jitter=0) for n in range(1, 10)]
    assert delays[:4] == [5.0, 15.0, 45.0, 135.0]
    assert delays[-1] == 3600.0
    assert all(5.0 <= retry_delay(1, 5.0) <= 5.5 for _ in range(50))
