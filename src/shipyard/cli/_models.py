"""``shipyard models``: list, show, alias, unalias, archive, export and describe model versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shipyard.cli._app import State, pass_state


@click.group()
def models() -> None:
    """Registered models: versions, aliases, ONNX export and model cards."""


@models.command("list")
@click.option("--name", "name_filter", help="Only models whose name contains this text.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only models with this tag (repeatable).",
)
@click.option("--alias", help="Only models that have this alias.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_(
    state: State, name_filter: str | None, tags: tuple[str, ...], alias: str | None, as_json: bool
) -> None:
    """List registered models with their newest version and aliases."""
    from shipyard.cli import _render

    found = state.client.search_models(name_filter, tags=_key_values(tags), alias=alias)
    if as_json:
        click.echo(json.dumps([_model_dict(m) for m in found], indent=2))
        return
    rows = [
        (
            m.name,
            m.latest_version or "",
            ", ".join(f"{a}->{v}" for a, v in m.aliases.items()),
            ", ".join(f"{k}={v}" for k, v in m.tags.items()),
            _render.when(m.updated_at),
            m.description or "",
        )
        for m in found
    ]
    _render.console().print(
        _render.table(
            f"{len(found)} registered model{'s' if len(found) != 1 else ''}",
            ("name", "latest", "aliases", "tags", "updated", "description"),
            rows,
            no_wrap=("name",),
        )
    )


@models.command("show")
@click.argument("ref", metavar="NAME[/VERSION]|models:/URI")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def show(state: State, ref: str, as_json: bool) -> None:
    """Show a model's versions, or one version in full (NAME/3, NAME@champion, models:/...)."""
    from shipyard.cli import _render

    client = state.client
    uri = _as_uri(ref)
    if uri is None:
        model = client.get_model(ref)
        versions = client.model_versions(ref)
        if as_json:
            out = _model_dict(model) | {"versions": [_version_dict(v) for v in versions]}
            click.echo(json.dumps(out, indent=2))
            return
        console = _render.console()
        console.print(
            _render.fields(
                [
                    ("model", model.name),
                    ("description", model.description or ""),
                    ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items())),
                    ("aliases", ", ".join(f"@{a} -> {v}" for a, v in model.aliases.items())),
                ]
            )
        )
        rows = [
            (
                v.version,
                v.flavor,
                v.status,
                ", ".join(v.aliases),
                ", ".join(v.files),
                v.run_id or "",
                _render.when(v.created_at),
            )
            for v in versions
        ]
        console.print(
            _render.table(
                None,
                ("version", "flavor", "status", "aliases", "formats", "run", "created"),
                rows,
            )
        )
        return
    version = client.get_model_version(uri)
    if as_json:
        click.echo(json.dumps(_version_dict(version), indent=2))
        return
    console = _render.console()
    console.print(
        _render.fields(
            [
                ("uri", version.uri),
                ("flavor", version.flavor),
                ("status", version.status),
                ("aliases", ", ".join(version.aliases)),
                ("description", version.description or ""),
                ("run", version.run_id or ""),
                ("datasets", ", ".join(f"{n}@{v}" for n, v in version.datasets)),
                ("created", f"{_render.when(version.created_at)} by {version.created_by}"),
                ("python", version.environment.get("python", "")),
                (
                    "packages",
                    ", ".join(
                        f"{k}=={v}" for k, v in version.environment.get("packages", {}).items()
                    ),
                ),
            ]
        )
    )
    console.print(
        _render.table(
            "formats",
            ("format", "serialization", "size", "digest"),
            [
                (f.format, f.serialization, _render.size(f.size), f.digest)
                for f in version.files.values()
            ],
            no_wrap=("digest",),
        )
    )
    if version.signature:
        console.print(
            _render.table(
                "inputs",
                ("column", "type", "nullable"),
                [(c["name"], c["type"], c["nullable"]) for c in version.signature["inputs"]],
            )
        )


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int)
@pass_state
def alias(state: State, name: str, alias: str, version: int) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it points elsewhere)."""
    previous = state.client.set_alias(name, alias, version)
    moved = "" if previous is None else f" (was {previous})"
    click.echo(f"models:/{name}@{alias} -> {version}{moved}")


@models.command("unalias")
@click.argument("name")
@click.argument("alias")
@pass_state
def unalias(state: State, name: str, alias: str) -> None:
    """Remove ALIAS from model NAME."""
    previous = state.client.delete_alias(name, alias)
    click.echo(f"removed models:/{name}@{alias} (was {previous})")


@models.command("archive")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--undo", is_flag=True, help="Mark the version ready again.")
@pass_state
def archive(state: State, name: str, version: int, undo: bool) -> None:
    """Archive VERSION of NAME: it stays loadable by number but is never @latest."""
    status = "ready" if undo else "archived"
    state.client.set_model_version_status(name, version, status)
    click.echo(f"models:/{name}/{version} is {status}")


@models.command("export")
@click.argument("uri", metavar="models:/NAME/VERSION|models:/NAME@ALIAS")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["onnx", "native"]),
    default="onnx",
    show_default=True,
    help="onnx: a folder that runs with onnxruntime alone; native: the file as logged.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The folder to create (must not exist, or be empty).",
)
@pass_state
def export(state: State, uri: str, file_format: str, out: Path) -> None:
    """Write a self-contained folder for URI (converting to ONNX first when needed)."""
    from shipyard.models import export_folder

    written = export_folder(uri, out, format=file_format, client=state.client)
    click.echo(f"wrote {written}")


@models.command("card")
@click.argument("uri", metavar="models:/NAME/VERSION|models:/NAME@ALIAS")
@click.option(
    "--format",
    "card_format",
    type=click.Choice(["markdown", "html"]),
    default="markdown",
    show_default=True,
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write the card to this file instead of stdout."
)
@pass_state
def card(state: State, uri: str, card_format: str, out: Path | None) -> None:
    """Render the model card of URI: purpose, training run, data, signature, lineage, aliases."""
    from shipyard import _files
    from shipyard.models import model_card

    text = model_card(uri, format=card_format, client=state.client)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    _files.atomic_write(out, text.encode("utf-8"))
    click.echo(f"wrote {out}")


def _as_uri(ref: str) -> str | None:
    """NAME -> None (the whole model); NAME/3, NAME@alias and models:/... -> a URI."""
    if ref.startswith("models:/"):
        return ref
    if "/" in ref or "@" in ref:
        return f"models:/{ref}"
    return None


def _key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--tag")
        out[key] = value
    return out


def _model_dict(model: object) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(model)  # type: ignore[call-overload,no-any-return]


def _version_dict(version: object) -> dict[str, object]:
    import dataclasses

    out = dataclasses.asdict(version)  # type: ignore[call-overload]
    out["uri"] = version.uri  # type: ignore[attr-defined]
    return out  # type: ignore[no-any-return]
