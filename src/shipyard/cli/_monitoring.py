"""``shipyard drift``: compare a current window with a reference, column by column."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shipyard.cli._app import State, pass_state

#: Exit status of ``shipyard drift --fail-on-drift`` when a column drifted.
EXIT_DRIFT = 3


@click.command()
@click.argument("reference", metavar="REF")
@click.argument("current", metavar="CURRENT")
@click.option(
    "--columns",
    metavar="A,B,...",
    help="Columns to test, comma-separated (default: every column of REF).",
)
@click.option(
    "--test",
    "test",
    metavar="NAME|COL=NAME,...",
    default="auto",
    show_default=True,
    help="One drift test for every column it can read (ks, psi, wasserstein, jensen_shannon, "
    "chi_square, auto), or COL=NAME pairs, comma-separated.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML page with a histogram pair per column.",
)
@click.option(
    "--fail-on-drift",
    is_flag=True,
    help=f"Exit with status {EXIT_DRIFT} when any column drifted (default: 0).",
)
@pass_state
def drift(
    state: State,
    reference: str,
    current: str,
    columns: str | None,
    test: str,
    as_json: bool,
    html_file: Path | None,
    fail_on_drift: bool,
) -> None:
    """Test each column of CURRENT for drift from REF.

    REF and CURRENT are dataset versions (dataset:NAME@V or NAME@V) or CSV /
    Parquet paths. Exits 0 whether or not drift is found, unless
    --fail-on-drift is given.
    """
    from shipyard import monitoring

    report = monitoring.drift_report(
        reference,
        current,
        columns=_split(columns) if columns is not None else None,
        tests=_tests(test),
        client=state.client,
    )
    if html_file is not None:
        report.to_html(html_file)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        _print(report, html_file)
    if fail_on_drift and report.drifted:
        click.get_current_context().exit(EXIT_DRIFT)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _tests(text: str) -> str | dict[str, str]:
    if "=" not in text:
        return text.strip()
    pairs: dict[str, str] = {}
    for part in _split(text):
        column, sep, name = part.partition("=")
        if not sep or not column.strip() or not name.strip():
            raise click.UsageError(f"--test expects NAME or COL=NAME pairs, got {part!r}.")
        pairs[column.strip()] = name.strip()
    return pairs


def _print(report: object, html_file: Path | None) -> None:
    from shipyard.cli import _render
    from shipyard.monitoring import DriftReport

    assert isinstance(report, DriftReport)

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.4g}"

    out = _render.console()
    out.print(
        _render.table(
            None,
            ["column", "test", "statistic", "p-value", "threshold", "drift", "status"],
            (
                (
                    name,
                    c.test or "",
                    number(c.statistic),
                    number(c.p_value),
                    number(c.threshold),
                    "DRIFT" if c.drift else "no",
                    c.status,
                )
                for name, c in report.columns.items()
            ),
        )
    )
    tested = sum(c.tested for c in report.columns.values())
    click.echo(
        f"drift in {len(report.drifted)} of {tested} tested columns "
        f"(share {report.drift_share:.2f}); reference {report.reference_rows:,} rows, "
        f"current {report.current_rows:,} rows"
    )
    if html_file is not None:
        click.echo(f"wrote {html_file}")
