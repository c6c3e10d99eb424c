"""authctl key: the signing keys in AUTH_KEYS_DIR (list, safe rotation, prune,
revoking a compromised key).

Every server process re-reads the key store by itself (at most every
AUTH_KEYSTORE_CHECK_INTERVAL seconds), so these commands only edit the store;
no restart and no database are involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cli.common import open_unit_of_work, settings
from cli.output import (
    JsonOpt,
    add_row,
    confirm,
    fail,
    note,
    print_json,
    print_table,
    say,
    table,
    when,
)

if TYPE_CHECKING:
    from authserver.services.keystore import KeyRecord, KeyStore

T = TypeVar("T")

app = typer.Typer(
    help="Manage the token signing keys (the key store in AUTH_KEYS_DIR).\n\n"
    "Example: authctl key rotate",
    no_args_is_help=True,
)


@app.command("list")
def list_keys(as_json: JsonOpt = False) -> None:
    """List keys: kid, algorithm, state, when each started and stopped signing,
    whether it is published in the JWKS and how long it is kept.

    States: pending (published, not signing yet), active (signing), retired
    (verifies what it signed), expired (nothing needs it: `key prune` removes it).

    Example: authctl key list
    """
    from authserver.services.keystore import signing_record

    store = _store()
    now = datetime.now(UTC)
    records = _guard(store.records)
    signer = signing_record(records, now)
    if as_json:
        print_json([key_json(r, now, signer) for r in records])
        return
    grid = table(
        "Key ID",
        "Algorithm",
        "State",
        "Created",
        "Signs from",
        "Signs until",
        "Published",
        "Kept until",
    )
    for record in records:
        add_row(
            grid,
            record.kid,
            record.alg,
            _state_label(record, now, signer),
            when(record.created_at),
            when(record.signing_from),
            when(record.signing_until),
            _published(record, now),
            when(record.retain_until),
        )
    print_table(grid)


@app.command("rotate")
def rotate(
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Sign with the new key at once instead of after the JWKS cache "
            "lifetime (resource servers holding a cached JWKS may reject new "
            "tokens until their cache expires).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a new signing key, safely.

    The new key is published in the JWKS at once and starts signing after the
    JWKS cache lifetime (AUTH_JWKS_MAX_AGE), so resource servers already know it.
    The old key stays published until every access and ID token it signed has
    expired, and is kept for as long as refresh tokens it signed can be valid:
    nobody is logged out.

    Every existing key must load with AUTH_KEYS_PASSPHRASE first; if one does
    not, nothing is written. The new key is encrypted like the others.

    Example: authctl key rotate
    """
    from authserver.services.keystore import signing_record

    store = _store()
    new = _guard(lambda: store.rotate(immediate=now))
    _audit("key_rotated", kid=new.kid, signing_from=new.signing_from.isoformat())
    moment = datetime.now(UTC)
    records = _guard(store.records)
    retired = [
        r for r in records if r.kid != new.kid and r.signing_until == new.signing_from
    ]
    if as_json:
        signer = signing_record(records, moment)
        print_json(
            {
                **key_json(new, moment, signer),
                "retired": [key_json(r, moment, signer) for r in retired],
            }
        )
        return
    if now:
        say(f"new key {new.kid} published and signing now")
        seconds = int(store.timing.jwks_max_age.total_seconds())
        note(
            "Resource servers that fetched the JWKS in the last "
            f"{seconds} s may reject tokens signed by the new key until their "
            "cache expires."
        )
    else:
        say(
            f"new key {new.kid} published now; it signs from "
            f"{when(new.signing_from)} (after the JWKS cache lifetime)"
        )
    for old in retired:
        say(
            f"key {old.kid} signs until {when(old.signing_until)}, stays published "
            f"until {when(old.published_until)} and is kept until "
            f"{when(old.retain_until)}"
        )


@app.command("prune")
def prune(as_json: JsonOpt = False) -> None:
    """Delete keys nothing valid can need any more (state expired).

    Never removes the signing key, a pending key or a key that still verifies
    unexpired tokens.

    Example: authctl key prune
    """
    store = _store()
    gone = _guard(store.prune)
    if gone:
        _audit("keys_pruned", kids=[r.kid for r in gone])
    if as_json:
        print_json([r.kid for r in gone])
        return
    if not gone:
        say("nothing to prune")
    for record in gone:
        say(f"removed key {record.kid}")


