"""Prometheus metrics.

Two kinds:
- events counted by the process that sees them (HTTP requests, rounds run, solver time,
  webhook deliveries): counters and histograms on the default registry. The API exposes
  them at ``/metrics``; a ``kizuna worker`` exposes its own on ``--metrics-port``.
- state that lives in the database (people, rounds by status): gauges refreshed from the
  database when ``/metrics`` is scraped, at most once per ``DB_GAUGE_TTL_SECONDS``, so
  every replica reports the same truth and a scrape costs two small GROUP BY queries.

Labels are bounded: route *templates* (never raw paths), status codes, enum values.
Nothing personal is ever a label.
"""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import Unauthorized
from app.models import Person

log = logging.getLogger("kizuna.metrics")

DB_GAUGE_TTL_SECONDS = 10.0

# Latency buckets for an API whose answers are mostly a few milliseconds, with a tail
# for batch upserts of 1,000 people.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A round runs from well under a second (a few hundred people) to minutes.
ROUND_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

HTTP_REQUESTS = Counter(
    "kizuna_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
)
HTTP_LATENCY = Histogram(
    "kizuna_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method, route template and status.",
    ("method", "route", "status"),
    buckets=HTTP_BUCKETS,
)
PEOPLE = Gauge(
    "kizuna_people",
    "People stored, by state (active, inactive, erased); read from the database at scrape time.",
    ("state",),
)
ROUNDS = Gauge(
    "kizuna_rounds",
    "Matching rounds by status; read from the database at scrape time.",
    ("status",),
)
ROUNDS_FINISHED = Counter(
    "kizuna_rounds_finished_total",
    "Rounds this process ran to an end, by outcome (completed, failed).",
    ("outcome",),
)
ROUND_DURATION = Histogram(
    "kizuna_round_duration_seconds",
    "Wall time of a round run (load, solve, store) in this process, by outcome.",
    ("outcome",),
    buckets=ROUND_BUCKETS,
)
SOLVER_SECONDS = Histogram(
    "kizuna_solver_seconds",
    "Time spent in the matching solver per round, by solver status (optimal, feasible, …).",
    ("solver_status",),
    buckets=ROUND_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "kizuna_webhook_delivery_attempts_total",
    "Webhook delivery attempts, by outcome (delivered, failed, refused).",
    ("outcome",),
)
WEBHOOK_DELIVERY_LATENCY = Histogram(
    "kizuna_webhook_delivery_duration_seconds",
    "Time a webhook endpoint took to answer a delivery attempt.",
    buckets=HTTP_BUCKETS,
)

PEOPLE_STATES = ("active", "inactive", "erased")
ROUND_STATUSES = ("queued", "running", "completed", "failed", "published", "discarded")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    code = str(status)
    HTTP_REQUESTS.labels(method, route, code).inc()
    HTTP_LATENCY.labels(method, route, code).observe(seconds)


def observe_round_finished(
    outcome: str, seconds: float, *, solver_seconds: float | None = None, solver_status: str | None = None
) -> None:
    """Called by the round runner once a round has completed or failed."""
    ROUNDS_FINISHED.labels(outcome).inc()
    ROUND_DURATION.labels(outcome).observe(seconds)
    if solver_seconds is not None:
        SOLVER_SECONDS.labels(solver_status or "unknown").observe(solver_seconds)


def observe_webhook_attempt(outcome: str, seconds: float | None = None) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    if seconds is not None:
        WEBHOOK_DELIVERY_LATENCY.observe(seconds)


class DatabaseGauges:
    """Refreshes the database-backed gauges, at most once per TTL per process."""

    def __init__(self, ttl_seconds: float = DB_GAUGE_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._refreshed_at = float("-inf")

    async def refresh(self, engine: AsyncEngine) -> None:
        now = time.monotonic()
        if now - self._refreshed_at < self.ttl_seconds:
            return
        self._refreshed_at = now
        try:
            async with engine.connect() as connection:
                await self._refresh_people(connection)
                await self._refresh_rounds(connection)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("could not refresh database gauges", extra={"error": type(exc).__name__})

    @staticmethod
    async def _refresh_people(connection) -> None:  # type: ignore[no-untyped-def]
        # Three conditional counts in one pass over the table.
        query = select(
            func.count().filter(Person.erased_at.is_(None), Person.active.is_(True)),
            func.count().filter(Person.erased_at.is_(None), Person.active.is_(False)),
            func.count().filter(Person.erased_at.is_not(None)),
        )
        active, inactive, erased = (await connection.execute(query)).one()
        PEOPLE.labels("active").set(active)
        PEOPLE.labels("inactive").set(inactive)
        PEOPLE.labels("erased").set(erased)

    @staticmethod
    async def _refresh_rounds(connection) -> None:  # type: ignore[no-untyped-def]
        # The rounds table arrives with its own migration; until then there is nothing to count.
        try:
            rows = (await connection.execute(text("SELECT status, count(*) FROM rounds GROUP BY status"))).all()
        except Exception:
            await connection.rollback()
            return
        counts = dict.fromkeys(ROUND_STATUSES, 0)
        counts.update({status: count for status, count in rows})
        for status, count in counts.items():
            ROUNDS.labels(status).set(count)


router = APIRouter(tags=["operations"])


def _check_metrics_token(request: Request) -> None:
    token = request.app.state.settings.metrics_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("This endpoint needs `Authorization: Bearer <KIZUNA_METRICS_TOKEN>`.")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics. Open unless KIZUNA_METRICS_TOKEN is set; then a bearer token."""
    _check_metrics_token(request)
    gauges: DatabaseGauges = request.app.state.database_gauges
    await gauges.refresh(request.app.state.engine)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
