"""``shipyard server``, ``shipyard users`` and ``shipyard tokens``: serve the store over HTTP
and manage who may call it.

Users and tokens are managed with the store's URI on the server's machine, or
with ``SHIPYARD_URI`` naming a server and ``SHIPYARD_TOKEN`` an admin's token
(the ``/api/v1/users`` and ``/api/v1/tokens`` routes). There is no default user
and no default token, so a server started with ``--auth`` lets nobody in until
the first admin is created on its machine, straight in the store.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shipyard.cli._app import State, pass_state
from shipyard.errors import ConfigError

ROLES_METAVAR = "viewer|editor|admin"


# ----------------------------------------------------------------------- server


def listen_options(*, port: int, workers_help: str, insecure_risk: str) -> Any:
    """The options every server command shares: where to listen, and who may call it."""
    options = [
        click.option(
            "--host",
            default="127.0.0.1",
            show_default=True,
            help="Address to listen on. Beyond loopback, --auth is required (or --insecure).",
        ),
        click.option(
            "--port",
            default=port,
            show_default=True,
            type=click.IntRange(1, 65535),
            help="TCP port.",
        ),
        click.option(
            "--workers",
            default=1,
            show_default=True,
            type=click.IntRange(1, 256),
            help=workers_help,
        ),
        click.option(
            "--auth", is_flag=True, help="Require a bearer token on every route but /health."
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Serve beyond loopback WITHOUT authentication (anyone who can reach the "
            f"port can {insecure_risk}).",
        ),
        click.option(
            "--allowed-host",
            "allowed_hosts",
            multiple=True,
            metavar="HOST",
            help="A Host header value to answer to, repeatable; '*' for any (default: the "
            "--host address and localhost; required with --host 0.0.0.0).",
        ),
    ]

    def apply(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@click.command()
@listen_options(
    port=5000,
    workers_help="Worker processes (all share the store; use PostgreSQL for many writers).",
    insecure_risk="read and change everything",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="A web origin whose pages may call the API (e.g. https://ui.example.com), "
    "repeatable; none by default.",
)
@pass_state
def server(
    state: State,
    host: str,
    port: int,
    workers: int,
    auth: bool,
    insecure: bool,
    allowed_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
) -> None:
    """Serve the platform over HTTP: REST API under /api/v1, its OpenAPI spec, /health."""
    try:
        import uvicorn

        from shipyard.server import _app, _security
    except ImportError as exc:
        raise ConfigError(
            f"`shipyard server` needs packages that are not installed ({exc.name}).",
            hint="Install them with: pip install 'shipyard[server]'.",
        ) from exc
    from shipyard import __version__
    from shipyard.cli._db import redact

    exposed = check_exposure(host, auth=auth, insecure=insecure, risk="read and change everything")
    hosts = list(allowed_hosts) or list(_security.default_allowed_hosts(host))
    _security.check_allowed_hosts(hosts)
    origins = list(_security.check_cors_origins(cors_origins))

    client = state.client
    client.upgrade_db()  # once here, not raced by every worker
    settings = client.settings
    if auth and not client.list_users():
        _warn(
            "note: no users yet, so nobody can call this server. Create one with "
            "`shipyard users create NAME --role admin`, then `shipyard tokens create NAME`."
        )
    if exposed and not auth:
        _warn(
            "\n".join(
                [
                    "!" * 78,
                    f"WARNING: serving on {host}:{port} WITHOUT AUTHENTICATION (--insecure).",
                    "Anyone who can reach this port can read, change and delete everything in",
                    f"the store, recorded as {settings.actor!r}. Use --auth unless this network",
                    "is yours alone.",
                    "!" * 78,
                ]
            )
        )

    # Each worker builds its app from the environment (uvicorn imports it by name).
    os.environ[_app.OPTIONS_VARIABLE] = json.dumps(
        {"auth": auth, "allowed_hosts": hosts, "cors_origins": origins}
    )
    os.environ["SHIPYARD_URI"] = settings.uri
    os.environ["SHIPYARD_HOME"] = str(settings.home)
    os.environ["SHIPYARD_ARTIFACTS"] = settings.artifacts
    shown_host = f"[{host}]" if ":" in host else host
    _warn(
        f"Shipyard {__version__} serving {redact(settings.uri)} on http://{shown_host}:{port} "
        f"(auth {'on' if auth else 'off'}, {workers} worker{'s' if workers != 1 else ''}, "
        f"hosts: {', '.join(hosts)})"
    )
    uvicorn.run(
        f"{_app.__name__}:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
    )


def check_exposure(host: str, *, auth: bool, insecure: bool, risk: str) -> bool:
    """Whether ``host`` is beyond loopback; ConfigError if it is, without --auth or --insecure.

    Shared by every command that listens (``server``, ``serve``): ``risk`` says
    what a stranger reaching the port could do.
    """
    from shipyard.server import _security

    exposed = not _security.is_loopback(host)
    if exposed and not auth and not insecure:
        raise ConfigError(
            f"Refusing to serve on {host} without authentication: anyone who can reach the "
            f"port could {risk}.",
            hint="Add --auth (then create users and tokens with `shipyard users create` and "
            "`shipyard tokens create`), or --insecure to accept the risk.",
        )
    return exposed


def _warn(text: str) -> None:
    click.echo(text, file=sys.stderr)


# ------------------------------------------------------------------------ users


@click.group()
def users() -> None:
    """Users who may call a server (``shipyard server --auth``) and their roles."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, metavar=ROLES_METAVAR, help="What the user may do.")
