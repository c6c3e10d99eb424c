"""The installed `authctl` console script, as an admin runs it, on a temporary SQLite."""

import json
from pathlib import Path

from tests.cli.helpers import cli_env, run_authctl

PASSWORD = "script-set password"


def test_installed_authctl_end_to_end(tmp_path: Path) -> None:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'script.db'}", tmp_path / "keys")

    def authctl(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return run_authctl(*args, env=env, cwd=tmp_path, input=input)

    before = authctl("user", "list")
    assert before.returncode == 1
    assert before.stderr.startswith("error: ") and "authctl db upgrade" in before.stderr
    assert "Traceback" not in before.stderr

    assert authctl("db", "upgrade").returncode == 0

    created = authctl(
        "user", "create", "alice", "--admin", "--password-stdin", "--json",
        input=f"{PASSWORD}\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user["username"] == "alice" and user["is_admin"] is True
    assert PASSWORD not in created.stdout + created.stderr

    again = authctl("user", "create", "alice", "--password-stdin", input=PASSWORD)
    assert again.returncode == 1
    assert again.stderr.strip() == "error: username 'alice' is taken"

    client = authctl("client", "create", "Script App", "--json")
    assert client.returncode == 0, client.stderr
    body = json.loads(client.stdout)
    assert body["client_id"] == "script-app" and body["client_secret"]

    listed = json.loads(authctl("user", "list", "--json").stdout)
    assert [u["id"] for u in listed] == [user["id"]]

    disabled = authctl("user", "disable", user["id"])
    assert disabled.returncode == 0 and "disabled alice" in disabled.stdout

    assert authctl("frobnicate").returncode == 2


def test_installed_authctl_without_a_terminal(tmp_path: Path) -> None:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'script.db'}", tmp_path / "keys")

    def authctl(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return run_authctl(*args, env=env, cwd=tmp_path, input=input)

    assert authctl("db", "upgrade").returncode == 0
    for stdin in (f"{PASSWORD}\n{PASSWORD}\n", ""):
        piped = authctl("user", "create", "q1", input=stdin)
        assert piped.returncode == 1
        assert piped.stderr == (
            "error: no terminal to ask for the password; use --password-stdin\n"
        )  # no prompt, no GetPassWarning, no "Aborted."
    assert json.loads(authctl("user", "list", "--json").stdout) == []

    downgraded = authctl("db", "downgrade", "-1", "--yes")
    assert downgraded.returncode == 0, downgraded.stderr
