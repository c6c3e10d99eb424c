"""Scope syntax (RFC 6749 §3.3)."""

import re

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")


def validate_scope_tokens(tokens: list[str]) -> list[str]:
    for token in tokens:
        if not SCOPE_TOKEN.fullmatch(token):
            raise ValueError(f"invalid scope token {token!r}")
    return list(dict.fromkeys(tokens))


def parse_scope(value: str) -> list[str] | None:
    """Split a space-delimited scope string; None when its syntax is invalid."""
    tokens = value.split(" ")
    if any(not SCOPE_TOKEN.fullmatch(token) for token in tokens):
        return None
    return list(dict.fromkeys(tokens))
