"""The README's five-minute tour runs, as written, against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app.settings import Settings
from bench.support import BENCH_ADMIN_KEY, running_server

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_script() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- tour:start -->\s*```sh\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert match, "README.md lost its tour markers"
    return match.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_readme_tour_runs(settings: Settings, database_url: str) -> None:  # `settings` empties the database
    with running_server(database_url) as base_url:
        env = {**os.environ, "KIZUNA": base_url, "KIZUNA_BOOTSTRAP_ADMIN_KEY": BENCH_ADMIN_KEY}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour_script()],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The tour's story: Mei gets Lena, with reasons; Raj is left unmatched with reasons.
    assert '"external_id": "lena"' in result.stdout
    assert "shares 2 of the mentee's goals: negotiation, public speaking" in result.stdout
    assert '"external_id": "raj"' in result.stdout and "no eligible mentor" in result.stdout
