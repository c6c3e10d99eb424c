"""The benchmark runs end to end: every scenario for about a second.

This checks the tool, not the server's speed: no figure is compared with
anything, only that each scenario ran (those with a target twice, each right
after its ceiling), answered and failed nowhere. It runs the
real command in a subprocess (servers, load generator and all) on SQLite with
bcrypt cost 4 and two connections per scenario, without the peer.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CEILINGS = {"ceiling: bcrypt", "ceiling: bytes", "ceiling: sign1", "ceiling: sign2"}
ALWAYS = {"jwks", "discovery", "password", "refresh", "mixed: jwks", "mixed: password"}
# Measured when the server says it supports them (discovery), n/a otherwise.
OPTIONAL = {"client_credentials", "introspection"}
COLUMNS = (
    *("scenario", "server", "workers", "database", "concurrency"),
    *("requests/s", "p50 ms", "p99 ms", "errors"),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--concurrency",
        "2",
        "--bcrypt-rounds",
        "4",
        "--workers",
        "1",
        "--mixed-jwks-rate",
        "20",
        "--mixed-jwks-vus",
        "1",
        "--no-peer",
        "--repeat",
        "2",
        "--json-out",
        str(out),
    ]
    # A wide "terminal", so the table prints on one line per row.
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_every_scenario_ran_without_errors(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    rows = {row["scenario"]: row for row in data["results"]}
    assert CEILINGS | ALWAYS <= set(rows), sorted(rows)
    assert set(rows) <= CEILINGS | ALWAYS | OPTIONAL
    for name, row in rows.items():
        if name in OPTIONAL and row["status"] == "n/a (not supported)":
            continue
        assert row["status"] == "ok", (name, row["status"])
        assert row["errors"] == 0, (name, row["error_samples"])
        assert row["requests"] > 0, name
        assert row["requests_per_second"] > 0, name
        assert row["p50_ms"] is not None and row["p50_ms"] > 0, name
        if name != "ceiling: bcrypt":  # a computed row has no latency spread
            assert row["p99_ms"] >= row["p50_ms"], name


def test_rows_are_linked_to_their_ceilings(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    rows = {row["scenario"]: row for row in data["results"]}
    assert rows["jwks"]["bound"] == "bytes"
    assert rows["password"]["bound"] == "bcrypt"
    assert rows["refresh"]["bound"] == "sign2"
    for name in ("jwks", "password", "refresh"):
        assert rows[name]["fraction_of_bound"] > 0, name
    assert data["bcrypt_ceiling"]["rounds"] == 4
    assert data["meta"]["settings"]["bcrypt_rounds"] == 4
    memory = [m for m in data["memory"] if m["server"] == "authserver"]
    assert memory and all(mb > 0 for mb in memory[0]["rss_mb"])
    assert {t["target"] for t in data["targets"]}  # evaluated, whatever the verdict


def test_targets_are_judged_on_repeated_pairs(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    names = [row["scenario"] for row in data["results"]]
    # Each scenario with a target ran twice, each time right after its ceiling.
    for scenario, ceiling in (("refresh", "sign2"), ("client_credentials", "sign1")):
        assert names.count(scenario) == 2, names
        for at in (i for i, name in enumerate(names) if name == scenario):
            assert names[at - 1] == f"ceiling: {ceiling}", names
    assert names.count("discovery") == 1  # no target: measured once
    details = {t["target"]: t["detail"] for t in data["targets"]}
    assert " of 2 (" in details["refresh >= 40% of sign2, no errors"], details


def test_table_is_printed(run: tuple[str, dict[str, Any]]) -> None:
    stdout, data = run
    header = next(line for line in stdout.splitlines() if "requests/s" in line)
    for column in COLUMNS:
        assert column in header
    for row in data["results"]:
        assert row["scenario"] in stdout
