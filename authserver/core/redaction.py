"""Scrub secrets out of log data: the last line of defence behind "never log it".

Code must not log secrets in the first place (STYLE §9); this catches what slips
through anyway: a sensitive `extra` key, a token inside an exception message, an
`Authorization` header echoed by a library, a query string in a URL.
"""

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

# Key names whose values are never logged, compared after lower-casing and
# turning "-" into "_". Substrings catch variants such as `new_password`,
# `client_secret_hash` or `keys_passphrase`.
_SENSITIVE_PARTS = (
    "password",
    "passwd",
    "secret",
    "passphrase",
    "authorization",
    "cookie",
    "private_key",
    "credential",
    "retry_blob",
)
_SENSITIVE_EXACT = {"code", "assertion", "pem"}

# Parameter names whose values are masked where they appear in free text.
_KEY_NAMES = "|".join(
    (
        "password",
        "passwd",
        "secret",
        "passphrase",
        "authorization",
        "token",
        "code",
    )
)

_PEM_SPACE = r"(?: |\+|%20)"
_PEM_WORDS = rf"(?:{_PEM_SPACE}[A-Z0-9]+)*?{_PEM_SPACE}"

_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block (any algorithm, encrypted or not), also
    # when URL-encoded ("-----BEGIN+PRIVATE+KEY-----%0A...") in a logged URL.
    (
        re.compile(
            rf"-----BEGIN{_PEM_WORDS}PRIVATE{_PEM_SPACE}KEY-----.*?"
            rf"(?:-----END{_PEM_WORDS}PRIVATE{_PEM_SPACE}KEY-----|$)",
            re.DOTALL,
        ),
        "[REDACTED PRIVATE KEY]",
    ),
    # JWS/JWE compact serialisations: every JWT this server mints starts eyJ.
    (re.compile(r"eyJ[\w-]*\.[\w-]+(?:\.[\w-]*){1,3}"), REDACTED),
    # Authorization header values.
    (
        re.compile(r"\b(Basic|Bearer|DPoP)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
        r"\1 " + REDACTED,
    ),
    # key=value in query strings and form bodies.
    (
        re.compile(rf"(?i)\b(\w*(?:{_KEY_NAMES}))=[^&\s\"']+"),
        r"\1=" + REDACTED,
    ),
    # 'key': 'value' and "key": "value" in reprs and JSON (pydantic errors, dicts).
    (
        re.compile(
            rf"(?i)(['\"](?:\w*(?:{_KEY_NAMES})\w*|input)['\"]\s*:\s*)"
            r"(['\"])(?:\\.|(?!\2).)*\2"
        ),
        r"\1\2" + REDACTED + r"\2",
    ),
)


@lru_cache(maxsize=1024)  # a handful of field names, checked on every log line
def is_sensitive_key(key: str) -> bool:
    """True when a field of this name may hold a secret."""
    name = key.lower().replace("-", "_")
    if name in _SENSITIVE_EXACT or name.endswith("token"):
        return True
    return any(part in name for part in _SENSITIVE_PARTS)


# Every rule above needs one of these in the text; most log values (methods,
# paths, event names, ids) have none, and skip the regular expressions.
_TRIGGERS = re.compile(r"KEY(?:-----|\+|%20)|eyJ|[=: ]")


def scrub_text(text: str) -> str:
    """The text with every secret-looking substring masked."""
    if _TRIGGERS.search(text) is None:
        return text
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, *, depth: int = 0) -> Any:
    """A copy of `value` with sensitive keys and secret-looking strings masked."""
    if depth > 8:  # pathological nesting: do not recurse forever, drop it
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value  # most of a log line; no need to ask the ABCs below
    if isinstance(value, bytes):
        return scrub_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return redact_mapping(value, depth=depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, depth=depth + 1) for item in value]
    return value


def redact_mapping(data: Mapping[Any, Any], *, depth: int = 0) -> dict[Any, Any]:
    """A copy of `data` with sensitive keys' values replaced, recursively."""
    clean: dict[Any, Any] = {}
    for key, value in data.items():
        if value is None:
            clean[key] = None
        elif isinstance(key, str) and is_sensitive_key(key):
            clean[key] = REDACTED
        elif type(value) is str:  # most of a log line: skip redact()'s dispatch
            clean[key] = scrub_text(value)
        else:
            clean[key] = redact(value, depth=depth)
    return clean