@pass_state
def users_create(state: State, name: str, role: str) -> None:
    """Add a user. viewer reads; editor also writes runs, datasets and models; admin also
    manages users and tokens."""
    user = state.client.create_user(name, role)
    click.echo(
        f"Created user {user.name} ({user.role}). "
        f"Give them a token with `shipyard tokens create {user.name}`."
    )


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def users_list(state: State, as_json: bool) -> None:
    """List users, their roles and whether they are disabled."""
    from shipyard.cli import _render

    found = state.client.list_users()
    if as_json:
        click.echo(json.dumps([_user_dict(u) for u in found], indent=2))
        return
    rows = [
        (
            u.name,
            u.role,
            "disabled" if u.disabled else "active",
            _render.when(u.created_at),
            u.created_by,
        )
        for u in found
    ]
    _render.console().print(
        _render.table(
            f"{len(found)} user{'s' if len(found) != 1 else ''}",
            ("name", "role", "status", "created", "created by"),
            rows,
            no_wrap=("name",),
        )
    )


@users.command("set-role")
@click.argument("name")
@click.argument("role", metavar=ROLES_METAVAR)
@pass_state
def users_set_role(state: State, name: str, role: str) -> None:
    """Change a user's role (from their next request on, with every token they hold)."""
    user = state.client.set_user_role(name, role)
    click.echo(f"User {user.name} is now {user.role}.")


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@pass_state
def users_disable(state: State, name: str, enable: bool) -> None:
    """Disable a user: none of their tokens works any more (--enable undoes it)."""
    user = state.client.disable_user(name, disabled=not enable)
    click.echo(f"User {user.name} is {'disabled' if user.disabled else 'enabled'}.")


def _user_dict(user: Any) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "created_by": user.created_by,
    }


# ----------------------------------------------------------------------- tokens


@click.group()
def tokens() -> None:
    """API tokens: shown once when created, stored hashed, revocable."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", "label", metavar="LABEL", help="A label, such as 'ci' or 'laptop'.")
@click.option(
    "--expires-days",
    type=int,
    metavar="N",
    help="Stop working after N days (default: works until revoked).",
)
@pass_state
def tokens_create(state: State, user: str, label: str | None, expires_days: int | None) -> None:
    """Create a token for USER and print it (on stdout, alone, so scripts can capture it)."""
    from shipyard.cli import _render

    token, text = state.client.create_token(user, label, expires_days=expires_days)
    click.echo(text)
    expiry = f"expires {_render.when(token.expires_at)}" if token.expires_at else "no expiry"
    _warn(
        f"Token {token.token_id} for {token.user} ({expiry}). It is shown this once and cannot "
        "be shown again: store it now. Send it as `Authorization: Bearer <token>`; revoke it "
        f"with `shipyard tokens revoke {token.token_id}`."
    )


@tokens.command("list")
@click.argument("user", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def tokens_list(state: State, user: str | None, as_json: bool) -> None:
    """List tokens (all, or USER's): id, label, status, last use. Never the token itself."""
    import time

    from shipyard.cli import _render

    found = state.client.list_tokens(user)
    now = int(time.time() * 1000)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "token_id": t.token_id,
                        "user": t.user,
                        "name": t.name,
                        "status": t.status(now),
                        "created_at": t.created_at,
                        "created_by": t.created_by,
                        "last_used_at": t.last_used_at,
                        "expires_at": t.expires_at,
                        "revoked_at": t.revoked_at,
                    }
                    for t in found
                ],
                indent=2,
            )
        )
        return
    rows = [
        (
            t.token_id,
            t.user,
            t.name or "",
            t.status(now),
            _render.when(t.created_at),
            _render.when(t.last_used_at) if t.last_used_at else "never",
            _render.when(t.expires_at) if t.expires_at else "",
        )
        for t in found
    ]
    _render.console().print(
        _render.table(
            f"{len(found)} token{'s' if len(found) != 1 else ''}",
            ("id", "user", "name", "status", "created", "last used", "expires"),
            rows,
            no_wrap=("id",),
        )
    )


@tokens.command("revoke")
@click.argument("token_id")
@pass_state
def tokens_revoke(state: State, token_id: str) -> None:
    """Revoke a token by its id; servers refuse it from the next request on."""
    token = state.client.revoke_token(token_id)
    click.echo(f"Revoked token {token.token_id} of {token.user}.")
