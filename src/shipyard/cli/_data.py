"""``shipyard data`` and ``shipyard lineage``: datasets, their contracts and their lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shipyard.cli._app import State, pass_state


@click.group()
def data() -> None:
    """Register, inspect, compare and validate dataset versions."""


@data.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(path_type=Path),
    help="A contract YAML file to check against (and keep as the dataset's contract).",
)
@click.option(
    "--strict/--warn",
    default=None,
    help="Refuse the version when the contract fails (--strict) or store it with its report (--warn); default: the contract's mode.",
)
@click.option("--description", "-d", help="What this dataset is.")
@pass_state
def add(
    state: State,
    name: str,
    path: Path,
    contract_file: Path | None,
    strict: bool | None,
    description: str | None,
) -> None:
    """Register the CSV or Parquet file (or folder) PATH as a new version of NAME."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from shipyard import data as data_api
    from shipyard.cli import _render

    contract = _read_text(contract_file) if contract_file else None
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=_render.console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"registering {path.name}", total=None)
        version = data_api.register_dataset(
            name,
            path,
            description=description,
            contract=contract,
            strict=strict,
            client=state.client,
            progress=lambda rows: progress.update(task, completed=rows),
        )
    status = (
        ""
        if version.status == "valid"
        else f" (stored with a FAILED contract check: see `shipyard data show {version.name}@{version.version}`)"
    )
    click.echo(
        f"{version.uri}: {version.rows:,} rows, {_render.size(version.bytes)}, {version.digest}{status}"
    )


@data.command("list")
@pass_state
def list_(state: State) -> None:
    """List datasets with their newest version."""
    from shipyard import data as data_api
    from shipyard.cli import _render

    found = data_api.list_datasets(client=state.client)
    if not found:
        click.echo("No datasets yet.")
        return
    _render.console().print(
        _render.table(
            None,
            ["name", "versions", "created", "description"],
            (
                (d.name, d.latest_version or 0, _render.when(d.created_at), d.description)
                for d in found
            ),
        )
    )


@data.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print the version's record as JSON.")
@pass_state
def show(state: State, ref: str, as_json: bool) -> None:
    """Schema, profile and contract check of a dataset version (the newest by default)."""
    from shipyard import data as data_api
    from shipyard.cli import _render

    version = data_api.get_dataset(ref, client=state.client)
    if as_json:
        click.echo(json.dumps(_record(version), indent=2))
        return
    out = _render.console()
    out.print(
        _render.fields(
            [
                ("dataset", version.uri),
                ("rows", f"{version.rows:,}"),
                ("size", _render.size(version.bytes)),
                ("digest", version.digest),
                ("status", version.status),
                ("contract", version.contract_version),
                ("source", version.source),
                ("created", f"{_render.when(version.created_at)} by {version.created_by}"),
                ("run", version.run_id),
            ]
        )
    )
    columns = version.profile.get("columns", {})
    out.print(
        _render.table(
            "profile",
            ["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top values"],
            (
                _profile_row(c["name"], c["type"], columns.get(c["name"], {}))
                for c in version.schema
            ),
        )
    )
    if version.validation and version.validation.get("failures"):
        out.print(
            _render.table(
                "failed expectations",
                ["expectation", "column", "failed", "message", "examples"],
                (
                    (
                        f["expectation"],
                        f.get("column"),
                        f["failed"],
                        f["message"],
                        json.dumps(f.get("examples", [])[:3], default=str),
                    )
                    for f in version.validation["failures"]
                ),
            )
        )


def _record(version: Any) -> dict[str, Any]:
    import dataclasses

    return {**dataclasses.asdict(version), "uri": version.uri}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _profile_row(name: str, type_: str, profile: dict[str, Any]) -> list[str]:
    top = profile.get("top_values") or []
    distinct = profile.get("distinct")
    approx = "" if profile.get("distinct_is_exact", True) else "~"
    return [
        name,
        type_,
        _number(profile.get("nulls")),
        f"{approx}{distinct}" if distinct is not None else "",
        _number(profile.get("min")),
        _number(profile.get("max")),
        _number(profile.get("mean")),
        _number(profile.get("std")),
        ", ".join(f"{v} ({c})" for v, c in top[:3]),
    ]


