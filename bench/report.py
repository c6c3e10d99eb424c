"""Results: one Row per scenario and server, the printed table and the JSON."""

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.loadgen import GroupResult
from bench.scenarios import SCENARIOS

OURS = "authserver"
CEILING_APP = "ceiling app"
NOT_SUPPORTED = "n/a (not supported)"


@dataclass
class Row:
    scenario: str  # a scenario name, "mixed: jwks", or "ceiling: bytes"
    server: str
    workers: int | None
    database: str
    concurrency: str
    requests_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    requests: int = 0
    window_s: float = 0.0
    status: str = "ok"  # or "n/a (...)" or "failed: ..."
    bound: str | None = None  # the ceiling scenario that bounds this row
    bound_rps: float | None = None
    fraction_of_bound: float | None = None
    target: float | None = None  # required fraction of the bound
    vs_peer: float | None = None  # ours / peer req/s (p99 ratio for mixed: jwks)
    # A ceiling measured right before a scenario: shown in that scenario's rows.
    section: str | None = None
    error_samples: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_result(
        cls,
        result: GroupResult,
        *,
        scenario: str,
        server: str,
        workers: int | None,
        database: str,
        concurrency: str,
    ) -> "Row":
        p50, p99 = result.percentile(0.50), result.percentile(0.99)
        return cls(
            scenario=scenario,
            server=server,
            workers=workers,
            database=database,
            concurrency=concurrency,
            requests_per_second=result.requests_per_second,
            p50_ms=None if p50 is None else p50 * 1000,
            p99_ms=None if p99 is None else p99 * 1000,
            errors=result.errors,
            requests=result.completed,
            window_s=result.window,
            error_samples=dict(result.error_samples),
        )

    @property
    def measured(self) -> bool:
        return self.status == "ok"


@dataclass
class Memory:
    server: str
    workers: int | None
    database: str
    rss_mb: list[float]


