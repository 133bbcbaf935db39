"""Request ids, JSON access logs and Prometheus metrics, seen from a client."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.logging_setup import JsonFormatter
from app.main import create_app
from app.settings import Settings
from tests.api.people_payloads import person_payload

EMAIL = "hana.sato@example.com"


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.fixture
async def app_client_factory(settings: Settings):  # type: ignore[no-untyped-def]
    """An app built from changed settings, or with an extra route, plus its client."""
    stack: list = []

    async def make(
        *, raise_app_exceptions: bool = True, extra_route=None, **changes: object  # type: ignore[no-untyped-def]
    ) -> httpx.AsyncClient:
        application = create_app(settings.model_copy(update=changes))
        if extra_route is not None:
            application.add_api_route(*extra_route)
        lifespan = application.router.lifespan_context(application)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=raise_app_exceptions)
        http = httpx.AsyncClient(transport=transport, base_url="http://kizuna.test")
        stack.append((lifespan, http))
        return http

    yield make
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


# --- request id ------------------------------------------------------------------------------


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    rid = "7f3c1a9e-2b4d-4e8f-9a6b-0c1d2e3f4a5b"
    response = await client.get("/healthz", headers={"X-Request-ID": rid})
    assert response.headers["x-request-id"] == rid


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "x" * 129, 'quote"d', "new\\nline", "ünïcode"],
)
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": bad.encode("utf-8")})  # type: ignore[dict-item]
    rid = response.headers["x-request-id"]
    assert rid != bad and len(rid) == 32 and int(rid, 16) >= 0


async def test_each_request_without_an_id_gets_a_new_one(client: httpx.AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert first != second


async def test_error_answers_carry_the_request_id(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    cases = [
        await client.get("/v1/people", headers={"X-Request-ID": "r-401"}),  # no key
        await client.get("/no/such/path", headers={"X-Request-ID": "r-404"}),
        await client.put("/v1/people/p1", json={"level": "high"}, headers={**admin, "X-Request-ID": "r-422"}),
        await client.post(
            "/v1/people/batch",
            content=b"{}",
            headers={**admin, "X-Request-ID": "r-413", "Content-Length": str(50 * 1024 * 1024)},
        ),
    ]
    assert [(r.status_code, r.headers.get("x-request-id")) for r in cases] == [
        (401, "r-401"),
        (404, "r-404"),
        (422, "r-422"),
        (413, "r-413"),
    ]


async def test_a_500_carries_the_request_id_and_is_counted(app_client_factory) -> None:  # type: ignore[no-untyped-def]
    async def boom() -> None:
        raise RuntimeError("bug")

    http = await app_client_factory(raise_app_exceptions=False, extra_route=("/test-boom", boom))
    before = sample(await scrape(http), "kizuna_http_requests_total", route="/test-boom", status="500")
    response = await http.get("/test-boom", headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "r-500"
    after = sample(await scrape(http), "kizuna_http_requests_total", route="/test-boom", status="500")
    assert after == before + 1


# --- JSON logs -------------------------------------------------------------------------------


async def test_each_request_logs_one_json_line_with_its_id_and_no_personal_data(
    client: httpx.AsyncClient, hris: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    payload = person_payload("hana@corp", display_name="Hana Sato", email=EMAIL)
    caplog.clear()
    # At the production level for everything, and at DEBUG for the service's own loggers.
    with caplog.at_level(logging.INFO), caplog.at_level(logging.DEBUG, logger="kizuna"):
        response = await client.put("/v1/people/hana@corp", json=payload, headers={**hris, "X-Request-ID": "req-42"})
    assert response.status_code == 201, response.text

    # (httpx here is the test's client, not the service, whose config silences httpx below WARNING.)
    lines = [JsonFormatter().format(r) for r in caplog.records if not r.name.startswith("httpx")]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "kizuna.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == ("PUT", "/v1/people/{external_id}", 201)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert {"ts", "level", "logger", "msg"} <= line.keys() and line["ts"].endswith("Z")
    for text in lines:
        assert "\n" not in text
        for secret in ("Hana Sato", EMAIL, "hana@corp"):
            assert secret not in text


def test_the_formatter_keeps_only_allowed_extra_fields() -> None:
    record = logging.LogRecord("kizuna.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.route = "/v1/x"
    record.email = EMAIL  # a field nobody allowed: dropped
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "hello world" and entry["route"] == "/v1/x" and entry["request_id"] == "abc"
    assert "email" not in entry


def test_exceptions_are_logged_on_one_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord("kizuna.test", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["exc_type"] == "ValueError" and "broken" in entry["exc"]


# --- metrics ---------------------------------------------------------------------------------


async def test_request_metrics_move_by_route_template_and_status(
    client: httpx.AsyncClient, hris: dict[str, str]
) -> None:
    labels = {"method": "GET", "route": "/v1/people/{external_id}", "status": "404"}
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/v1/people/{EMAIL}", headers=hris)).status_code == 404
    after = await scrape(client)
    assert sample(after, "kizuna_http_requests_total", **labels) == sample(before, "kizuna_http_requests_total", **labels) + 3
    count = "kizuna_http_request_duration_seconds_count"
    assert sample(after, count, **labels) == sample(before, count, **labels) + 3
    assert EMAIL not in after  # raw paths never become labels


async def test_people_gauge_reads_the_database(client: httpx.AsyncClient, hris: dict[str, str]) -> None:
    for external_id in ("g1", "g2", "g3"):
        response = await client.put(f"/v1/people/{external_id}", json=person_payload(external_id), headers=hris)
        assert response.status_code == 201, response.text
    assert (await client.delete("/v1/people/g3", headers=hris)).status_code == 204
    text = await scrape(client)
    assert sample(text, "kizuna_people", state="active") == 2
    assert sample(text, "kizuna_people", state="erased") == 1


async def test_metrics_are_open_by_default(client: httpx.AsyncClient) -> None:
    text = await scrape(client)
    assert "kizuna_http_requests_total" in text and "kizuna_round_duration_seconds" in text


async def test_metrics_token_when_configured(app_client_factory) -> None:  # type: ignore[no-untyped-def]
    http = await app_client_factory(metrics_token="scrape-me-0123456789")
    denied = await http.get("/metrics")
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    await scrape(http, Authorization="Bearer scrape-me-0123456789")


async def test_round_metrics_move_when_a_round_runs(client: httpx.AsyncClient, admin, hris, runner) -> None:  # type: ignore[no-untyped-def]
    from tests.api.rounds_support import setup_program, trigger

    before = await scrape(client)
    program_id = await setup_program(client, admin, hris)
    assert (await trigger(client, admin, program_id)).status_code == 202
    result = await runner.run_once()
    assert result is not None and result.outcome == "completed"
    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.database_gauges.ttl_seconds = 0  # read the database again on this scrape
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("kizuna_rounds_finished_total", outcome="completed") == 1
    assert delta("kizuna_round_duration_seconds_count", outcome="completed") == 1
    assert delta("kizuna_round_duration_seconds_sum", outcome="completed") > 0
    assert delta("kizuna_solver_seconds_count", solver_status="optimal") == 1
    assert sample(after, "kizuna_rounds", status="completed") == 1
    assert sample(after, "kizuna_rounds", status="queued") == 0
    assert sample(after, "kizuna_people", state="active") == 9  # the sample organisation, minus inactive hana
