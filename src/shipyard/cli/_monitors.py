"""``shipyard monitors``: create, list, show, run and delete monitors of a deployment's log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from shipyard.cli._app import State, pass_state
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.monitoring import MonitorRun


@click.group()
def monitors() -> None:
    """Watch a deployment's predictions window by window: drift and live performance."""


@monitors.command("create")
@click.argument("deployment")
@click.option(
    "--reference",
    required=True,
    metavar="dataset:NAME@V",
    help="The data the model learnt from, e.g. dataset:credit@3.",
)
@click.option("--window", metavar="LENGTH", help="Cut the log by time: 15m, 1h, 1d, ...")
@click.option("--rows", type=int, metavar="N", help="Cut the log into windows of N rows.")
@click.option("--name", metavar="NAME", help="The monitor's name (default: the deployment's).")
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="COLUMN",
    help="A model input to test; repeat it (default: every reference column but the target).",
)
@click.option(
    "--target",
    metavar="COLUMN",
    help="The reference column holding the true label, for prediction drift.",
)
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="NAME|COLUMN=NAME",
    help="One drift test for every column (ks, psi, wasserstein, jensen_shannon, chi_square, "
    "auto), or COLUMN=NAME, repeated (the prediction's column is 'prediction').",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="KEY=VALUE",
    help="A threshold for a column or a test, e.g. psi=0.2 or income=0.01; repeat it.",
)
@pass_state
def create(
    state: State,
    deployment: str,
    reference: str,
    window: str | None,
    rows: int | None,
    name: str | None,
    columns: tuple[str, ...],
    target: str | None,
    tests: tuple[str, ...],
    thresholds: tuple[str, ...],
) -> None:
    """Create a monitor of DEPLOYMENT's predictions against a reference dataset version.

    Give exactly one of --window and --rows. The reference is prepared once,
    now; `shipyard monitors run` then evaluates each window as it completes.
    """
    from shipyard.monitoring import create_monitor

    found = create_monitor(
        deployment,
        reference,
        name=name,
        window=window,
        rows=rows,
        columns=list(columns) or None,
        target=target,
        tests=_tests(tests),
        thresholds=_thresholds(thresholds),
        client=state.client,
    )
    click.echo(
        f"created monitor {found.name} of deployment {found.deployment}: "
        f"{found.reference}, windows of {found.window}"
    )


def _tests(values: tuple[str, ...]) -> str | dict[str, str] | None:
    if not values:
        return None
    pairs = [v for v in values if "=" in v]
    if not pairs:
        if len(values) > 1:
            raise click.BadParameter(
                f"give one test name, or COLUMN=NAME pairs; got {', '.join(values)}.",
                param_hint="--test",
            )
        return values[0].strip()
    if len(pairs) != len(values):
        raise click.BadParameter(
            "mix of a test name and COLUMN=NAME pairs; give one or the other.", param_hint="--test"
        )
    out: dict[str, str] = {}
    for value in values:
        column, _, test = value.partition("=")
        if not column.strip() or not test.strip():
            raise click.BadParameter(f"expected COLUMN=NAME, got {value!r}.", param_hint="--test")
        out[column.strip()] = test.strip()
    return out


