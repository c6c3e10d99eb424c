"""The architecture's load-bearing rules, read from the source itself:
imports point down the layers, nothing but the unit of work ends, undoes or
re-isolates a transaction, and nothing but a service tells it to."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "authserver").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])

# What each layer may import of ours (README "Architecture").
ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "schemas": {"core", "schemas"},
    "db": {"core", "db", "models"},
    "crud": {"core", "db", "models", "schemas", "crud"},
    "services": {"core", "db", "models", "schemas", "crud", "services"},
    "api": {"core", "db", "models", "schemas", "crud", "services", "api"},
    "cli": {"core", "db", "models", "schemas", "crud", "services", "cli"},
}

UNIT_OF_WORK = ROOT / "authserver" / "db" / "unit_of_work.py"
# Transaction control of connections that are not a request's or a command's:
# the driver set-up of every new connection, the batcher's own connection,
# and migrations' DDL transaction.
OWN_CONNECTIONS = {
    ROOT / "authserver" / "db" / "session.py",
    ROOT / "authserver" / "db" / "rotation_batcher.py",
    ROOT / "authserver" / "db" / "migrate.py",
}
ENDING_CALLS = {"commit", "rollback"}
SESSION_CALLS = {"close", "begin", "begin_nested"}
# What ends or re-isolates a unit of work's transaction: a service's decision.
SERVICES = ROOT / "authserver" / "services"
UNIT_OF_WORK_CALLS = {"commit", "rollback", "autocommit", "new_transaction"}


def _layer(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "cli":
        return "cli"
    return parts[1] if len(parts) > 2 else None  # authserver/main.py: the top


def _imported_layers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cli":
                yield node.lineno, "cli"
            elif parts[0] == "authserver":
                yield node.lineno, parts[1] if len(parts) > 1 else "authserver"


def _receiver(node: ast.expr) -> str:
    """The last name of what a method is called on: `ctx.uow` -> "uow"."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _receiver(node.func)
    return ""


def _transaction_control(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if "autocommit" in node.func.id:
                yield node.lineno, f"{node.func.id}()"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, _receiver(node.func.value)
            if "autocommit" in method and receiver != "uow":
                yield node.lineno, f"{receiver}.{method}()"
            if method in ENDING_CALLS and receiver != "uow":
                yield node.lineno, f"{receiver}.{method}()"
            if method in SESSION_CALLS and "session" in receiver.lower():
                yield node.lineno, f"{receiver}.{method}()"
        if isinstance(node, ast.keyword) and node.arg == "isolation_level":
            yield getattr(node.value, "lineno", 0), "isolation_level="
        if isinstance(node, ast.Constant) and node.value in (
            "AUTOCOMMIT",
            "isolation_level",
        ):
            yield node.lineno, repr(node.value)
        if isinstance(node, ast.Attribute) and node.attr == "isolation_level":
            yield node.lineno, ".isolation_level"


def _unit_of_work_control(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Calls that end or re-isolate a unit of work's transaction: `uow.commit()`,
    `ctx.uow.autocommit()` (the unit of work is called `uow` everywhere)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, _receiver(node.func.value)
            if method in UNIT_OF_WORK_CALLS and receiver == "uow":
                yield node.lineno, f"{receiver}.{method}()"


def _misplaced_unit_of_work_calls(path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    """What `path` tells a unit of work that only a service may tell it."""
    if path.is_relative_to(SERVICES) or path in OWN_CONNECTIONS:
        return []
    return sorted(_unit_of_work_control(tree))


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    layer = _layer(path)
    if layer is None:
        return
    allowed = ALLOWED[layer]
    wrong = [(n, imported) for n, imported in _imported_layers(_parse(path))]
    wrong = [(n, imported) for n, imported in wrong if imported not in allowed]
    assert not wrong, f"{layer} may import only {sorted(allowed)}: {wrong}"


def test_nothing_but_the_unit_of_work_ends_a_transaction() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in SOURCES
        if path != UNIT_OF_WORK and path not in OWN_CONNECTIONS
        if (hits := list(_transaction_control(_parse(path))))
    }
    assert found == {}


def test_only_services_end_a_unit_of_work() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in SOURCES
        if (hits := _misplaced_unit_of_work_calls(path, _parse(path)))
    }
    assert found == {}


def test_the_rule_catches_what_it_forbids() -> None:
    forbidden = ast.parse(
        "async def f(session, uow):\n"
        "    await session.commit()\n"
        "    await self.session.rollback()\n"
        "    await session.close()\n"
        "    await session.connection(execution_options={'isolation_level': 'X'})\n"
        "    await use_autocommit(session)\n"
        "    await uow.commit()\n"
        "    await ctx.uow.autocommit()\n"
        "    await self.uow.rollback()\n"
        "    await uow.new_transaction()\n"
        "    await uow.session.flush()\n"
    )
    hits = [what for _, what in _transaction_control(forbidden)]
    assert hits.count("session.commit()") == 1
    assert hits.count("session.rollback()") == 1
    assert hits.count("session.close()") == 1
    assert "'isolation_level'" in hits
    assert "use_autocommit()" in hits
    assert not [hit for hit in hits if hit.startswith("uow.")]
    # Telling the unit of work is a service's part: a route or a command that
    # does it is caught, a service is not.
    route = ROOT / "authserver" / "api" / "v1" / "users.py"
    command = ROOT / "cli" / "user.py"
    told = [what for _, what in _misplaced_unit_of_work_calls(route, forbidden)]
    assert told == [
        "uow.commit()",
        "uow.autocommit()",
        "uow.rollback()",
        "uow.new_transaction()",
    ]
    assert _misplaced_unit_of_work_calls(command, forbidden) != []
    assert _misplaced_unit_of_work_calls(SERVICES / "users.py", forbidden) == []
