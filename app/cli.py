"""The ``kizuna`` command: serve the API, run workers, migrate, manage keys, run a demo.

Every command is configured by the environment (``KIZUNA_*``, see ``app/settings.py``), the
same way the container is, so ``kizuna keys create`` in a shell next to a running service
talks to the same database the service does.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from enum import Enum
from typing import Annotated

import typer
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from app import __version__
from app.logging_setup import configure_logging, logging_config
from app.settings import Settings

app = typer.Typer(
    name="kizuna",
    help=(
        "Kizuna: mentor–mentee matching service.\n\n"
        "Configuration comes from KIZUNA_* environment variables (or a .env file); "
        "KIZUNA_DATABASE_URL picks the database (a SQLite file by default)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    # A traceback's local variables would include database URLs with passwords, and API keys.
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(
    help=(
        "Create, list and revoke API keys directly in the database: for the first key of an "
        "installation and for break-glass access. Day to day, use POST /v1/api-keys."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys_app, name="keys")

# An arbitrary, fixed key for pg_advisory_lock: replicas starting together migrate one at a time.
MIGRATION_LOCK_KEY = 0x6B697A756E61  # "kizuna"


class KeyRole(str, Enum):
    admin = "admin"
    hris = "hris"
    integration = "integration"


def load_settings() -> Settings:
    """Fresh settings from the environment (not the cached ones: tests change the environment)."""
    settings = Settings()
    from app.db import ensure_sqlite_directory

    ensure_sqlite_directory(settings.database_url)
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def migration_lock(database_url: str):  # type: ignore[no-untyped-def]
    """On PostgreSQL, hold an advisory lock while migrating, so that several API replicas
    starting at once do not race on the same DDL: the first migrates, the others wait and
    find the schema at head. SQLite needs no lock (one host, and DDL takes the file lock)."""
    from app.migrations import sync_url

    if not database_url.startswith("postgresql"):
        yield
        return
    engine = create_sync_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


def run_migrations(settings: Settings, revision: str = "head", *, down: bool = False) -> None:
    from app import migrations

    with migration_lock(settings.database_url):
        if down:
            migrations.downgrade(settings.database_url, revision)
        else:
            migrations.upgrade(settings.database_url, revision)


def database_revision(settings: Settings) -> str | None:
    from app.migrations import sync_url

    engine = create_sync_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as connection:
            try:
                row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            except (OperationalError, ProgrammingError):
                return None
            return row[0] if row else None
    finally:
        engine.dispose()


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kizuna {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Kizuna: mentor–mentee matching service."""


# --- serve -------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="KIZUNA_HOST", help="Interface to listen on; 0.0.0.0 in a container.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="KIZUNA_PORT", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            envvar="KIZUNA_WORKERS",
            min=1,
            help=(
                "Server processes. Prefer 1 per container and more replicas: each process keeps "
                "its own request metrics."
            ),
        ),
    ] = 1,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate/--no-migrate",
            envvar="KIZUNA_MIGRATE_ON_START",
            help="Upgrade the database schema to head before serving (default). Safe with several replicas on PostgreSQL (advisory lock).",
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="KIZUNA_FORWARDED_ALLOW_IPS",
            help="Proxies trusted for X-Forwarded-For/-Proto (comma-separated IPs, or * behind a trusted load balancer).",
        ),
    ] = "127.0.0.1",
    graceful_timeout: Annotated[
        int,
        typer.Option(
            envvar="KIZUNA_GRACEFUL_TIMEOUT", min=1, help="Seconds given to in-flight requests on SIGTERM."
        ),
    ] = 20,
) -> None:
    """Run the HTTP API (uvicorn), after migrating the database unless --no-migrate."""
    import uvicorn

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if migrate:
        run_migrations(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Applied again in every worker process uvicorn spawns: JSON lines everywhere.
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,  # the request middleware logs each request with its id and route
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=graceful_timeout,
    )


# --- migrate -----------------------------------------------------------------------------


