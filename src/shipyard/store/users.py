"""Users and API tokens: who may call a Shipyard server, and with which role.

A token reads ``sy_<token_id>_<secret>``. ``token_id`` is public (listings show
it, ``shipyard tokens revoke`` takes it) and finds the row; the secret is 32
random bytes from :mod:`secrets`, shown once and stored only as its sha256.

Why a fast hash and not bcrypt/scrypt/argon2: slow, salted hashes exist to make
guessing a *low-entropy* password from a stolen hash expensive. A secret of 256
random bits cannot be guessed however fast each try is, so a slow hash would
add nothing but a delay of tens of milliseconds to every authenticated request;
a salt is pointless for the same reason (no two secrets collide, no table
of precomputed hashes can cover the space). Comparison is constant-time
(:func:`hmac.compare_digest`) all the same.

Nothing here caches: every call reads the rows, so a revoked token, an expired
one or a disabled user is refused on the next request, by every server replica.
Secrets and hashes never enter an audit payload.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import AlreadyExists, NotFound
from shipyard.store._schema import tokens, users
from shipyard.store._store import WriteTx
from shipyard.store.entities import Token, User

ROLES = ("viewer", "editor", "admin")
TOKEN_PREFIX = "sy"
SECRET_BYTES = 32
#: ``last_used_at`` is written at most this often per token, so authenticating
#: a busy client's requests stays a read (it is a hint for people, not a lock).
TOUCH_INTERVAL_MS = 60_000
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_MAX_TOKEN_LENGTH = 128
_USER_HINT = "List users with `shipyard users list`."


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ------------------------------------------------------------------------ users


def _user(row: Row) -> User:
    return User(
        name=row.name,
        role=row.role,
        disabled=row.disabled,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def create_user(tx: WriteTx, name: str, role: str, *, now: int) -> User:
    try:
        with tx.conn.begin_nested():
            tx.conn.execute(
                insert(users).values(
                    name=name, role=role, disabled=False, created_at=now, created_by=tx.actor
                )
            )
    except sa_exc.IntegrityError as exc:
        raise AlreadyExists(
            "user",
            name,
            hint="Pick another name, or change its role with `shipyard users set-role NAME ROLE`.",
        ) from exc
    tx.audit("user.create", "user", name, {"role": role})
    return User(name, role, False, now, tx.actor)


def _user_row(conn: Connection, name: str, *, lock: bool = False) -> Row:
    query = select(users).where(users.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("user", name, hint=_USER_HINT)
    return row


def get_user(conn: Connection, name: str) -> User:
    return _user(_user_row(conn, name))


def list_users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.name))]


def set_role(tx: WriteTx, name: str, role: str) -> User:
    row = _user_row(tx.conn, name, lock=True)
    if row.role != role:
        tx.conn.execute(update(users).where(users.c.id == row.id).values(role=role))
        tx.audit("user.role", "user", name, {"role": role, "previous": row.role})
    return get_user(tx.conn, name)


def set_disabled(tx: WriteTx, name: str, disabled: bool) -> User:
    """Disable a user (every token of theirs stops working at once) or enable them again."""
    row = _user_row(tx.conn, name, lock=True)
    if row.disabled != disabled:
        tx.conn.execute(update(users).where(users.c.id == row.id).values(disabled=disabled))
        tx.audit("user.disable" if disabled else "user.enable", "user", name, {})
    return get_user(tx.conn, name)


# ----------------------------------------------------------------------- tokens


def _tokens_query():  # type: ignore[no-untyped-def]
    # Every column but the hash: it never leaves this module.
    return select(
        tokens.c.token_id,
        users.c.name.label("user"),
        tokens.c.name,
        tokens.c.created_at,
        tokens.c.created_by,
        tokens.c.last_used_at,
        tokens.c.expires_at,
        tokens.c.revoked_at,
    ).join(users, users.c.id == tokens.c.user_id)


def _token(row: Row) -> Token:
    return Token(
        token_id=row.token_id,
        user=row.user,
        name=row.name,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def create_token(
    tx: WriteTx, user: str, *, name: str | None, expires_at: int | None, now: int
) -> tuple[Token, str]:
    """A new token for ``user``: its record and the full token text, which is not kept."""
    user_row = _user_row(tx.conn, user)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    tx.conn.execute(
        insert(tokens).values(
            token_id=token_id,
            user_id=user_row.id,
            name=name,
            hash=hash_secret(secret),
            created_at=now,
            created_by=tx.actor,
            expires_at=expires_at,
        )
    )
    tx.audit(
        "token.create", "token", token_id, {"user": user, "name": name, "expires_at": expires_at}
    )
    token = Token(token_id, user, name, now, tx.actor, None, expires_at, None)
    return token, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def list_tokens(conn: Connection, user: str | None = None) -> list[Token]:
    query = _tokens_query().order_by(tokens.c.created_at, tokens.c.id)
    if user is not None:
        query = query.where(tokens.c.user_id == _user_row(conn, user).id)
    return [_token(row) for row in conn.execute(query)]


def get_token(conn: Connection, token_id: str) -> Token:
    row = conn.execute(_tokens_query().where(tokens.c.token_id == token_id)).first()
    if row is None:
        raise NotFound("token", token_id, hint="List tokens with `shipyard tokens list`.")
    return _token(row)


def revoke_token(tx: WriteTx, token_id: str, *, now: int) -> Token:
    """Revoke a token for good; revoking it again changes nothing."""
    token = get_token(tx.conn, token_id)
    if token.revoked_at is None:
        tx.conn.execute(
            update(tokens)
            .where(tokens.c.token_id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        tx.audit("token.revoke", "token", token_id, {"user": token.user, "name": token.name})
    return get_token(tx.conn, token_id)


def parse_token(token: object) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed ``sy_<token_id>_<secret>``, else None."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not _TOKEN_ID.fullmatch(token_id) or not secret:
        return None
    return token_id, secret


def authenticate(conn: Connection, token: str, *, now: int) -> tuple[User, Token] | None:
    """The user and token record of a valid token; None if it is malformed, unknown,
    wrong, revoked or expired, or its user is disabled (the caller learns no more)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = conn.execute(
        select(
            tokens,
            users.c.name.label("user"),
            users.c.role,
            users.c.disabled,
            users.c.created_at.label("user_created_at"),
            users.c.created_by.label("user_created_by"),
        )
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_id == token_id)
    ).first()
    # Hash even when no row matched, so an unknown id costs as long as a wrong secret.
    expected = row.hash if row is not None else "0" * 64
    if not hmac.compare_digest(hash_secret(secret), expected) or row is None:
        return None
    if row.revoked_at is not None or row.disabled:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = User(row.user, row.role, row.disabled, row.user_created_at, row.user_created_by)
    return user, _token(row)


def touch(conn: Connection, token_id: str, *, now: int) -> None:
    """Record that a token was used (at most every ``TOUCH_INTERVAL_MS``; not audited)."""
    conn.execute(
        update(tokens)
        .where(
            tokens.c.token_id == token_id,
            (tokens.c.last_used_at.is_(None)) | (tokens.c.last_used_at <= now - TOUCH_INTERVAL_MS),
        )
        .values(last_used_at=now)
    )
