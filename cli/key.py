"""authctl key: the signing keys (list, safe rotation, prune, revoking a
compromised key, rewrap, moving keys between the file and database stores).

Every server process picks up changes by itself (within
AUTH_KEYSTORE_CHECK_INTERVAL seconds), so these commands only edit the store
AUTH_KEYS_STORE names; no restart is involved. The file store needs no
database; the database store is the signing_keys table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cli.common import (
    database_engine,
    open_unit_of_work,
    require_schema,
    run,
    settings,
)
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
    from authserver.services.keystore import KeyRecord, SigningKeyStore

T = TypeVar("T")

app = typer.Typer(
    help="Manage the token signing keys (the store AUTH_KEYS_STORE names: "
    "AUTH_KEYS_DIR or the database).\n\nExample: authctl key rotate",
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

    records = _with_store(lambda store: store.records(), warn_exposed=True)
    now = datetime.now(UTC)
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
    not, nothing is written. The new key is encrypted like the others. On every
    host, one rotation runs at a time.

    Example: authctl key rotate
    """
    from authserver.services.keystore import signing_record

    async def rotated(store: "SigningKeyStore") -> tuple["KeyRecord", list[Any]]:
        new = await store.rotate(immediate=now)
        return new, await store.records()

    new, records = _with_store(rotated)
    _audit("key_rotated", kid=new.kid, signing_from=new.signing_from.isoformat())
    moment = datetime.now(UTC)
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
        seconds = int(settings().jwks_max_age.total_seconds())
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
    gone = _with_store(lambda store: store.prune())
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
    verifying, and its private key is deleted.

    Every token it signed stops being valid at every server within
    AUTH_KEYSTORE_CHECK_INTERVAL: users whose refresh tokens it signed must
    log in again. If it was the signing key, a new key signs from now on.
    Resource servers keep a cached JWKS (AUTH_JWKS_MAX_AGE): until it expires
    they may still accept tokens of the revoked key. For a routine change of
    key, use `authctl key rotate`.

    Example: authctl key revoke 3f9c2d0e8b7a4c1e9d6f5a4b3c2d1e0f --yes
    """
    records = _with_store(lambda store: store.records())
    if not any(r.kid == kid for r in records):
        fail(f"no key {kid} in the key store (see authctl key list)")
    confirm(f"revoke key {kid}? Every token it signed stops being valid", yes=yes)
    replacement = _with_store(lambda store: store.revoke(kid))
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


@app.command("rewrap")
def rewrap(as_json: JsonOpt = False) -> None:
    """Re-encrypt every private key under AUTH_KEYS_PASSPHRASE.

    To change the passphrase: set the new one as AUTH_KEYS_PASSPHRASE and the
    old one in AUTH_KEYS_PREVIOUS_PASSPHRASES (a JSON list) everywhere, run
    this, then drop the old one. The keys themselves do not change: no token
    is affected and servers need no restart.

    Example: authctl key rewrap
    """
    changed = _with_store(lambda store: store.rewrap())
    if changed:
        _audit("keys_rewrapped", kids=changed)
    if as_json:
        print_json(changed)
        return
    if not changed:
        say("every key is already encrypted under AUTH_KEYS_PASSPHRASE")
    for kid in changed:
        say(f"re-encrypted key {kid}")


DirectoryArg = Annotated[
    Path,
    typer.Argument(
        metavar="DIR", help="A key-store directory (manifest.json + <kid>.pem)."
    ),
]


@app.command("export")
def export(directory: DirectoryArg, as_json: JsonOpt = False) -> None:
    """Copy every key, with its state, into a new file store in DIR.

    The copy is a store AUTH_KEYS_STORE=file can serve from (AUTH_KEYS_DIR),
    or `authctl key import` can load into a database: files mode 0600 in a
    0700 directory, private keys encrypted with AUTH_KEYS_PASSPHRASE (as the
    file store does: unencrypted only when no passphrase is set). Nothing
    secret is printed. DIR must not hold a key store already.

    Example: authctl key export /secure/keys-backup
    """
    from authserver.services.keystore import file_keystore

    async def copy(store: "SigningKeyStore") -> list[str]:
        keys = await store.stored_keys()
        target = file_keystore(
            settings(), directory, passphrases=settings().key_passphrases[:1]
        )
        await _file_errors(target.import_keys(keys), directory)
        return [k.record.kid for k in keys]

    kids = _with_store(copy)
    _audit("keys_exported", kids=kids, directory=str(directory))
    if as_json:
        print_json(kids)
        return
    say(f"exported {len(kids)} key(s) to {directory}")


@app.command("import")
def import_keys(
    directory: DirectoryArg,
    unencrypted: Annotated[
        bool,
        typer.Option(
            "--unencrypted",
            help="The files in DIR are not encrypted (a file store run "
            "without AUTH_KEYS_PASSPHRASE).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load a file store's keys, states unchanged, into the configured store.

    Moves the file store into the database (AUTH_KEYS_STORE=database): the
    same keys keep signing and verifying, so no token or refresh token is
    affected. Every key in DIR must load (with AUTH_KEYS_PASSPHRASE or
    an older passphrase) and the configured store must be empty; otherwise
    nothing changes.

    Example: authctl key import ./keys   (with AUTH_KEYS_STORE=database)
    """
    from authserver.services.keystore import file_keystore

    current = settings()
    if directory.resolve() == current.keys_dir.resolve() and (
        current.keys_store == "file"
    ):
        fail(f"{directory} is the configured key store itself")
    source = file_keystore(
        current,
        directory,
        passphrases=[] if unencrypted else current.key_passphrases,
    )

    async def load(store: "SigningKeyStore") -> list[str]:
        keys = await _file_errors(source.stored_keys(), directory)
        await store.import_keys(keys)
        return [k.record.kid for k in keys]

    kids = _with_store(load, empty_ok=True)
    _audit("keys_imported", kids=kids, directory=str(directory))
    if as_json:
        print_json(kids)
        return
    say(f"imported {len(kids)} key(s) from {directory}")