@app.command()
def migrate(
    revision: Annotated[
        str,
        typer.Option("--revision", "-r", help="Target revision: 'head' (default), a revision id like 0002, or 'base'."),
    ] = "head",
    downgrade: Annotated[
        bool,
        typer.Option(
            "--downgrade",
            help="Go down to --revision instead of up (an explicit --revision is required; 'base' drops everything).",
        ),
    ] = False,
) -> None:
    """Upgrade (or with --downgrade, downgrade) the database schema with Alembic."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, stream="stderr")
    if downgrade and revision == "head":
        raise fail("--downgrade needs an explicit --revision (for example 0001, or base)", 2)
    before = database_revision(settings)
    run_migrations(settings, revision, down=downgrade)
    after = database_revision(settings)
    typer.echo(f"database schema: {before or 'empty'} -> {after or 'empty'}")


# --- keys --------------------------------------------------------------------------------


async def _with_session(settings: Settings, work, *, write: bool = True):  # type: ignore[no-untyped-def]
    from app.db import create_engine, create_sessionmaker, session_scope

    engine = create_engine(settings)
    try:
        async with session_scope(create_sessionmaker(engine), write=write) as session:
            return await work(session)
    finally:
        await engine.dispose()


def _run_db(settings: Settings, work, *, write: bool = True):  # type: ignore[no-untyped-def]
    try:
        return asyncio.run(_with_session(settings, work, write=write))
    except (OperationalError, ProgrammingError) as exc:
        raise fail(
            f"the database is not reachable or not migrated ({type(exc).__name__}); run `kizuna migrate` first"
        ) from exc


@keys_app.command("create")
def keys_create(
    role: Annotated[KeyRole, typer.Option(help="What the key may do: admin, hris (push people) or integration (read pairings).")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by (e.g. 'workday sync').")],
) -> None:
    """Create an API key and print its secret once, alone on stdout (details go to stderr).

    Example: KEY=$(kizuna keys create --role admin --name ops)
    """
    from app.auth import create_key

    if not name.strip() or len(name) > 200:
        raise fail("--name must be 1 to 200 characters", 2)
    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        return await create_key(session, name=name.strip(), role=role.value)

    key, secret = _run_db(settings, work)
    typer.echo(f"created {key.role} key {key.id} ({key.name!r}); the secret below is shown only now:", err=True)
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List API keys (id, role, name, secret prefix, dates); never their secrets."""
    from app.models import ApiKey

    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        query = select(ApiKey).where(ApiKey.role != "participant").order_by(ApiKey.created_at, ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return list((await session.execute(query)).scalars())

    keys = _run_db(settings, work, write=False)
    if not keys:
        typer.echo("no keys", err=True)
        return
    rows = [("ID", "ROLE", "NAME", "PREFIX", "CREATED", "REVOKED")]
    for key in keys:
        rows.append(
            (
                key.id,
                key.role,
                key.name,
                key.prefix + "…",
                key.created_at.strftime("%Y-%m-%d %H:%M"),
                key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The id of the key (from `kizuna keys list`).")]) -> None:
    """Revoke an API key: running servers refuse it within KIZUNA_AUTH_CACHE_SECONDS (5 s by
    default; at once in the process that revokes it). Revocation cannot be undone."""
    from app.auth import revoke_key

    settings = load_settings()
    if not _run_db(settings, lambda session: revoke_key(session, key_id)):
        raise fail(f"no active API key {key_id!r}")
    typer.echo(f"revoked {key_id}")


# --- worker ------------------------------------------------------------------------------


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM (docker stop, Kubernetes) and SIGINT (Ctrl-C) ask the loops to finish the
    current unit of work and exit; a second signal is not needed."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread, or Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))


@app.command()
def worker(
    metrics_port: Annotated[
        int,
        typer.Option(
            envvar="KIZUNA_WORKER_METRICS_PORT",
            min=0,
            max=65535,
            help="Serve this worker's Prometheus metrics (round duration, solver time, webhook deliveries) on this port; 0 = off.",
        ),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(envvar="KIZUNA_WORKER_METRICS_HOST", help="Interface for --metrics-port.")
    ] = "0.0.0.0",
) -> None:
    """Run matching rounds and deliver webhooks until SIGTERM or SIGINT.

    Start as many as you like against one PostgreSQL database: each round and each webhook
    delivery is claimed by exactly one of them (FOR UPDATE SKIP LOCKED, with a lease).
    """
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    asyncio.run(run_worker_process(settings))


async def run_worker_process(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The round runner and the webhook deliverer side by side until ``stop`` (or a signal).
    If either loop dies, the other is stopped too, and the process exits with the error so
    the orchestrator restarts it."""
    from app.runner import run_worker
    from app.webhook_delivery import run_deliverer
    from app.webhooks import install_round_event_hook

    install_round_event_hook()  # rounds this worker finishes record their webhook deliveries
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    tasks = [
        asyncio.create_task(run_worker(settings, stop), name="kizuna-round-worker"),
        asyncio.create_task(run_deliverer(settings, stop), name="kizuna-webhook-deliverer"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


# --- demo --------------------------------------------------------------------------------


class Relationship(str, Enum):
    traditional = "traditional"
    reverse = "reverse"
    peer = "peer"


@app.command()
def demo(
    mentees: Annotated[int, typer.Option(min=1, max=100_000, help="Mentees in the synthetic organisation.")] = 300,
    mentors: Annotated[int, typer.Option(min=1, max=100_000, help="Mentors (capacity 1–3 each).")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same organisation.")] = 7,
    relationship: Annotated[
        Relationship, typer.Option(help="The program's kind of mentoring.")
    ] = Relationship.traditional,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="KIZUNA_DEMO_URL",
            help="Base URL of a running service (e.g. http://127.0.0.1:8000). Without it the app runs in this process on a temporary database.",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="KIZUNA_DEMO_KEY", help="Admin API key for --url (e.g. from `kizuna keys create --role admin`)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="People and enrolments per batch request.")] = 500,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the round to finish.")] = 300.0,
    publish: Annotated[bool, typer.Option("--publish", help="Publish the round at the end (pairings become visible).")] = False,
) -> None:
    """Push a realistic synthetic organisation through the HTTP API, run a matching round and
    print a summary: coverage, mean score, cross-functional share, mean shared hours, top
    reasons, and who was left unmatched and why.

    Example: kizuna demo --mentees 2000 --mentors 800
    """
    from app.demo import DemoError, DemoOptions, in_process_client, remote_client, run_demo, summary

    if url and not key:
        raise fail("--url needs --key (an admin API key)", 2)
    options = DemoOptions(
        mentees=mentees, mentors=mentors, seed=seed, relationship=relationship.value,
        batch_size=batch_size, timeout_seconds=timeout, publish=publish,
    )  # fmt: skip

    async def go():  # type: ignore[no-untyped-def]
        client = remote_client(url, key) if url else in_process_client()  # type: ignore[arg-type]
        async with client as http:
            return await run_demo(http, options, progress=lambda line: typer.echo(line, err=True))

    try:
        result = asyncio.run(go())
    except DemoError as exc:
        raise fail(str(exc)) from exc
    except httpx_errors() as exc:
        raise fail(f"cannot reach {url}: {exc}") from exc
    typer.echo(summary(result))


def httpx_errors() -> tuple[type[Exception], ...]:
    import httpx

    return (httpx.TransportError,)


def main() -> None:
    app(prog_name="kizuna")


if __name__ == "__main__":
    main()
