"""The ``kizuna`` command, through its entry point: help, migrate, keys, serve."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
import typer
from typer.testing import CliRunner

from app.auth import PREFIX_LENGTH
from app.cli import app as cli
from app.migrations import head_revision
from tests.api.webhook_receiver import receiver_factory  # noqa: F401  (a fixture)

runner = CliRunner()
KIZUNA = Path(sys.executable).with_name("kizuna")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A fresh SQLite database for the command to work on (never the shared test database)."""
    # A directory that does not exist yet, as in a fresh clone (./data).
    return {"KIZUNA_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'cli.db'}", "KIZUNA_LOG_FORMAT": "json"}


def invoke(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, args, env=env, catch_exceptions=False)


COMMANDS = [["serve"], ["worker"], ["migrate"], ["demo"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"]]


def _click_command(path: list[str]) -> click.Command:
    command = typer.main.get_command(cli)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("command", [[], ["keys"], *COMMANDS], ids=lambda c: " ".join(c) or "kizuna")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: kizuna" in result.output
    assert _click_command(command).help, "a summary of what the command does"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_and_argument_is_explained(command: list[str]) -> None:
    for param in _click_command(command).params:
        assert getattr(param, "help", None), f"{' '.join(command)}: {param.name} has no help"


def test_top_level_help_lists_all_commands() -> None:
    result = runner.invoke(cli, ["--help"])
    for path in COMMANDS:
        assert path[0] in result.output


def test_migrate_up_down_and_up_again(cli_env: dict[str, str]) -> None:
    result = invoke(["migrate"], cli_env)
    assert result.exit_code == 0, result.output
    assert f"empty -> {head_revision()}" in result.stdout

    refused = runner.invoke(cli, ["migrate", "--downgrade"], env=cli_env)
    assert refused.exit_code == 2 and "explicit --revision" in refused.output

    down = invoke(["migrate", "--downgrade", "--revision", "base"], cli_env)
    assert down.exit_code == 0 and f"{head_revision()} -> empty" in down.stdout
    again = invoke(["migrate", "-r", "head"], cli_env)
    assert again.exit_code == 0 and f"-> {head_revision()}" in again.stdout


def test_keys_before_migrating_explain_what_to_do(cli_env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["keys", "list"], env=cli_env)
    assert result.exit_code == 1
    assert "kizuna migrate" in result.output


def test_keys_create_list_revoke(cli_env: dict[str, str]) -> None:
    assert invoke(["migrate"], cli_env).exit_code == 0

    created = invoke(["keys", "create", "--role", "hris", "--name", "workday sync"], cli_env)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("kz_") and "\n" not in secret  # alone on stdout, for $(...)
    assert "shown only now" in created.stderr

    listed = invoke(["keys", "list"], cli_env)
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "workday sync" in line)
    key_id, role = row.split()[:2]
    assert role == "hris"
    assert secret not in listed.stdout and secret[:PREFIX_LENGTH] in listed.stdout  # the prefix only

    revoked = invoke(["keys", "revoke", key_id], cli_env)
    assert revoked.exit_code == 0 and key_id in revoked.stdout
    assert "workday sync" not in invoke(["keys", "list"], cli_env).stdout
    assert "workday sync" in invoke(["keys", "list", "--all"], cli_env).stdout

    again = runner.invoke(cli, ["keys", "revoke", key_id], env=cli_env)
    assert again.exit_code == 1 and "no active API key" in again.output


def test_keys_create_refuses_an_unknown_role(cli_env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["keys", "create", "--role", "root", "--name", "x"], env=cli_env)
    assert result.exit_code == 2


def test_a_key_created_by_the_cli_opens_the_api(cli_env: dict[str, str]) -> None:
    # Synchronous on purpose: the command runs its own event loop, as it does in a shell.
    from app.settings import Settings
    from tests.conftest import http_client, started

    assert invoke(["migrate"], cli_env).exit_code == 0
    secret = invoke(["keys", "create", "--role", "admin", "--name", "ops"], cli_env).stdout.strip()

    async def list_keys() -> httpx.Response:
        async with started(Settings(database_url=cli_env["KIZUNA_DATABASE_URL"])) as application:
            async with http_client(application) as http:
                return await http.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"})

    response = asyncio.run(list_keys())
    assert response.status_code == 200
    assert [key["name"] for key in response.json()["items"]] == ["ops"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_migrates_then_serves_and_logs_json_lines(cli_env: dict[str, str]) -> None:
    """The real entry point in a real process: migrations, uvicorn, JSON logs, SIGTERM."""
    port = _free_port()
    env = {**os.environ, **cli_env}
    env.pop("KIZUNA_TEST_DATABASE_URL", None)
    process = subprocess.Popen(
        [str(KIZUNA), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        ready = httpx.get(f"{base}/readyz", headers={"X-Request-ID": "cli-serve-1"})
        assert ready.status_code == 200 and ready.json()["schema_revision"] == head_revision()
        assert ready.headers["x-request-id"] == "cli-serve-1"

        # The documented quickstart: an admin key from the CLI, then the demo against the server.
        key = invoke(["keys", "create", "--role", "admin", "--name", "demo"], cli_env).stdout.strip()
        demo = invoke(["demo", "--url", base, "--key", key, "--mentees", "40", "--mentors", "16", "--publish"], cli_env)
        assert demo.exit_code == 0, demo.output
        assert "Round 1 — published" in demo.stdout and "coverage" in demo.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it stopped.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    entries = [json.loads(line) for line in stdout.splitlines() if line.strip()]  # every line is JSON
    access = [e for e in entries if e.get("request_id") == "cli-serve-1"]
    assert access and access[0]["route"] == "/readyz" and access[0]["status"] == 200
    assert any(e["logger"].startswith("alembic") for e in entries)  # migrated before serving
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's own lines are JSON too


@pytest.mark.slow
async def test_worker_runs_rounds_and_delivers_webhooks_until_sigterm(
    cli_env: dict[str, str], receiver_factory  # type: ignore[no-untyped-def]
) -> None:
    """A queued round and a registered webhook; `kizuna worker` in its own process solves
    the round, sends the signed webhook to a local receiver, and exits cleanly on SIGTERM."""
    from standardwebhooks.webhooks import Webhook

    from app.settings import Settings
    from tests.api.rounds_support import setup_program, trigger
    from tests.conftest import ADMIN_SECRET, bearer, http_client, started

    receiver = await receiver_factory(204)
    url = cli_env["KIZUNA_DATABASE_URL"]
    assert invoke(["migrate"], cli_env).exit_code == 0
    settings = Settings(
        database_url=url, bootstrap_admin_key=ADMIN_SECRET, runner="off", webhook_allow_private=True
    )
    admin = bearer(ADMIN_SECRET)
    async with started(settings) as application:
        async with http_client(application) as http:
            hris = bearer((await http.post("/v1/api-keys", json={"name": "h", "role": "hris"}, headers=admin)).json()["secret"])
            hook = await http.post("/v1/webhooks", json={"url": receiver.url, "events": ["round.completed"]}, headers=admin)
            program_id = await setup_program(http, admin, hris)
            round_id = (await trigger(http, admin, program_id)).json()["id"]

            env = {**os.environ, **cli_env, "KIZUNA_WEBHOOK_ALLOW_PRIVATE": "true", "KIZUNA_RUNNER_EXECUTOR": "thread"}
            worker = await asyncio.create_subprocess_exec(
                str(KIZUNA), "worker", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                await asyncio.wait_for(receiver.got_one.wait(), timeout=60)
            finally:
                worker.send_signal(signal.SIGTERM)
                stdout, stderr = await asyncio.wait_for(worker.communicate(), timeout=30)
            assert worker.returncode == 0, stderr.decode()
            status = (await http.get(f"/v1/rounds/{round_id}", headers=admin)).json()["status"]
    assert status == "completed"
    payload = Webhook(hook.json()["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["data"]["round_id"] == round_id
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    assert any(line["logger"] == "kizuna.webhooks" and line.get("outcome") == "delivered" for line in lines)


def test_demo_in_process_prints_the_summary() -> None:
    result = runner.invoke(cli, ["demo", "--mentees", "60", "--mentors", "25", "--seed", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Round 1 — completed (traditional, coverage_first)" in out
    for label in ("coverage", "mean score", "cross-functional share", "mean shared hours", "Top reasons", "Left unmatched"):
        assert label in out, label
    matched = int(next(line for line in out.splitlines() if "matched mentees" in line).split()[-1])
    coverage = float(next(line for line in out.splitlines() if line.strip().startswith("coverage")).split()[-1][:-1])
    assert 0 < matched <= 60 and abs(coverage - 100 * matched / 60) < 0.1
    assert "pushed 85 people" in result.stderr  # progress goes to stderr, the summary to stdout


def test_demo_needs_a_key_for_a_remote_service() -> None:
    result = runner.invoke(cli, ["demo", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--key" in result.output


def test_demo_explains_an_unreachable_service() -> None:
    port = _free_port()
    result = runner.invoke(cli, ["demo", "--url", f"http://127.0.0.1:{port}", "--key", "kz_x", "--mentees", "5", "--mentors", "2"])
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_reason_kinds_group_reasons_by_their_wording() -> None:
    from app.demo import reason_kind

    assert reason_kind("4.0 h of shared working hours (mentor 09:00–17:00 Europe/Berlin, mentee …)") == "N h of shared working hours"
    assert reason_kind("cross-functional: Engineering → Sales") == "cross-functional"
    assert reason_kind("mentor is 1 level senior") == reason_kind("mentor is 3 levels senior")