@dataclass
class Report:
    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    bcrypt: dict[str, Any] | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "bcrypt_ceiling": self.bcrypt,
            "results": [asdict(row) for row in self.rows],
            "memory": [asdict(m) for m in self.memory],
            "targets": self.targets,
            "notes": self.notes,
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        """A report as `as_dict` wrote it (a run's --json-out file)."""
        return cls(
            meta=data["meta"],
            rows=[Row(**row) for row in data["results"]],
            memory=[Memory(**m) for m in data["memory"]],
            bcrypt=data["bcrypt_ceiling"],
            targets=data["targets"],
            notes=data["notes"],
        )

    # --- derived figures ---------------------------------------------------

    def link(self, peer_name: str | None) -> None:
        """Fill each row's bound and peer ratio from rows of the same run.

        A row's ceiling is the one measured closest before it (the runner
        measures each right before the first scenario it bounds), else the
        last one measured.
        """

        def ceiling_key(row: Row) -> tuple[str, int | None] | None:
            if not (row.scenario.startswith("ceiling: ") and row.measured):
                return None
            name = row.scenario.removeprefix("ceiling: ")
            # bcrypt's is computed for the machine, not for a worker count.
            return (name, None if name == "bcrypt" else row.workers)

        latest = {key: r for r in self.rows if (key := ceiling_key(r)) is not None}
        peer = {r.scenario: r for r in self.rows if r.server == peer_name}
        seen: dict[tuple[str, int | None], Row] = {}
        for row in self.rows:
            key = ceiling_key(row)
            if key is not None:
                seen[key] = row
            if row.bound is not None and row.measured:
                wanted = (row.bound, None if row.bound == "bcrypt" else row.workers)
                ceiling = seen.get(wanted) or latest.get(wanted)
                if ceiling is not None and ceiling.requests_per_second:
                    row.bound_rps = ceiling.requests_per_second
                    row.fraction_of_bound = (
                        row.requests_per_second or 0.0
                    ) / ceiling.requests_per_second
            other = peer.get(row.scenario)
            if row.server == peer_name or other is None or not row.measured:
                continue
            if not other.measured or row.server == CEILING_APP:
                continue
            if row.scenario == "mixed: jwks":
                if row.p99_ms and other.p99_ms:
                    row.vs_peer = row.p99_ms / other.p99_ms
            elif row.requests_per_second and other.requests_per_second:
                row.vs_peer = row.requests_per_second / other.requests_per_second

    def check_targets(self, rss_limit_mb: float, p99_limit_ms: float) -> None:
        """The issue's targets, per configuration of our server."""
        configs = sorted(
            {(r.workers or 0, r.database) for r in self.rows if r.server == OURS}
        )
        for workers, database in configs:
            runs: dict[str, list[Row]] = {}
            for r in self.rows:
                if r.server == OURS and r.workers == workers and r.database == database:
                    runs.setdefault(r.scenario, []).append(r)
            rows = {scenario: measured[-1] for scenario, measured in runs.items()}

            def add(name: str, verdict: bool | None, detail: str) -> None:
                self.targets.append(
                    {
                        "workers": workers,
                        "database": database,
                        "target": name,
                        "met": verdict,
                        "detail": detail,
                    }
                )

            for scenario, label in (
                ("password", "password >= 90% of the bcrypt ceiling"),
                ("refresh", "refresh >= 40% of sign2, no errors"),
                ("client_credentials", "client credentials >= 60% of sign1"),
                ("jwks", "JWKS >= 50% of bytes"),
            ):
                repeats = runs.get(scenario)
                if not repeats:
                    continue
                ratios = [
                    r.fraction_of_bound
                    for r in repeats
                    if r.fraction_of_bound is not None and r.target is not None
                ]
                row = repeats[-1]
                if not ratios or row.target is None:
                    add(
                        label,
                        None,
                        f"ceiling {row.bound} not run" if row.measured else row.status,
                    )
                    continue
                # With --repeat, each repeat is a (ceiling, scenario) pair: the
                # verdict is the median pair's, every ratio is shown.
                ratio = statistics.median(ratios)
                errors = sum(r.errors for r in repeats)
                met = ratio >= row.target
                if scenario == "refresh":
                    met = met and errors == 0
                detail = f"{ratio:.0%}, {errors} errors"
                if len(ratios) > 1:
                    each = ", ".join(f"{r:.0%}" for r in ratios)
                    detail = (
                        f"median {ratio:.0%} of {len(ratios)} ({each}), {errors} errors"
                    )
                add(label, met, detail)
            jwks, password = rows.get("mixed: jwks"), rows.get("mixed: password")
            if jwks is not None and password is not None:
                if jwks.measured and password.measured and jwks.p99_ms is not None:
                    errors = jwks.errors + password.errors
                    add(
                        f"mixed: JWKS p99 < {p99_limit_ms:g} ms, no errors",
                        jwks.p99_ms < p99_limit_ms and errors == 0,
                        f"p99 {jwks.p99_ms:.1f} ms, {errors} errors",
                    )
                else:
                    add("mixed: JWKS p99", None, jwks.status)
            for memory in self.memory:
                if (
                    memory.server == OURS
                    and memory.workers == workers
                    and memory.database == database
                    and memory.rss_mb
                ):
                    worst = max(memory.rss_mb)
                    add(
                        f"worker RSS < {rss_limit_mb:g} MB",
                        worst < rss_limit_mb,
                        f"max {worst:.0f} MB",
                    )

    # --- printing ------------------------------------------------------------

    def ordered(self, peer_name: str | None) -> list[Row]:
        """Unpaired ceilings first, then each scenario with every server side by
        side; a paired ceiling just before the row it bounds (run order)."""
        order = {name: i for i, name in enumerate(SCENARIOS)}

        def key(row: Row) -> tuple[int, int]:
            if row.scenario.startswith("ceiling: "):
                if row.section is None:
                    return (-1, 0)
                # Paired: with its scenario, ahead of the peer's rows.
                return (order.get(row.section, len(order)), 1)
            server_rank = 2 if row.server == peer_name else 1
            return (order.get(_family(row), len(order)), server_rank)

        return sorted(self.rows, key=key)  # stable: run order within a key

    def print(self, console: Console, peer_name: str | None) -> None:
        table = Table(
            title="authserver benchmark", box=box.HEAVY_HEAD, title_justify="left"
        )
        for name, right in COLUMNS:
            table.add_column(name, justify="right" if right else "left")
        previous = None
        for row in self.ordered(peer_name):
            if previous is not None and _family(previous) != _family(row):
                table.add_section()
            previous = row
            cells = _cells(row)
            if row.errors:
                cells[ERRORS_COLUMN] = f"[red]{row.errors}[/red]"
            table.add_row(*cells)
        console.print(table)
        if self.memory:
            console.print("Resident memory per worker after the run:")
            console.print("\n".join(self._memory_lines()), highlight=False)
        if self.targets:
            console.print("Targets (the issue's are for PostgreSQL, 2 workers):")
            verdict = {True: "[green]met[/green]", False: "[red]missed[/red]"}
            for line in self._target_lines(verdict):
                console.print(line, highlight=False)
        failures = [r for r in self.rows if r.error_samples]
        if failures:
            console.print("[red]Errors[/red] (first distinct reasons):")
            for row in failures:
                for reason, count in row.error_samples.items():
                    console.print(
                        f"  {row.scenario} / {row.server} / {_config(row)}: "
                        f"{count} x {reason}",
                        highlight=False,
                    )
        for note in self.notes:
            console.print(f"Note: {note}", highlight=False)

    def markdown(self, peer_name: str | None) -> str:
        """The table, the memory and the targets as Markdown (docs/benchmarks.md)."""
        lines = [
            "| " + " | ".join(name for name, _ in COLUMNS) + " |",
            "| "
            + " | ".join("---:" if right else "---" for _, right in COLUMNS)
            + " |",
        ]
        lines += [
            "| " + " | ".join(_cells(row)) + " |" for row in self.ordered(peer_name)
        ]
        if self.memory:
            lines += ["", "Resident memory per worker after the run:", ""]
            lines += [f"- {line.strip()}" for line in self._memory_lines()]
        if self.targets:
            lines += ["", "Targets:", ""]
            verdict = {True: "met", False: "**missed**"}
            lines += [f"- {line.strip()}" for line in self._target_lines(verdict)]
        return "\n".join(lines) + "\n"

    def _memory_lines(self) -> list[str]:
        return [
            f"  {m.server} ({_config(m)}): "
            + ", ".join(f"{mb:.0f} MB" for mb in m.rss_mb)
            for m in self.memory
        ]

    def _target_lines(self, verdict: dict[bool, str]) -> list[str]:
        lines = []
        for t in self.targets:
            result = (
                f"{verdict[t['met']]} ({t['detail']})"
                if t["met"] is not None
                else t["detail"]
            )
            lines.append(f"  {t['database']}/{t['workers']}w  {t['target']}: {result}")
        return lines


