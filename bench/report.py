"""Results: rows, the ratios between rows of one round, targets, Markdown, JSON."""

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OURS = "authserver"
CEILING = "ceiling"
NOP = "oidc-provider"
NOP_PG = "oidc-provider-pg"
NOP_CLUSTER = "oidc-provider-pg cluster"
DOT = "django-oauth-toolkit"


@dataclass
class Row:
    scenario: str  # a scenario, or "mixed: jwks" / "mixed: password"
    server: str  # a server's name, or CEILING
    round: int
    connections: str
    requests_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    requests: int = 0
    # CPU of the server's processes and its PostgreSQL backends per answer
    cpu_ms: float | None = None
    status: str = "ok"  # or why there is no figure
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_sample: str = ""


@dataclass(frozen=True)
class Target:
    label: str
    scenario: str
    against: tuple[str, ...]  # the best of these is the reference
    ratio: float  # ours / reference must be at least this

    def ratios(self, rows: list[Row]) -> list[float]:
        """One ratio per round in which both sides were measured."""
        found = []
        for number in sorted({r.round for r in rows}):
            ours = _rps(rows, self.scenario, OURS, number)
            theirs = [_rps(rows, self.scenario, s, number) for s in self.against]
            best = max((x for x in theirs if x), default=None)
            if ours is not None and best:
                found.append(ours / best)
        return found


TARGETS = (
    Target(
        "refresh >= 1.5x oidc-provider-pg (best mode)",
        "refresh",
        (NOP_PG, NOP_CLUSTER),
        1.5,
    ),
    Target("refresh >= 5x django-oauth-toolkit", "refresh", (DOT,), 5.0),
    Target(
        "client credentials >= 1.2x oidc-provider-pg (best mode)",
        "client_credentials",
        (NOP_PG, NOP_CLUSTER),
        1.2,
    ),
    Target("JWKS >= 1.0x oidc-provider-pg cluster", "jwks", (NOP_CLUSTER,), 1.0),
    Target("password >= 0.9 of the bcrypt ceiling", "password", (CEILING,), 0.9),
)
MIXED_P99_MS = 20.0


def _rps(rows: list[Row], scenario: str, server: str, number: int) -> float | None:
    for row in rows:
        if (row.scenario, row.server, row.round) == (scenario, server, number):
            return row.requests_per_second if row.status == "ok" else None
    return None


@dataclass
class Report:
    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    race: dict[str, dict[str, Any]] = field(default_factory=dict)

    def targets(self) -> list[dict[str, Any]]:
        verdicts = []
        for target in TARGETS:
            ratios = target.ratios(self.rows)
            value = statistics.median(ratios) if ratios else None
            verdicts.append(
                {
                    "target": target.label,
                    "value": value,
                    "ratios": ratios,
                    "met": None if value is None else value >= target.ratio,
                    "detail": "-" if value is None else f"{value:.2f}x",
                }
            )
        p99 = [
            r.p99_ms
            for r in self.rows
            if (r.scenario, r.server, r.status) == ("mixed: jwks", OURS, "ok")
        ]
        worst = max((x for x in p99 if x is not None), default=None)
        verdicts.append(
            {
                "target": f"JWKS p99 < {MIXED_P99_MS:g} ms while logins saturate the CPU",
                "value": worst,
                "met": None if worst is None else worst < MIXED_P99_MS,
                "detail": "-" if worst is None else f"{worst:.1f} ms",
            }
        )
        ours = self.race.get(OURS)
        verdicts.append(
            {
                "target": "refresh race (20 parallel): one new pair, or one shared",
                "value": None if ours is None else ours["passed"],
                "met": None if ours is None else ours["passed"],
                "detail": "-" if ours is None else ours["summary"],
            }
        )
        errors = sum(r.errors for r in self.rows if r.server == OURS)
        verdicts.append(
            {
                "target": "no errors from authserver",
                "value": errors,
                "met": errors == 0,
                "detail": str(errors),
            }
        )
        return verdicts

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "results": [asdict(r) for r in self.rows],
            "race": self.race,
            "targets": self.targets(),
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def markdown(self) -> str:
        out = [
            "| scenario | server | connections | requests/s | p50 ms | p99 ms "
            "| errors | CPU ms/req | authserver ÷ this |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in self.rows:
            ours = _rps(self.rows, row.scenario, OURS, row.round)
            ratio = "-"
            if row.server != OURS and ours and row.requests_per_second:
                ratio = f"{ours / row.requests_per_second:.2f}x"
            if row.status != "ok":
                figures = [row.status, "-", "-"]
            else:
                figures = [
                    _num(row.requests_per_second),
                    _num(row.p50_ms),
                    _num(row.p99_ms),
                ]
            out.append(
                f"| {row.scenario} | {row.server} | {row.connections} | "
                + " | ".join(figures)
                + f" | {row.errors} | {_num(row.cpu_ms)} | {ratio} |"
            )
        out += [
            "",
            "| race: 20 parallel refreshes of one token | result |",
            "| --- | --- |",
        ]
        out += [f"| {name} | {race['summary']} |" for name, race in self.race.items()]
        out += ["", "| target | measured | met |", "| --- | --- | --- |"]
        for verdict in self.targets():
            met = {True: "yes", False: "**no**", None: "not measured"}[verdict["met"]]
            out.append(f"| {verdict['target']} | {verdict['detail']} | {met} |")
        return "\n".join(out)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"
