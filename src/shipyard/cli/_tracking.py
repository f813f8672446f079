"""``shipyard experiments`` and ``shipyard runs``: read what tracking recorded."""

from __future__ import annotations

import click

from shipyard.cli._app import State, pass_state


@click.group()
def experiments() -> None:
    """Read experiments."""


@experiments.command("list")
@pass_state
def list_experiments(state: State) -> None:
    """List experiments, oldest first."""
    found = state.client.list_experiments()
    if not found:
        click.echo("No experiments yet.")
        return
    from shipyard.cli import _render

    _render.console().print(
        _render.table(
            None,
            ["id", "name", "created", "description"],
            ((e.experiment_id, e.name, _render.when(e.created_at), e.description) for e in found),
            no_wrap=["id", "created"],
        )
    )


@click.group()
def runs() -> None:
    """Search and show runs."""


@runs.command("list")
@click.option(
    "--experiment",
    "-e",
    "experiment",
    multiple=True,
    metavar="NAME_OR_ID",
    help="Only runs of this experiment (repeat for several).",
)
@click.option(
    "--filter",
    "-f",
    "filter_",
    metavar="EXPR",
    help="E.g. \"metrics.auc > 0.9 and params.model = 'lr'\".",
)
@click.option(
    "--order-by",
    "-o",
    multiple=True,
    metavar="FIELD [ASC|DESC]",
    help='E.g. "metrics.auc DESC" (repeat for tie-breakers).',
)
@click.option(
    "--max-results", "-n", type=int, default=100, show_default=True, help="Runs per page."
)
@click.option("--page-token", metavar="TOKEN", help="Continue from a previous page.")
@pass_state
def list_runs(
    state: State,
    experiment: tuple[str, ...],
    filter_: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
) -> None:
    """Search runs, newest first unless --order-by says otherwise."""
    page = state.client.search_runs(
        experiment=list(experiment) or None,
        filter=filter_,
        order_by=list(order_by) or None,
        max_results=max_results,
        page_token=page_token,
    )
    if not page.runs:
        click.echo("No runs match.")
        return
    from shipyard.cli import _render

    metric_keys = sorted({key for run in page.runs for key in run.metrics})
    columns = ["run id", "name", "experiment", "status", "started", "duration", *metric_keys]
    rows = (
        (
            run.run_id,
            run.name,
            run.experiment_id,
            run.status.value,
            _render.when(run.start_time),
            _render.duration(run.start_time, run.end_time),
            *(run.metrics[k].value if k in run.metrics else "" for k in metric_keys),
        )
        for run in page.runs
    )
    out = _render.console()
    out.print(_render.table(None, columns, rows, no_wrap=["run id", "started"]))
    if page.next_page_token:
        click.echo(f"More runs: add --page-token {page.next_page_token}")


@runs.command("show")
@click.argument("run_id")
@pass_state
def show_run(state: State, run_id: str) -> None:
    """Show a run: its fields, params, latest metrics, tags and artifacts."""
    client = state.client
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.experiment_id)
    artifacts = client.list_artifacts(run.run_id)
    from shipyard.cli import _render

    out = _render.console()
    out.print(
        _render.fields(
            [
                ("run id", run.run_id),
                ("name", run.name),
                ("experiment", f"{experiment.name} (id {experiment.experiment_id})"),
                ("status", run.status.value),
                ("started", _render.when(run.start_time)),
                ("ended", _render.when(run.end_time)),
                ("duration", _render.duration(run.start_time, run.end_time)),
                ("parent run", run.parent_run_id),
                ("created by", run.created_by),
            ]
        )
    )
    sections = [
        ("Params", ["key", "value"], sorted(run.params.items())),
        (
            "Metrics (latest)",
            ["key", "value", "step", "time"],
            [
                (m.key, m.value, m.step, _render.when(m.timestamp))
                for _, m in sorted(run.metrics.items())
            ],
        ),
        ("Tags", ["key", "value"], sorted(run.tags.items())),
        (
            "Artifacts",
            ["path", "size", "digest"],
            [(a.path, _render.size(a.size), a.digest) for a in artifacts],
        ),
    ]
    for title, columns, rows in sections:
        out.print()
        if rows:
            out.print(_render.table(title, columns, rows, no_wrap=["digest"]))
        else:
            out.print(_render.heading(f"{title}: none"))
