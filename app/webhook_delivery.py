"""Sending the webhook outbox: claim due deliveries, POST them signed, record each attempt,
retry with exponential backoff up to ``KIZUNA_WEBHOOK_MAX_ATTEMPTS``.

Runs in every process that runs rounds (the API with ``KIZUNA_RUNNER=inprocess``, and each
``kizuna worker``); any number can share one database. A claim is a short lease written on
the row (``next_attempt_at`` pushed past the HTTP timeout) under ``FOR UPDATE SKIP LOCKED``
on PostgreSQL (SQLite serialises writers), so two deliverers never send the same attempt; a
deliverer that dies mid-attempt leaves a row that becomes due again when its lease lapses.
Delivery is therefore at least once: receivers de-duplicate on ``webhook-id``.

Outgoing connections go through the SSRF guard (``app/ssrf.py``); redirects are not followed;
the receiver's answer body is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.db import create_engine, create_sessionmaker, session_scope
from app.metrics import observe_webhook_attempt
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.settings import Settings
from app.ssrf import guarded_transport
from app.webhooks import register_waker, signed_headers, unregister_waker

log = logging.getLogger("kizuna.webhooks")

MAX_RETRY_DELAY_SECONDS = 3600.0
CLAIM_SLACK_SECONDS = 30.0  # a claim outlives the HTTP timeout by this much
ERROR_MAX_LENGTH = 500


def retry_delay(attempts_made: int, base_seconds: float, *, jitter: float = 0.1) -> float:
    """Wait after the n-th failed attempt: base, 3×base, 9×base, … capped at an hour, plus up
    to 10 % jitter so endpoints that failed together are not retried in lockstep."""
    delay = min(base_seconds * 3 ** (attempts_made - 1), MAX_RETRY_DELAY_SECONDS)
    return delay * (1 + random.uniform(0, jitter))


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: int
    message_id: str
    endpoint_id: str
    event_type: str
    body: str
    url: str
    secret: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: str  # delivered | failed | refused
    status_code: int | None
    error: str | None
    seconds: float


class WebhookDeliverer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_seconds: float = 1.0,
        batch_size: int = 20,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.client = httpx.AsyncClient(
            transport=transport or guarded_transport(allow_private=settings.webhook_allow_private),
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": f"Kizuna-Webhooks/{__version__}"},
        )
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- one cycle ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Send every delivery due now (up to a batch); the number attempted.

        Each attempt runs concurrently and records its own outcome as soon as it ends, so a
        slow endpoint delays no other; each is cut off at ``webhook_timeout_seconds`` in all
        (see ``attempt``), so the batch ends within that bound plus the time to record.
        """
        jobs = await self.claim()
        await asyncio.gather(*(self.deliver(job) for job in jobs))
        return len(jobs)

    async def claim(self) -> list[Job]:
        async with session_scope(self.sessionmaker) as session:
            now = utcnow()
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)  # type: ignore[operator]
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = list((await session.execute(query)).scalars())
            if not rows:
                return []
            endpoint_ids = {row.endpoint_id for row in rows}
            endpoints = {
                e.id: e
                for e in (
                    await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids)))  # type: ignore[attr-defined]
                ).scalars()
            }
            lease_until = now + timedelta(seconds=self.settings.webhook_timeout_seconds + CLAIM_SLACK_SECONDS)
            jobs: list[Job] = []
            for row in rows:
                if row.attempts >= self.settings.webhook_max_attempts:
                    # The last attempt's deliverer died before recording it: give up as if it failed.
                    self._finish(row, "failed", now)
                    row.last_error = row.last_error or "no outcome recorded for the last attempt"
                    continue
                row.attempts += 1
                row.next_attempt_at = lease_until
                endpoint = endpoints[row.endpoint_id]
                jobs.append(
                    Job(
                        delivery_id=row.id,  # type: ignore[arg-type]
                        message_id=row.message_id,
                        endpoint_id=row.endpoint_id,
                        event_type=row.event_type,
                        body=row.body,
                        url=endpoint.url,
                        secret=endpoint.secret,
                        attempt=row.attempts,
                    )
                )
            return jobs

    async def deliver(self, job: Job) -> AttemptResult:
        started_at = utcnow()
        result = await self.attempt(job)
        observe_webhook_attempt(result.outcome, result.seconds if result.status_code is not None else None)
        extra = {
            "webhook_id": job.endpoint_id,
            "delivery_id": job.message_id,
            "event_type": job.event_type,
            "attempt": job.attempt,
            "status_code": result.status_code,
            "outcome": result.outcome,
        }
        if result.outcome == "delivered":
            log.info("webhook delivered", extra=extra)
        else:
            log.warning("webhook attempt %s: %s", result.outcome, result.error, extra=extra)
        try:
            await self.record(job, result, started_at)
        except Exception:  # the claim lapses and the delivery is retried: at least once
            log.exception("could not record a webhook attempt", extra=extra)
        return result

    async def attempt(self, job: Job) -> AttemptResult:
        """POST one delivery. httpx's ``timeout`` bounds each network operation only, so a
        receiver trickling its answer a byte at a time could hold an attempt indefinitely (and
        outlive its claim, letting another deliverer re-send): the whole request — resolve,
        connect, send, response head, close — has one total deadline as well."""
        headers = signed_headers(job.secret, job.message_id, int(time.time()), job.body)
        deadline = self.settings.webhook_timeout_seconds
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                # Streamed and closed unread: a receiver's answer body is of no use and could be huge.
                async with self.client.stream("POST", job.url, content=job.body.encode(), headers=headers) as response:
                    status = response.status_code
        except TimeoutError:
            return AttemptResult("failed", None, f"timeout (no response within {deadline:g} s)", time.perf_counter() - started)
        except httpx.ConnectError as exc:
            message = str(exc)
            outcome = "refused" if message.startswith("refused:") else "failed"
            return AttemptResult(outcome, None, _short(message or type(exc).__name__), time.perf_counter() - started)
        except httpx.TimeoutException as exc:
            return AttemptResult("failed", None, f"timeout ({type(exc).__name__})", time.perf_counter() - started)
        except httpx.HTTPError as exc:
            return AttemptResult("failed", None, _short(f"{type(exc).__name__}: {exc}"), time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if 200 <= status < 300:
            return AttemptResult("delivered", status, None, seconds)
        return AttemptResult("failed", status, f"HTTP {status}", seconds)

    async def record(self, job: Job, result: AttemptResult, started_at) -> None:  # type: ignore[no-untyped-def]
        async with session_scope(self.sessionmaker) as session:
            row = await session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
            if row is None or row.status != "pending":
                return  # the endpoint was deleted meanwhile (its deliveries with it)
            if row.attempts != job.attempt:
                # This attempt outlived its claim and a newer one was claimed since: its
                # outcome (and its retry schedule) belongs to that attempt now.
                log.warning(
                    "stale webhook attempt %s dropped (the delivery is at attempt %s)",
                    job.attempt,
                    row.attempts,
                    extra={"webhook_id": job.endpoint_id, "delivery_id": job.message_id, "outcome": result.outcome},
                )
                return
            session.add(
                WebhookAttempt(
                    delivery_id=job.delivery_id,
                    number=job.attempt,
                    outcome=result.outcome,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=round(result.seconds * 1000, 2),
                    started_at=started_at,
                )
            )
            row.last_status_code = result.status_code
            row.last_error = result.error
            now = utcnow()
            if result.outcome == "delivered":
                self._finish(row, "delivered", now)
            elif row.attempts >= self.settings.webhook_max_attempts:
                self._finish(row, "failed", now)
            else:
                delay = retry_delay(row.attempts, self.settings.webhook_retry_base_seconds)
                row.next_attempt_at = now + timedelta(seconds=delay)

    @staticmethod
    def _finish(row: WebhookDelivery, status: str, now) -> None:  # type: ignore[no-untyped-def]
        row.status = status
        row.finished_at = now
        row.next_attempt_at = None

    # -- the loop -----------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        register_waker(self.wake)
        try:
            while not stop.is_set():
                try:
                    attempted = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook delivery cycle failed")
                    attempted = 0
                if attempted == 0:
                    await self._idle(stop)
        finally:
            unregister_waker(self.wake)

    async def _idle(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def start(self) -> None:
        """Run in the background of the current event loop (the API process)."""
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.run_forever(self._stop), name="kizuna-webhook-deliverer")

    async def stop(self) -> None:
        """Let attempts in flight finish (bounded by the HTTP timeout), then close."""
        if self._task is not None and self._stop is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(self._task, self.settings.webhook_timeout_seconds + 5)
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("webhook deliverer stopped with an error")
            self._task = None
        await self.client.aclose()


def _short(text: str) -> str:
    return text if len(text) <= ERROR_MAX_LENGTH else text[: ERROR_MAX_LENGTH - 1] + "…"


async def run_deliverer(settings: Settings, stop: asyncio.Event) -> None:
    """``kizuna worker``'s delivery loop, with its own engine, until ``stop`` is set."""
    engine = create_engine(settings)
    deliverer = WebhookDeliverer(create_sessionmaker(engine), settings)
    try:
        await deliverer.run_forever(stop)
    finally:
        with contextlib.suppress(Exception):
            await deliverer.client.aclose()
        await engine.dispose()