def _thresholds(values: tuple[str, ...]) -> dict[str, float] | None:
    if not values:
        return None
    out: dict[str, float] = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            out[key.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise click.BadParameter(
                f"expected KEY=NUMBER (e.g. psi=0.2), got {value!r}.", param_hint="--threshold"
            )
    return out


@monitors.command("list")
@click.option("--deployment", metavar="NAME", help="Only this deployment's monitors.")
@pass_state
def list_monitors(state: State, deployment: str | None) -> None:
    """List monitors with their window and how far they have evaluated."""
    from shipyard.cli import _render

    found = state.client.list_monitors(deployment)
    _render.console().print(
        _render.table(
            None,
            ["name", "deployment", "reference", "window", "task", "windows", "evaluated up to"],
            (
                (
                    m.name,
                    m.deployment,
                    m.reference,
                    m.window,
                    m.task or "",
                    m.windows,
                    _render.when(m.last_end),
                )
                for m in found
            ),
        )
    )


@monitors.command("show")
@click.argument("name")
@click.option(
    "--last", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Windows shown."
)
@pass_state
def show(state: State, name: str, last: int) -> None:
    """Show a monitor and its most recent windows: rows, drift share, drifted columns, metrics."""
    from shipyard.cli import _render

    found = state.client.get_monitor(name)
    windows = state.client.monitor_windows(name, results=True, limit=last)
    out = _render.console()
    out.print(
        _render.fields(
            [
                ("monitor", found.name),
                ("deployment", found.deployment),
                ("reference", found.reference),
                ("window", found.window),
                ("columns", ", ".join(found.columns) if found.columns else "every input"),
                ("tests", _text(found.tests) or "auto"),
                ("thresholds", _text(found.thresholds) or "the tests' own"),
                ("task", found.task or "not known yet (no labels)"),
                ("windows", found.windows),
                ("created", f"{_render.when(found.created_at)} by {found.created_by}"),
            ]
        )
    )
    if not windows:
        click.echo("no window evaluated yet: run `shipyard monitors run " + name + "`")
        return
    metric_names = list(dict.fromkeys(m for w in windows for m in w.metrics))
    out.print(
        _render.table(
            f"last {len(windows)} windows",
            ["#", "window", "rows", "labelled", "drift share", "drifted", *metric_names],
            (
                (
                    w.number,
                    _span(w.start, w.end, by_rows=found.window_rows is not None),
                    w.rows,
                    w.labelled,
                    "" if w.drift_share is None else f"{w.drift_share:.2f}",
                    ", ".join(r.column for r in w.results if r.drift) or "-",
                    *(_number(w.metrics.get(m)) for m in metric_names),
                )
                for w in windows
            ),
        )
    )


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _span(start: int, end: int, *, by_rows: bool) -> str:
    """A window's time span; a row window's end is its last row's millisecond."""
    from shipyard.cli import _render

    return f"{_render.when(start)} - {_render.when(end - 1 if by_rows else end)}"


@monitors.command("run")
@click.argument("name", required=False)
@pass_state
def run(state: State, name: str | None) -> None:
    """Evaluate every complete window not evaluated yet (of NAME, or of every monitor).

    Reads the prediction log on this machine (SHIPYARD_HOME); stores windows
    and results in the store, which may be a Shipyard server.
    """
    from shipyard.monitoring import run_monitor

    if name is not None:
        _report(run_monitor(name, client=state.client))
        return
    names = [m.name for m in state.client.list_monitors()]
    if not names:
        click.echo("no monitors: create one with `shipyard monitors create`")
        return
    failed = []
    for number, each in enumerate(names, start=1):
        click.echo(f"[{number}/{len(names)}] {each}", err=True)
        try:
            _report(run_monitor(each, client=state.client))
        except ShipyardError as exc:  # one broken monitor does not stop the others
            click.echo(f"error: {each}: {exc}", err=True)
            failed.append(each)
    if failed:
        raise ShipyardError(
            f"{len(failed)} of {len(names)} monitors failed: {', '.join(failed)}.",
            hint="See the error line of each above; the others were evaluated.",
        )


def _report(done: MonitorRun) -> None:
    from shipyard.monitoring._monitors import describe_window

    for window in done.evaluated:
        click.echo(f"  new {describe_window(window)}")
    for window in done.rescored:
        click.echo(f"  re-scored {describe_window(window)}")
    for alert in done.alerts:
        click.echo(f"  alert {alert.status}: {alert.message}")
    click.echo(done.summary())


@monitors.command("delete")
@click.argument("name")
@pass_state
def delete(state: State, name: str) -> None:
    """Delete a monitor with its windows, results, alert rules and alerts."""
    found = state.client.delete_monitor(name)
    click.echo(f"deleted monitor {found.name} ({found.windows} windows)")