@data.command("diff")
@click.argument("name")
@click.argument("old", type=int)
@click.argument("new", type=int)
@pass_state
def diff(state: State, name: str, old: int, new: int) -> None:
    """Schema, row and distribution changes from version OLD to version NEW."""
    from shipyard import data as data_api
    from shipyard.cli import _render

    result = data_api.diff_datasets(name, old, new, client=state.client)
    out = _render.console()
    pairs = [("rows", f"{result.rows_old:,} -> {result.rows_new:,}")]
    pairs += [("added columns", ", ".join(result.added_columns) or "-")]
    pairs += [("removed columns", ", ".join(result.removed_columns) or "-")]
    pairs += [
        (
            "retyped columns",
            ", ".join(f"{c}: {a} -> {b}" for c, (a, b) in result.retyped_columns.items()) or "-",
        )
    ]
    if result.key:
        pairs += [
            ("key", ", ".join(result.key)),
            (
                "rows added / removed / changed",
                f"{result.rows_added:,} / {result.rows_removed:,} / {result.rows_changed:,}",
            ),
        ]
    out.print(_render.fields(pairs))
    out.print(
        _render.table(
            "distribution change",
            ["column", "test", "statistic", "drift", "note"],
            (
                (c.column, c.test, _number(c.statistic), "DRIFT" if c.drift else "", c.note)
                for c in result.columns
            ),
        )
    )


@data.command("validate")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(path_type=Path),
    help="Check against this contract file instead of the dataset's.",
)
@pass_state
def validate(state: State, name: str, path: Path, contract_file: Path | None) -> None:
    """Check PATH against NAME's contract without storing anything (exit 1 on failure)."""
    from shipyard import data as data_api

    contract = _read_text(contract_file) if contract_file else None
    report = data_api.validate_dataset(name, path, contract, client=state.client)
    if report.passed:
        click.echo(f"{path}: {report.rows_checked:,} rows meet the contract of {name!r}.")
        return
    click.echo(report.summary(), err=True)
    raise click.exceptions.Exit(1)


@data.command("export")
@click.argument("ref", metavar="NAME@VERSION")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "format_",
    type=click.Choice(["parquet", "csv"]),
    default=None,
    help="Default: from PATH's ending.",
)
@pass_state
def export(state: State, ref: str, path: Path, format_: str | None) -> None:
    """Write a dataset version to PATH as Parquet or CSV (verified, written atomically)."""
    from shipyard import data as data_api

    written = data_api.export_dataset(ref, path, format=format_, client=state.client)
    click.echo(f"wrote {written}")


@data.command("contract")
@click.argument("name")
@click.option(
    "--set",
    "new_file",
    type=click.Path(path_type=Path),
    help="Store this YAML file as the dataset's new contract.",
)
@click.option(
    "--edit", is_flag=True, help="Open the contract in $EDITOR and store the edited version."
)
@pass_state
def contract(state: State, name: str, new_file: Path | None, edit: bool) -> None:
    """Print the dataset's contract, or replace it (--set FILE, --edit)."""
    from shipyard import data as data_api

    if new_file is not None:
        number = data_api.set_dataset_contract(name, _read_text(new_file), client=state.client)
        click.echo(f"contract of {name!r} is now version {number}")
        return
    current = data_api.dataset_contract(name, client=state.client)
    if not edit:
        click.echo(current, nl=False)
        return
    edited = click.edit(current, extension=".yaml")
    if edited is None or edited == current:
        click.echo("contract unchanged")
        return
    number = data_api.set_dataset_contract(name, edited, client=state.client)
    click.echo(f"contract of {name!r} is now version {number}")


@click.command("lineage")
@click.argument("ref", metavar="dataset:NAME@VERSION|run:RUN_ID")
@click.option(
    "--depth",
    type=click.IntRange(1, 100),
    default=25,
    show_default=True,
    help="Hops to follow each way.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON.")
@pass_state
def lineage(state: State, ref: str, depth: int, as_json: bool) -> None:
    """Print what REF came from (upstream) and what came from it (downstream) as trees."""
    from rich.tree import Tree

    from shipyard import data as data_api
    from shipyard.cli import _render

    graph = data_api.lineage(ref, depth=depth, client=state.client)
    if as_json:
        click.echo(json.dumps(graph.to_dict(), indent=2))
        return
    out = _render.console()
    for title, step in (("upstream", graph.upstream), ("downstream", graph.downstream)):
        tree = Tree(_render.heading(f"{title} of {graph.root}: {graph.nodes.get(graph.root, '')}"))
        _grow(tree, graph, graph.root, step, title == "upstream", {graph.root})
        out.print(tree)


def _grow(tree: Any, graph: Any, node: str, step: Any, upward: bool, seen: set[str]) -> None:
    from rich.text import Text

    for edge in step(node):
        other = edge.source if upward else edge.target
        label = f"{'<-' if upward else '->'} {edge.relation} {other}  {graph.nodes.get(other, '')}"
        branch = tree.add(Text(label))
        if other not in seen:
            _grow(branch, graph, other, step, upward, seen | {other})


def _read_text(path: Path) -> str:
    from shipyard.errors import InvalidInput

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read {str(path)!r}: {exc}.") from exc
