"""The ASGI application: ``create_app()`` wires settings, database, routers and errors."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import __version__
from app.auth import MIN_BOOTSTRAP_KEY_LENGTH, PrincipalCache, create_key
from app.body_limit import BodyLimitMiddleware
from app.db import create_engine, create_read_sessionmaker, create_sessionmaker, session_scope
from app.errors import install_error_handlers
from app.metrics import DatabaseGauges
from app.metrics import router as metrics_router
from app.middleware import install_request_middleware
from app.models import ApiKey
from app.openapi_doc import install_openapi
from app.routers import api_keys, enrollments, health, pairings, people, programs, rounds
from app.routers import webhooks as webhooks_router
from app.runner import RoundRunner
from app.settings import Settings, get_settings
from app.webhook_delivery import WebhookDeliverer
from app.webhooks import install_round_event_hook

log = logging.getLogger("kizuna")

ROUTERS = (
    health.router, metrics_router, api_keys.router, people.router,
    programs.router, enrollments.router, rounds.router, pairings.router, webhooks_router.router,
)  # fmt: skip


async def ensure_bootstrap_admin_key(app: FastAPI, settings: Settings) -> None:
    """Install KIZUNA_BOOTSTRAP_ADMIN_KEY as an admin key when no active admin key exists yet."""
    secret = settings.bootstrap_admin_key
    if not secret:
        return
    if len(secret) < MIN_BOOTSTRAP_KEY_LENGTH:
        raise RuntimeError(f"KIZUNA_BOOTSTRAP_ADMIN_KEY must be at least {MIN_BOOTSTRAP_KEY_LENGTH} characters")
    try:
        async with session_scope(app.state.sessionmaker) as session:
            query = select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1)
            if (await session.execute(query)).first() is None:
                await create_key(session, name="bootstrap admin", role="admin", secret=secret)
                log.info("installed the bootstrap admin key")
    except IntegrityError:
        # Another replica installed it at the same moment, or this key was revoked before: a
        # revoked key never comes back, and neither case may stop the service from starting.
        log.warning("the bootstrap admin key is already stored (installed by another replica, or revoked)")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine)
    runner: RoundRunner | None = None
    deliverer: WebhookDeliverer | None = None
    try:
        await ensure_bootstrap_admin_key(app, settings)
        if settings.runner == "inprocess":
            runner = app.state.runner = RoundRunner(app.state.sessionmaker, settings)
            runner.start()
            # The process that runs rounds in the background also sends their webhooks.
            deliverer = app.state.webhook_deliverer = WebhookDeliverer(app.state.sessionmaker, settings)
            deliverer.start()
        _freeze_start_up_objects()
        yield
    finally:
        if runner is not None:
            await runner.stop()
        if deliverer is not None:
            await deliverer.stop()
        await engine.dispose()


_frozen = False


def _freeze_start_up_objects() -> None:
    """What exists once the first app has started (modules, routes, schemas, the engine:
    ~200,000 objects) lives as long as the process. Out of the collector's sight it does not
    make every full collection walk it: without this, a full collection stalls every request in
    flight for ~100 ms. Once per process: a server runs one app, and freezing again for every
    app a test process starts would keep each of them alive for good (unfreezing instead makes
    every later start-up collection walk the whole heap: the suite ran twice as long)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Kizuna",
        version=__version__,
        summary="Mentor–mentee matching with a provably optimal, explainable matcher.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database_gauges = DatabaseGauges()
    app.state.principal_cache = PrincipalCache(settings.auth_cache_seconds)
    install_round_event_hook()  # round status changes record webhook deliveries (outbox)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_request_middleware(app)  # outermost: request id, access log, request metrics
    install_openapi(app)
    return app
