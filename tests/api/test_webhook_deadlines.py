"""Webhook attempts have a total deadline, and a late attempt's outcome cannot overwrite a newer one's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from app.db import session_scope
from app.models import WebhookDelivery
from app.models.base import utcnow
from app.settings import Settings
from app.webhook_delivery import AttemptResult, WebhookDeliverer
from tests.api.test_webhooks import (  # noqa: F401  (fixtures)
    completed_round,
    deliveries,
    local,
    local_app,
    local_hris,
    local_runner,
    register,
)
from tests.api.webhook_receiver import receiver_factory  # noqa: F401  (a fixture)

DEADLINE = 1.0


@pytest.fixture
def private_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_private": True, "webhook_retry_base_seconds": 0.05, "webhook_timeout_seconds": DEADLINE}
    )


@pytest.fixture
async def deliverer(local_app, private_settings: Settings) -> AsyncIterator[WebhookDeliverer]:  # type: ignore[no-untyped-def]  # noqa: F811
    d = WebhookDeliverer(local_app.state.sessionmaker, private_settings)
    yield d
    await d.client.aclose()


@pytest.fixture
async def trickler() -> AsyncIterator[str]:
    """A receiver that reads the request, then sends its answer one byte every 0.2 s, forever:
    no single read ever waits as long as httpx's per-operation timeout."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"." * 10_000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks/slow"
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_trickling_receiver_is_cut_off_at_the_deadline_without_delaying_others(
    local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory, trickler  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    slow = await register(local, admin, trickler)
    receiver = await receiver_factory(204)
    fast = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)

    started = time.perf_counter()
    batch = asyncio.create_task(deliverer.run_once())
    # The quick endpoint's delivery is recorded while the slow one is still in flight.
    for _ in range(50):
        [fast_delivery] = await deliveries(local, admin, fast["id"])
        if fast_delivery["status"] == "delivered":
            break
        await asyncio.sleep(0.02)
    assert fast_delivery["status"] == "delivered" and not batch.done()

    attempted = await asyncio.wait_for(batch, DEADLINE + 5)  # before the fix: never returns
    elapsed = time.perf_counter() - started
    assert attempted == 2
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 1.5
    [slow_delivery] = await deliveries(local, admin, slow["id"])
    assert slow_delivery["status"] == "pending"  # retried later, with backoff
    [attempt] = slow_delivery["attempts"]
    assert attempt["number"] == 1 and attempt["outcome"] == "failed" and attempt["status_code"] is None
    assert "timeout" in attempt["error"]


async def test_a_stale_attempt_result_is_dropped(
    local_app, local: httpx.AsyncClient, admin, local_hris, local_runner, deliverer, receiver_factory  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    receiver = await receiver_factory(204)
    webhook = await register(local, admin, receiver.url)
    await completed_round(local, admin, local_hris, local_runner)

    [first] = await deliverer.claim()
    assert first.attempt == 1
    # The first attempt outlives its claim: another deliverer claims attempt 2.
    async with session_scope(local_app.state.sessionmaker) as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == first.delivery_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    [second] = await deliverer.claim()
    assert second.delivery_id == first.delivery_id and second.attempt == 2
    [claimed] = await deliveries(local, admin, webhook["id"])

    # Attempt 1's late failure arrives while attempt 2 is in flight: ignored, the lease of
    # attempt 2 stays (so no third deliverer re-sends meanwhile).
    await deliverer.record(first, AttemptResult("failed", 503, "HTTP 503", 12.0), utcnow())
    [after_stale] = await deliveries(local, admin, webhook["id"])
    assert after_stale["attempts"] == [] and after_stale["status"] == "pending"
    assert after_stale["next_attempt_at"] == claimed["next_attempt_at"]
    assert await deliverer.claim() == []

    await deliverer.record(second, AttemptResult("delivered", 204, None, 0.01), utcnow())
    # ...and a stale result arriving after the newer one was recorded changes nothing either.
    await deliverer.record(first, AttemptResult("failed", 503, "HTTP 503", 12.0), utcnow())
    [done] = await deliveries(local, admin, webhook["id"])
    assert done["status"] == "delivered"
    assert [(a["number"], a["outcome"], a["status_code"]) for a in done["attempts"]] == [(2, "delivered", 204)]
