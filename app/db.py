"""Database engine and the request-owned session.

SQLite is the embedded default: WAL journal, foreign keys on, and write transactions
started with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing
with SQLITE_BUSY halfway through. PostgreSQL (psycopg 3) is the production database.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from app.settings import Settings

# Whether the transaction about to begin on SQLite may write. Reads run as deferred
# transactions so they never wait on the writer lock (WAL gives them a snapshot).
sqlite_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sqlite_write_intent", default=True
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0


def ensure_sqlite_directory(url: str) -> None:
    """A fresh clone has no ./data yet: create the SQLite file's directory before anything
    (Alembic included) opens the database."""
    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event, not the driver, start transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")


def _install_idle_ping(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it sat idle for ``IDLE_PING_SECONDS``.

    SQLAlchemy's ``pool_pre_ping`` pings on *every* checkout: one more round trip (a
    ``SELECT 1`` on a cursor of its own, and its share of PostgreSQL's CPU) for every request.
    A connection in steady use has just proven itself; the ones worth checking are those that
    sat in the pool while PostgreSQL restarted or something between dropped idle connections. A failed ping hands out a fresh
    connection instead (``DisconnectionError``). A connection that breaks while in use fails
    its request with 503, and SQLAlchemy then replaces every connection opened before it."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["kizuna_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.pop("kizuna_idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # just connected, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # As pool_pre_ping does: after a server restart every older pooled connection is
            # dead too, so all of them are replaced, not one failed ping at a time.
            raise InvalidatePoolError("the pooled connection did not answer a ping") from exc


def on_commit(session: AsyncSession | Session, key: str, callback: Callable[[], None]) -> None:
    """Run ``callback`` once after the session's current transaction commits. Calls with the
    same ``key`` before that commit register it once."""
    if session.info.get(key):
        return
    session.info[key] = True

    def fire(committed: Session) -> None:
        committed.info.pop(key, None)
        callback()

    target = session.sync_session if isinstance(session, AsyncSession) else session
    event.listen(target, "after_commit", fire, once=True)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, echo=settings.db_echo, hide_parameters=True)
        _install_sqlite_hooks(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        hide_parameters=True,  # error messages would otherwise quote names and e-mails into logs
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
    )
    _install_idle_ping(engine)  # survive a PostgreSQL restart without restarting the service
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only requests. On PostgreSQL they run in autocommit mode: no
    BEGIN/COMMIT round trips on the hot read paths (pairings, status polls); each statement
    still sees a consistent snapshot. SQLite reads are already cheap deferred transactions."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return create_sessionmaker(engine)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession], *, write: bool = True
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    token = sqlite_write_intent.set(write)
    try:
        async with sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    finally:
        sqlite_write_intent.reset(token)