# The table's columns: name, right-aligned.
COLUMNS = (
    ("scenario", False),
    ("server", False),
    ("workers", True),
    ("database", False),
    ("concurrency", True),
    ("requests/s", True),
    ("p50 ms", True),
    ("p99 ms", True),
    ("errors", True),
    ("ceiling/s", True),
    ("% of ceiling", True),
    ("vs peer", True),
)
ERRORS_COLUMN = 8


def _cells(row: Row) -> list[str]:
    """One row of the table as plain text, in COLUMNS order."""
    if row.measured:
        rate, p50, p99 = (
            _number(row.requests_per_second),
            _ms(row.p50_ms),
            _ms(row.p99_ms),
        )
    else:
        rate, p50, p99 = row.status, "-", "-"
    ratio = "-"
    if row.vs_peer is not None:
        prefix = "p99 " if row.scenario == "mixed: jwks" else ""
        ratio = f"{prefix}{row.vs_peer:.2f}x"
    return [
        row.scenario,
        row.server,
        "-" if row.workers is None else str(row.workers),
        row.database,
        row.concurrency,
        rate,
        p50,
        p99,
        str(row.errors),
        _number(row.bound_rps),
        "-" if row.fraction_of_bound is None else f"{row.fraction_of_bound:.0%}",
        ratio,
    ]


def _family(row: Row) -> str:
    if row.scenario.startswith("ceiling: "):
        return row.section or "ceiling"
    return row.scenario.split(":")[0]


def _config(item: Row | Memory) -> str:
    workers = "-" if item.workers is None else f"{item.workers}w"
    return f"{item.database}, {workers}"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:,.1f}"
