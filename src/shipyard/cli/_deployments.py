"""``shipyard deployments``: create, list, show, update and delete deployments kept in the store."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from shipyard.cli._app import State, pass_state

_PERCENT = click.FloatRange(min=0, max=100, min_open=True, max_open=True)


@click.group()
def deployments() -> None:
    """Deployments kept in the store: the model a name serves, with an optional canary and
    shadow. `shipyard serve --deployment NAME` serves one and follows its updates."""


@deployments.command("create")
@click.argument("name")
@click.option("--model", "model", required=True, metavar="URI", help="The model it serves.")
@click.option("--canary", metavar="URI", help="A model answering --canary-percent of requests.")
@click.option(
    "--canary-percent", type=_PERCENT, metavar="P", help="The canary's share, 0 < P < 100."
)
@click.option(
    "--shadow", metavar="URI", help="A model predicting on every request, never answering."
)
@click.option("--description", metavar="TEXT", help="What the deployment is for.")
@pass_state
def create(
    state: State,
    name: str,
    model: str,
    canary: str | None,
    canary_percent: float | None,
    shadow: str | None,
    description: str | None,
) -> None:
    """Store deployment NAME serving --model (models:/NAME@ALIAS follows the alias)."""
    made = state.client.create_deployment(
        name,
        model,
        canary=canary,
        canary_percent=canary_percent,
        shadow=shadow,
        description=description,
    )
    click.echo(f"created deployment {made.name}: {_summary(made)}")


@deployments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """List deployments with what each serves."""
    from shipyard.cli import _render

    found = state.client.list_deployments()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(d) for d in found], indent=2))
        return
    rows = [
        (
            d.name,
            d.model_uri,
            "" if d.canary_uri is None else f"{d.canary_uri} ({d.canary_percent:g}%)",
            d.shadow_uri or "",
            _render.when(d.updated_at),
            d.description or "",
        )
        for d in found
    ]
    _render.console().print(
        _render.table(
            f"{len(found)} deployment{'s' if len(found) != 1 else ''}",
            ("name", "model", "canary", "shadow", "updated", "description"),
            rows,
            no_wrap=("name",),
        )
    )


@deployments.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def show(state: State, name: str, as_json: bool) -> None:
    """Show deployment NAME and the versions its URIs name now."""
    from shipyard.cli import _render

    client = state.client
    found = client.get_deployment(name)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(found), indent=2))
        return

    def now(uri: str | None) -> str:
        return "" if uri is None else f"{uri} (now {client.get_model_version(uri).uri})"

    _render.console().print(
        _render.fields(
            [
                ("deployment", found.name),
                ("model", now(found.model_uri)),
                ("canary", now(found.canary_uri)),
                (
                    "canary share",
                    "" if found.canary_percent is None else f"{found.canary_percent:g}%",
                ),
                ("shadow", now(found.shadow_uri)),
                ("description", found.description or ""),
                ("created", f"{_render.when(found.created_at)} by {found.created_by}"),
                ("updated", _render.when(found.updated_at)),
            ]
        )
    )


@deployments.command("update")
@click.argument("name")
@click.option("--model", metavar="URI", help="Serve this model instead.")
@click.option("--canary", metavar="URI", help="Send --canary-percent of requests to this model.")
@click.option("--canary-percent", type=_PERCENT, metavar="P", help="The canary's new share.")
@click.option("--no-canary", is_flag=True, help="Remove the canary (and its share).")
@click.option("--shadow", metavar="URI", help="Run this model as the shadow.")
@click.option("--no-shadow", is_flag=True, help="Remove the shadow.")
@click.option("--description", metavar="TEXT", help="A new description.")
@pass_state
def update(
    state: State,
    name: str,
    model: str | None,
    canary: str | None,
    canary_percent: float | None,
    no_canary: bool,
    shadow: str | None,
    no_shadow: bool,
    description: str | None,
) -> None:
    """Change what deployment NAME serves; what is not given stays. Servers running it pick
    the change up within seconds."""
    from shipyard.tracking._deployments import KEEP

    if no_canary and (canary is not None or canary_percent is not None):
        raise click.UsageError("--no-canary cannot go with --canary or --canary-percent.")
    if no_shadow and shadow is not None:
        raise click.UsageError("--no-shadow cannot go with --shadow.")
    changes: dict[str, Any] = {
        "model": model,
        "canary": None if no_canary else canary,
        "canary_percent": canary_percent,
        "shadow": None if no_shadow else shadow,
        "description": description,
    }
    removed = {"canary"} if no_canary else set()
    removed |= {"shadow"} if no_shadow else set()
    given = {k: v for k, v in changes.items() if v is not None or k in removed}
    if not given:
        raise click.UsageError(
            "Nothing to change: give --model, --canary, --canary-percent, --no-canary, "
            "--shadow, --no-shadow or --description."
        )
    updated = state.client.update_deployment(name, **{k: given.get(k, KEEP) for k in changes})
    click.echo(f"updated deployment {updated.name}: {_summary(updated)}")


@deployments.command("delete")
@click.argument("name")
@pass_state
def delete(state: State, name: str) -> None:
    """Delete deployment NAME's definition (its prediction log is kept)."""
    gone = state.client.delete_deployment(name)
    click.echo(f"deleted deployment {gone.name} (was {_summary(gone)})")


def _summary(found: Any) -> str:
    parts = [found.model_uri]
    if found.canary_uri is not None:
        parts.append(f"canary {found.canary_uri} at {found.canary_percent:g}%")
    if found.shadow_uri is not None:
        parts.append(f"shadow {found.shadow_uri}")
    return ", ".join(parts)