@app.command("revoke")
def revoke(
    kid: Annotated[
        str, typer.Argument(metavar="KID", help="The key id (see authctl key list).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a compromised key at once: it leaves the JWKS and stops
    verifying, and its file is deleted.

    Every token it signed stops being valid at every server within
    AUTH_KEYSTORE_CHECK_INTERVAL: users whose refresh tokens it signed must
    log in again. If it was the signing key, a new key signs from now on.
    Resource servers keep a cached JWKS (AUTH_JWKS_MAX_AGE): until it expires
    they may still accept tokens of the revoked key. For a routine change of
    key, use `authctl key rotate`.

    Example: authctl key revoke 3f9c2d0e8b7a4c1e9d6f5a4b3c2d1e0f --yes
    """
    store = _store()
    records = _guard(store.records)
    if not any(r.kid == kid for r in records):
        fail(f"no key {kid} in the key store (see authctl key list)")
    confirm(f"revoke key {kid}? Every token it signed stops being valid", yes=yes)
    replacement = _guard(lambda: store.revoke(kid))
    _audit(
        "key_revoked",
        kid=kid,
        replacement=replacement.kid if replacement else None,
    )
    if as_json:
        print_json(
            {"revoked": kid, "signing_key": replacement.kid if replacement else None}
        )
        return
    say(f"revoked key {kid}")
    if replacement is not None:
        say(f"new signing key {replacement.kid}, signing from now")
    max_age = int(settings().jwks_max_age.total_seconds())
    note(
        f"resource servers holding a cached JWKS may accept its tokens for up to "
        f"{max_age} s more (AUTH_JWKS_MAX_AGE)"
    )


def key_json(
    record: KeyRecord, now: datetime, signer: KeyRecord | None
) -> dict[str, Any]:
    stored = record.to_json()
    times = {k: when(v) for k, v in vars(record).items() if isinstance(v, datetime)}
    return {
        **stored,
        **{k: v for k, v in times.items() if k in stored},
        "state": record.state(now),
        "signing": signer is not None and record.kid == signer.kid,
        "published": record.is_published(now),
    }


def _state_label(record: KeyRecord, now: datetime, signer: KeyRecord | None) -> str:
    if record is signer:
        return "active (signing)"
    return record.state(now)


def _published(record: KeyRecord, now: datetime) -> str:
    if not record.is_published(now):
        return "no"
    if record.published_until is None:
        return "yes"
    return f"until {when(record.published_until)}"


def _store() -> KeyStore:
    from authserver.services.keystore import MANIFEST, keystore_from_settings

    current = settings()
    if not (current.keys_dir / MANIFEST).is_file():
        # Most likely AUTH_KEYS_DIR points somewhere else than the server's:
        # say so rather than quietly starting a second key store.
        fail(
            f"no key store in {current.keys_dir} (no {MANIFEST}): check "
            "AUTH_KEYS_DIR; the server creates the first key when it starts"
        )
    return keystore_from_settings(current)


def _audit(event: str, **detail: Any) -> None:
    """Record a key event in the audit trail; the key store change stands anyway.

    Key commands need no database, so a database that cannot take the record
    gets a warning, not a failure after the fact.
    """

    from authserver.services import audit

    async def write() -> None:
        async with open_unit_of_work() as uow:
            await audit.record(uow.session, event, **detail)
            await uow.commit()

    try:
        asyncio.run(write())
    except Exception as exc:  # any database trouble: warn, the rotation is done
        note(f"warning: audit record not written ({type(exc).__name__})")


def _guard(action: Callable[[], T]) -> T:
    from authserver.services.keystore import KeyStoreError

    try:
        return action()
    except KeyStoreError as exc:
        fail(str(exc))
    except OSError as exc:  # writing (disk full, permissions): name the file
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"key store {settings().keys_dir}: {where}{exc.strerror or exc}")
