"""Targets are ratios of rows from the same round, judged on the median."""

from bench.report import CEILING, DOT, NOP_CLUSTER, NOP_PG, OURS, Report, Row


def _row(scenario: str, server: str, rps: float, number: int = 1, **kw: object) -> Row:
    return Row(scenario, server, number, "32", rps, 1.0, 2.0, **kw)  # type: ignore[arg-type]


def _targets(report: Report) -> dict[str, dict[str, object]]:
    return {t["target"]: t for t in report.targets()}


def test_refresh_is_compared_with_the_better_oidc_provider_pg_mode() -> None:
    report = Report(meta={})
    report.rows = [
        _row("refresh", OURS, 900),
        _row("refresh", NOP_PG, 400),
        _row("refresh", NOP_CLUSTER, 600),
        _row("refresh", DOT, 100),
    ]
    targets = _targets(report)
    pg = targets["refresh >= 1.5x oidc-provider-pg (best mode)"]
    assert pg["value"] == 1.5 and pg["met"] is True
    dot = targets["refresh >= 5x django-oauth-toolkit"]
    assert dot["value"] == 9.0 and dot["met"] is True


def test_cpu_per_request_is_compared_with_the_cheaper_reference() -> None:
    report = Report(meta={})
    report.rows = [
        _row("refresh", OURS, 300, cpu_ms=1.0),
        _row("refresh", NOP_PG, 400, cpu_ms=2.0),
        _row("refresh", NOP_CLUSTER, 300, cpu_ms=3.0),
    ]
    pg = _targets(report)["refresh >= 1.5x oidc-provider-pg (best mode)"]
    assert pg["value"] == 0.75 and pg["met"] is False  # throughput decides
    assert pg["cpu_ratio"] == 2.0  # shown beside it


def test_rounds_are_paired_and_the_median_ratio_decides() -> None:
    report = Report(meta={})
    for number, (ours, theirs) in enumerate(((100, 100), (150, 100), (80, 100)), 1):
        report.rows += [
            _row("jwks", OURS, ours, number),
            _row("jwks", NOP_CLUSTER, theirs, number),
        ]
    jwks = _targets(report)["JWKS >= 1.0x oidc-provider-pg cluster"]
    assert jwks["ratios"] == [1.0, 1.5, 0.8]
    assert jwks["value"] == 1.0 and jwks["met"] is True


def test_a_missing_or_failed_side_is_not_measured_rather_than_missed() -> None:
    report = Report(meta={})
    report.rows = [
        _row("password", OURS, 8.0),
        _row("password", CEILING, 10.0, status="failed"),
        _row("client_credentials", OURS, 1000),
    ]
    targets = _targets(report)
    assert targets["password >= 0.9 of the bcrypt ceiling"]["met"] is None
    assert (
        targets["client credentials >= 1.2x oidc-provider-pg (best mode)"]["met"]
        is None
    )
    assert "not measured" in report.markdown()


def test_a_slow_mixed_jwks_p99_or_any_error_misses() -> None:
    report = Report(meta={})
    report.rows = [
        Row("mixed: jwks", OURS, 1, "4", 100.0, 1.0, 25.0),
        Row("jwks", OURS, 1, "32", 100.0, 1.0, 2.0, errors=3),
    ]
    targets = _targets(report)
    assert targets["JWKS p99 < 20 ms while logins saturate the CPU"]["met"] is False
    assert targets["no errors from authserver"]["met"] is False


def test_the_table_divides_ours_by_each_row_of_the_same_round() -> None:
    report = Report(meta={})
    report.rows = [_row("refresh", OURS, 900), _row("refresh", DOT, 100)]
    report.race = {OURS: {"passed": True, "summary": "PASS: 3/3 one winner"}}
    table = report.markdown()
    assert "| refresh | django-oauth-toolkit | 32 | 100 |" in table
    assert table.splitlines()[3].endswith("| 9.00x |")
    assert "| authserver | PASS: 3/3 one winner |" in table


def test_a_reference_that_failed_its_answers_is_left_out_and_named() -> None:
    # The cluster answered fast with errors (e.g. out of database connections):
    # that is no refresh throughput, so the single process is the reference.
    report = Report(meta={})
    report.rows = [
        _row("refresh", OURS, 900, requests=9000, cpu_ms=1.0),
        _row("refresh", NOP_PG, 600, requests=6000, errors=60, cpu_ms=2.0),
        _row("refresh", NOP_CLUSTER, 1200, requests=12000, errors=5000, cpu_ms=0.5),
    ]
    pg = _targets(report)["refresh >= 1.5x oidc-provider-pg (best mode)"]
    assert pg["value"] == 1.5 and pg["met"] is True  # 60 of 6,000: within 1%
    assert pg["cpu_ratio"] == 2.0
    assert "oidc-provider-pg cluster left out: 5,000 errors" in str(pg["detail"])
    assert NOP_PG not in str(pg["detail"]).replace(NOP_CLUSTER, "")
