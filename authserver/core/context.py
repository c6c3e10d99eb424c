"""The request (or CLI invocation) in flight: its id, who and where, and what
the access line reports. One bag, bound once, read by logging and auditing."""

import ipaddress
import itertools
import os
import secrets
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import lru_cache

# Far longer than any IP literal (45 characters at most, plus a zone id).
MAX_IP_LENGTH = 64


@dataclass
class RequestContext:
    """What the access line and the audit records need to know of the request.

    Mutable on purpose: code running in a copied context (a thread, a task)
    still updates the one object the request-context layer reads at the end.
    """

    request_id: str
    actor: str | None = None  # "user:<uuid>", "client:<id>", "cli:<os user>"
    ip: str | None = None
    client_id: str | None = None
    grant_type: str | None = None
    error: str | None = None
    route: str | None = None  # a fast path's label (routes are in the scope)


_current: ContextVar[RequestContext | None] = ContextVar(
    "authserver_request", default=None
)


class _RequestIds:
    """Request ids: 32 hex digits, a random prefix per process and a counter.

    An id only has to be unique, not secret (it is echoed and logged): this
    saves the kernel call for 16 random bytes that uuid4 makes on every
    request. A forked child draws its own prefix.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_request_ids = _RequestIds()


def new_request_id() -> str:
    return _request_ids.next()


def bind_request(
    request_id: str | None,
    *,
    actor: str | None = None,
    ip: str | None = None,
    route: str | None = None,
) -> Token[RequestContext | None]:
    """Start a request (or CLI invocation) context, or none; returns the reset token."""
    if not request_id:
        return _current.set(None)
    return _current.set(RequestContext(request_id, actor=actor, ip=ip, route=route))


def reset_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def current_request() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request (or CLI invocation) being served, if any."""
    context = _current.get()
    return context.request_id if context else None


def annotate_request(
    *,
    client_id: str | None = None,
    grant_type: str | None = None,
    error: str | None = None,
    actor: str | None = None,
) -> None:
    """Note the client, grant type, error code or actor of the request in flight."""
    context = _current.get()
    if context is None:
        return
    if client_id is not None:
        context.client_id = client_id
    if grant_type is not None:
        context.grant_type = grant_type
    if error is not None:
        context.error = error
    if actor is not None:
        context.actor = actor


def client_ip(host: str | None) -> str | None:
    """The peer's address as a canonical IP literal, or None if it is not one.

    Behind a trusted proxy uvicorn takes the client address from
    X-Forwarded-For as sent, so it can be any text of any length: only a
    parsable address is stored (audit_events.ip) or logged.
    """
    if not host or len(host) > MAX_IP_LENGTH:
        return None  # checked before the cache, which must not pin long keys
    return _canonical_ip(host)


# On every request's path, and the same few proxy addresses recur: parse once.
@lru_cache(maxsize=4096)
def _canonical_ip(host: str) -> str | None:
    # An IPv6 zone id ("%eth0") is free text and names our interface, not
    # the peer: drop it.
    address = host.partition("%")[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