def key_json(
    record: "KeyRecord", now: datetime, signer: "KeyRecord | None"
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


def _state_label(record: "KeyRecord", now: datetime, signer: "KeyRecord | None") -> str:
    if record is signer:
        return "active (signing)"
    return record.state(now)


def _published(record: "KeyRecord", now: datetime) -> str:
    if not record.is_published(now):
        return "no"
    if record.published_until is None:
        return "yes"
    return f"until {when(record.published_until)}"


def _with_store(
    action: "Callable[[SigningKeyStore], Awaitable[T]]",
    *,
    empty_ok: bool = False,
    warn_exposed: bool = False,
) -> T:
    """Run `action` on the configured store; its errors exit 1 in one line."""

    async def main() -> T:
        async with _opened_store(empty_ok=empty_ok) as store:
            if warn_exposed and (problem := store.exposure()):
                note(f"warning: {problem}")
            if settings().keys_store == "file":
                return await _file_errors(action(store), settings().keys_dir)
            return await action(store)

    return run(main())


async def _file_errors(work: Awaitable[T], directory: Path) -> T:
    """An OSError of a file store (disk full, permissions) names its file."""
    from authserver.services.keystore import KeyStoreError

    try:
        return await work
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise KeyStoreError(
            f"key store {directory}: {where}{exc.strerror or exc}"
        ) from None


@asynccontextmanager
async def _opened_store(*, empty_ok: bool) -> AsyncIterator["SigningKeyStore"]:
    from authserver.services.keystore import MANIFEST, keystore_from_settings

    current = settings()
    if current.keys_store == "file":
        if not empty_ok and not (current.keys_dir / MANIFEST).is_file():
            # Most likely AUTH_KEYS_DIR points somewhere else than the server's:
            # say so rather than quietly starting a second key store.
            fail(
                f"no key store in {current.keys_dir} (no {MANIFEST}): check "
                "AUTH_KEYS_DIR; the server creates the first key when it starts"
            )
        yield keystore_from_settings(current)
        return
    engine = database_engine()
    try:
        await require_schema(engine)
        yield keystore_from_settings(current, engine=engine)
    finally:
        await engine.dispose()


def _audit(event: str, **detail: Any) -> None:
    """Record a key event in the audit trail; the key store change stands anyway.

    The file store needs no database, so a database that cannot take the
    record gets a warning, not a failure after the fact.
    """
    from authserver.services import audit

    async def write() -> None:
        async with open_unit_of_work() as uow:
            await audit.record_alone(uow, event, **detail)

    try:
        asyncio.run(write())
    except Exception as exc:  # any database trouble: warn, the change is done
        note(f"warning: audit record not written ({type(exc).__name__})")
