"""``shipyard db``: the metadata store's schema."""

from __future__ import annotations

import re

import click

from shipyard.cli._app import State, pass_state


@click.group()
def db() -> None:
    """Manage the metadata store."""


@db.command()
@pass_state
def upgrade(state: State) -> None:
    """Migrate the metadata store to the newest schema (safe to run any time)."""
    client = state.client
    where = redact(client.settings.uri)
    if client.upgrade_db():
        click.echo(f"Migrated the metadata store at {where} to the newest schema.")
    else:
        click.echo(f"The metadata store at {where} is up to date; nothing to do.")


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    return re.sub(r"^([\w+.-]+://[^:/@]*):[^@/]*@", r"\1:***@", uri)
