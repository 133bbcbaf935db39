"""Shared benchmark plumbing: throw-away databases and a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get("KIZUNA_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_ADMIN_KEY = "kz_bench-admin-" + secrets.token_urlsafe(16)


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, empty, migrated database URL ("sqlite" or "postgres"), removed afterwards."""
    from app.migrations import upgrade

    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kizuna-bench-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            upgrade(url)
            yield url
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"kizuna_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# One uvicorn process serving the app on a listening socket it inherits (see running_server).
_REUSE_PORT_WORKER = """
import socket, sys, uvicorn
sock = socket.socket(fileno=int(sys.argv[1]))
config = uvicorn.Config("app.main:create_app", factory=True, log_level="warning", access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""


def _reuse_port_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def running_server(
    database_url: str, *, workers: int = 1, extra_env: dict[str, str] | None = None, reuse_port: bool = False
) -> Iterator[str]:
    """uvicorn serving the app on 127.0.0.1 with the bench admin key; yields the base URL.

    ``reuse_port=False``: ``uvicorn --workers N``, the N processes accept from one shared
    socket. Linux does not spread connections between them: whichever process is awake
    accepts a burst of new connections, so a load generator that opens its keep-alive
    connections at once often ends up with all of them on one worker, the other idle.
    ``reuse_port=True``: N uvicorn processes, each on its own ``SO_REUSEPORT`` socket bound to
    the same port, so the kernel spreads connections over them (by a hash of the client
    address, like N replicas behind a balancer); there is no supervisor restarting them."""
    port = free_port()
    env = {
        **os.environ,
        "KIZUNA_DATABASE_URL": database_url,
        "KIZUNA_BOOTSTRAP_ADMIN_KEY": BENCH_ADMIN_KEY,
        "KIZUNA_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    processes: list[subprocess.Popen[bytes]] = []
    sockets: list[socket.socket] = []
    if reuse_port and workers > 1:
        # Listening before the processes start: connections made early wait in the backlog.
        sockets = [_reuse_port_socket(port) for _ in range(workers)]
        for sock in sockets:
            command = [sys.executable, "-c", _REUSE_PORT_WORKER, str(sock.fileno())]
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=(sock.fileno(),)))
    else:
        command = [
            sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield base_url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for sock in sockets:
            sock.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
