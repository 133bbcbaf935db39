"""Create or drop a throw-away PostgreSQL database for one test run.

    pgdb.py create ADMIN_URL          -> prints the new database's URL (exit 1 if unreachable)
    pgdb.py drop ADMIN_URL TEST_URL
"""

from __future__ import annotations

import secrets
import sys

import psycopg
from psycopg import sql


def _connect(admin_url: str) -> psycopg.Connection:
    return psycopg.connect(admin_url, autocommit=True, connect_timeout=5)


def create(admin_url: str) -> str:
    name = f"kizuna_test_{secrets.token_hex(4)}"
    try:
        with _connect(admin_url) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        print(f"cannot reach PostgreSQL: {exc}".strip(), file=sys.stderr)
        raise SystemExit(1) from exc
    except psycopg.Error as exc:  # reachable, but e.g. no CREATEDB privilege: say so plainly
        print(f"PostgreSQL refused to create a test database: {exc}".strip(), file=sys.stderr)
        raise SystemExit(3) from exc
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop(admin_url: str, test_url: str) -> None:
    name = test_url.rsplit("/", 1)[1]
    if not name.startswith("kizuna_test_"):
        raise SystemExit(f"refusing to drop {name!r}: not a test database")
    with _connect(admin_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "create":
        print(create(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "drop":
        drop(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
