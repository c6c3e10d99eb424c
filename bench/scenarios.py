"""The scenarios: what each one sends, what it needs, and what bounds it."""

from dataclasses import dataclass
from typing import Any

from bench.loadgen import Endpoint, Group

CEILING_FORM = b"grant_type=client_credentials&scope=api%3Aread"


@dataclass(frozen=True)
class Discovery:
    """What a server says it supports (RFC 8414 / OpenID Connect Discovery).

    `document` is None when the server publishes none; then every scenario is
    attempted, since the caller named the endpoints by hand.
    """

    document: dict[str, Any] | None

    def grant_supported(self, grant: str) -> bool:
        if self.document is None:
            return True
        return grant in (self.document.get("grant_types_supported") or [])

    @property
    def introspection_endpoint(self) -> str | None:
        if self.document is None:
            return None
        value = self.document.get("introspection_endpoint")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Scenario:
    name: str
    ceiling: bool  # served by the ceiling app (or computed: bcrypt)
    default_concurrency: int
    bound: str | None = None  # the ceiling that bounds it
    target: float | None = None  # the target, as a fraction of `bound`
    description: str = ""

    def unsupported(self, discovery: Discovery, endpoint: Endpoint) -> str | None:
        """Why this server cannot run the scenario, or None when it can."""
        needs_login = self.name in ("password", "refresh", "introspection", "mixed")
        if needs_login and not discovery.grant_supported("password"):
            return "n/a (not supported)"
        if self.name == "refresh" and not discovery.grant_supported("refresh_token"):
            return "n/a (not supported)"
        if self.name == "client_credentials" and not discovery.grant_supported(
            "client_credentials"
        ):
            return "n/a (not supported)"
        if self.name == "introspection" and endpoint.introspection_path is None:
            return "n/a (not supported)"
        if needs_login and not endpoint.users:
            return "n/a (no user given)"
        return None

    def groups(
        self, endpoint: Endpoint, concurrency: int, mixed_jwks: tuple[int, float]
    ) -> tuple[Group, ...]:
        match self.name:
            case "bytes":
                return (Group("bytes", "get", concurrency, path="/bytes"),)
            case "sign1" | "sign2":
                return (
                    Group(
                        self.name,
                        "post",
                        concurrency,
                        path=f"/{self.name}",
                        body=CEILING_FORM,
                        expect=b'"access_token"',
                    ),
                )
            case "jwks":
                return (
                    Group(
                        "jwks", "get", concurrency, endpoint.jwks_path, expect=b'"keys"'
                    ),
                )
            case "discovery":
                return (
                    Group(
                        "discovery",
                        "get",
                        concurrency,
                        endpoint.discovery_path,
                        expect=b'"token_endpoint"',
                    ),
                )
            case "password" | "refresh" | "client_credentials":
                return (Group(self.name, self.name, concurrency),)
            case "introspection":
                return (Group("introspection", "introspect", concurrency),)
            case "mixed":
                vus, rate = mixed_jwks
                return (
                    Group(
                        "mixed: jwks",
                        "get",
                        vus,
                        endpoint.jwks_path,
                        expect=b'"keys"',
                        rate=rate,
                    ),
                    Group("mixed: password", "password", concurrency),
                )
        raise ValueError(f"unknown scenario {self.name!r}")


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("bytes", True, 32, description="pre-serialised bytes (stack ceiling)"),
        Scenario("sign1", True, 32, description="one RS256 signature per request"),
        Scenario("sign2", True, 32, description="two RS256 signatures per request"),
        Scenario("bcrypt", True, 0, description="cores / time of one bcrypt verify"),
        Scenario("jwks", False, 32, bound="bytes", target=0.5),
        Scenario("discovery", False, 32, bound="bytes"),
        Scenario("password", False, 16, bound="bcrypt", target=0.9),
        Scenario("refresh", False, 32, bound="sign2", target=0.4),
        Scenario("client_credentials", False, 32, bound="sign1", target=0.6),
        Scenario("introspection", False, 32),
        Scenario("mixed", False, 16),
    )
}
CEILINGS = [s for s in SCENARIOS.values() if s.ceiling]
SERVER_SCENARIOS = [s for s in SCENARIOS.values() if not s.ceiling]
LOGIN_SCENARIOS = ("password", "refresh", "introspection", "mixed")
