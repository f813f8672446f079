"""The ``shipyard`` command line: what each command prints, and one line for every bad input."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import shipyard
from shipyard.cli import cli

CLI_SOURCES = sorted((Path(shipyard.__file__).parent / "cli").glob("*.py"))

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(store_uri: str) -> Invoke:
    """Run ``shipyard --uri <fresh store> ARGS...`` in-process."""

    def run(*args: str, uri: str | None = store_uri) -> Result:
        prefix = ["--uri", uri] if uri is not None else []
        return CliRunner().invoke(cli, [*prefix, *args], catch_exceptions=False)

    return run


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> shipyard.Client:
    return shipyard.Client(uri=store_uri, artifacts=str(tmp_path / "blobs"))


@pytest.fixture
def tracked(client: shipyard.Client, tmp_path: Path) -> dict[str, str]:
    """Two experiments and three runs with params, metrics, tags and an artifact."""
    good = client.create_run("credit", name="lr", tags={"team": "risk"})
    client.log_param(good.run_id, "C", "0.1")
    client.log_metric(good.run_id, "auc", 0.91, step=1)
    client.log_metric(good.run_id, "auc", 0.93, step=2)
    model = tmp_path / "model.txt"
    model.write_text("weights")
    client.log_artifact(good.run_id, model)
    client.end_run(good.run_id)
    weak = client.create_run("credit", name="tree")
    client.log_metric(weak.run_id, "auc", 0.71)
    other = client.create_run("churn", name="baseline")
    return {"good": good.run_id, "weak": weak.run_id, "other": other.run_id}


def _one_error_line(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


# ------------------------------------------------------------------------------ basics


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"shipyard, version {shipyard.__version__}\n"


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("audit", "db", "experiments", "runs", "--uri", "--home", "--debug"):
        assert command in result.stdout
    for group, subcommands in {
        "audit": ("verify", "list"),
        "db": ("upgrade",),
        "experiments": ("list",),
        "runs": ("list", "show"),
    }.items():
        sub = CliRunner().invoke(cli, [group, "--help"])
        assert sub.exit_code == 0
        for name in subcommands:
            assert name in sub.stdout


def test_db_upgrade_says_whether_it_changed_anything(invoke: Invoke) -> None:
    first = invoke("db", "upgrade")
    assert first.exit_code == 0
    assert first.stdout.startswith("Migrated the metadata store at ")
    second = invoke("db", "upgrade")
    assert second.exit_code == 0
    assert "up to date; nothing to do" in second.stdout


def test_home_option_places_the_embedded_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(cli, ["--home", str(home), "db", "upgrade"])
    assert result.exit_code == 0, result.stderr
    assert (home / "shipyard.db").is_file()
    assert str(home / "shipyard.db") in result.stdout


def test_uri_option_wins_over_the_environment(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_URI", "mysql://nowhere/db")
    assert invoke("experiments", "list").exit_code == 0
    result = invoke("experiments", "list", uri=None)
    assert "Unsupported metadata store URI 'mysql://nowhere/db'" in _one_error_line(result)


def test_the_password_in_a_uri_is_not_printed(store_uri: str) -> None:
    from shipyard.cli._db import redact

    assert redact("postgresql+psycopg://bob:s3cret@db:5432/x") == (
        "postgresql+psycopg://bob:***@db:5432/x"
    )
    assert redact("sqlite:////tmp/a:b@c.db") == "sqlite:////tmp/a:b@c.db"
    assert redact(store_uri) == store_uri  # the test stores have no password


# ------------------------------------------------------------------------------- audit


def test_audit_verify_ok(invoke: Invoke, client: shipyard.Client, tracked: dict[str, str]) -> None:
    result = invoke("audit", "verify")
    assert result.exit_code == 0
    assert result.stdout == f"audit chain OK: {len(client.audit_events())} events\n"


def test_audit_verify_on_an_empty_store(invoke: Invoke) -> None:
    result = invoke("audit", "verify")
    assert result.exit_code == 0
    assert result.stdout == "audit chain OK: 0 events\n"


def test_audit_verify_names_the_first_bad_event(
    invoke: Invoke, client: shipyard.Client, tracked: dict[str, str]
) -> None:
    from shipyard.store._schema import audit_events

    with client.store.engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 3).values(actor="eve"))
    result = invoke("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "audit chain BROKEN at event 3: hash does not match its contents (edited?) "
        "(2 events before it check out)\n"
    )


def test_audit_verify_names_a_truncated_tail(
    invoke: Invoke, client: shipyard.Client, tracked: dict[str, str]
) -> None:
    from shipyard.store._schema import audit_events

    with client.store.engine.begin() as conn:
        conn.execute(sa.delete(audit_events).where(audit_events.c.seq >= 6))
    result = invoke("audit", "verify")
    assert result.exit_code == 1
    assert result.stderr.startswith("audit chain BROKEN at event 6: missing")
    assert "truncated tail" in result.stderr


def test_audit_list(invoke: Invoke, tracked: dict[str, str]) -> None:
    result = invoke("audit", "list")
    assert result.exit_code == 0
    for text in ("experiment.create", "run.create", "run.log_params", "run.end", "experiment:1"):
        assert text in result.stdout
    assert f"run:{tracked['good']}" in result.stdout


def test_audit_list_by_object_and_limit(invoke: Invoke, tracked: dict[str, str]) -> None:
    about_run = invoke("audit", "list", "--object", f"run:{tracked['weak']}").stdout
    assert "run.create" in about_run
    assert tracked["good"] not in about_run
    runs_only = invoke("audit", "list", "--object", "run").stdout
    assert "experiment.create" not in runs_only
    assert "run.create" in runs_only
    newest = invoke("audit", "list", "--limit", "2").stdout  # churn's creation, then its run
    assert "experiment.create" in newest
    assert "run.create" in newest
    assert "run.end" not in newest
    assert "run.log_params" not in newest


def test_audit_list_when_there_is_nothing(invoke: Invoke) -> None:
    result = invoke("audit", "list")
    assert result.exit_code == 0
    assert result.stdout == "No audit events.\n"


# ------------------------------------------------------------------- experiments, runs


def test_experiments_list(invoke: Invoke, tracked: dict[str, str]) -> None:
    result = invoke("experiments", "list")
    assert result.exit_code == 0
    assert "credit" in result.stdout
    assert "churn" in result.stdout


def test_experiments_list_when_there_are_none(invoke: Invoke) -> None:
    assert invoke("experiments", "list").stdout == "No experiments yet.\n"


def test_runs_list_shows_every_run_with_its_metrics(
    invoke: Invoke, tracked: dict[str, str]
) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0
    for run_id in tracked.values():
        assert run_id in result.stdout
    assert "auc" in result.stdout
    assert "0.93" in result.stdout
    assert "FINISHED" in result.stdout


def test_runs_list_by_experiment_and_filter(invoke: Invoke, tracked: dict[str, str]) -> None:
    churn = invoke("runs", "list", "--experiment", "churn").stdout
    assert tracked["other"] in churn
    assert tracked["good"] not in churn
    both = invoke("runs", "list", "-e", "churn", "-e", "credit").stdout
    assert all(run_id in both for run_id in tracked.values())
    good = invoke("runs", "list", "--filter", "metrics.auc > 0.9 and params.C = '0.1'").stdout
    assert tracked["good"] in good
    assert tracked["weak"] not in good
    assert invoke("runs", "list", "--filter", "metrics.auc > 2").stdout == "No runs match.\n"


def test_runs_list_orders_and_pages(invoke: Invoke, tracked: dict[str, str]) -> None:
    first = invoke(
        "runs", "list", "-e", "credit", "--order-by", "metrics.auc ASC", "--max-results", "1"
    )
    assert first.exit_code == 0
    assert tracked["weak"] in first.stdout
    assert tracked["good"] not in first.stdout
    last_line = first.stdout.splitlines()[-1]
    assert last_line.startswith("More runs: add --page-token ")
    token = last_line.split()[-1]
    second = invoke(
        "runs", "list", "-e", "credit", "-o", "metrics.auc ASC", "-n", "1", "--page-token", token
    )
    assert tracked["good"] in second.stdout
    assert "More runs" not in second.stdout


def test_runs_show(invoke: Invoke, tracked: dict[str, str]) -> None:
    result = invoke("runs", "show", tracked["good"])
    assert result.exit_code == 0
    out = result.stdout
    for text in (
        tracked["good"],
        "credit (id 1)",
        "FINISHED",
        "Params",
        "0.1",
        "Metrics (latest)",
        "0.93",
        "Tags",
        "risk",
        "Artifacts",
        "model.txt",
        "7 B",
        "sha256:",
    ):
        assert text in out, text
    assert "0.91" not in out  # only the latest point of each metric


def test_runs_show_a_bare_run(invoke: Invoke, tracked: dict[str, str]) -> None:
    out = invoke("runs", "show", tracked["other"]).stdout
    for section in ("Params: none", "Metrics (latest): none", "Tags: none", "Artifacts: none"):
        assert section in out
    assert "RUNNING" in out


def test_user_text_is_printed_literally_not_as_markup(
    invoke: Invoke, client: shipyard.Client
) -> None:
    run = client.create_run("[red]exp[/red]", name="[bold]x[/bold]")
    assert "[red]exp[/red]" in invoke("experiments", "list").stdout
    assert "[bold]x[/bold]" in invoke("runs", "show", run.run_id).stdout


# ------------------------------------------------------------------------- bad input

LIBRARY_ERRORS = {
    "unknown run id": (["runs", "show", "0" * 32], "No run '00000000000000000000000000000000'"),
    "malformed filter": (["runs", "list", "--filter", "metrics.auc >> 1"], "Bad filter"),
    "unknown filter field": (["runs", "list", "--filter", "bogus.x = 1"], "bogus"),
    "malformed order-by": (["runs", "list", "--order-by", "metrics.auc SIDEWAYS"], "SIDEWAYS"),
    "unknown experiment": (["runs", "list", "--experiment", "nope"], "No experiment 'nope'"),
    "max-results zero": (["runs", "list", "--max-results", "0"], "max_results"),
    "max-results negative": (["runs", "list", "--max-results", "-5"], "max_results"),
    "max-results huge": (["runs", "list", "--max-results", "10000000"], "max_results"),
    "bad page token": (["runs", "list", "--page-token", "not-a-token"], "page_token"),
    "negative audit limit": (["audit", "list", "--limit", "-1"], "limit"),
}


@pytest.mark.parametrize(("args", "expected"), LIBRARY_ERRORS.values(), ids=LIBRARY_ERRORS.keys())
def test_bad_input_is_one_line_and_exit_1(
    invoke: Invoke, tracked: dict[str, str], args: list[str], expected: str
) -> None:
    assert expected in _one_error_line(invoke(*args))


USAGE_ERRORS = {
    "max-results not a number": (["runs", "list", "--max-results", "abc"], "--max-results"),
    "missing run id": (["runs", "show"], "Missing argument 'RUN_ID'"),
    "unknown command": (["runs", "frobnicate"], "No such command 'frobnicate'"),
    "unknown option": (["runs", "list", "--colour"], "No such option '--colour'"),
    "audit object without type": (["audit", "list", "--object", ":1"], "TYPE:ID"),
    "audit object without id": (["audit", "list", "--object", "run:"], "TYPE:ID"),
    "audit limit not a number": (["audit", "list", "--limit", "ten"], "--limit"),
}


@pytest.mark.parametrize(("args", "expected"), USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_are_one_line_and_exit_2(
    invoke: Invoke, args: list[str], expected: str
) -> None:
    line = _one_error_line(invoke(*args), exit_code=2)
    assert expected in line
    assert "--help" in line


def test_unknown_global_option_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["--colour", "db", "upgrade"])
    assert "No such option '--colour'" in _one_error_line(result, exit_code=2)


BAD_URIS = {
    "unsupported scheme": ("mysql://db.example/shipyard", "Unsupported metadata store URI"),
    "server url": ("http://127.0.0.1:9", "Shipyard server"),
    "unreachable postgres": (
        "postgresql+psycopg://nobody@127.0.0.1:1/shipyard?connect_timeout=5",
        "127.0.0.1",
    ),
}


@pytest.mark.parametrize(("uri", "expected"), BAD_URIS.values(), ids=BAD_URIS.keys())
@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade"],
        ["audit", "verify"],
        ["audit", "list"],
        ["experiments", "list"],
        ["runs", "list"],
        ["runs", "show", "abc"],
    ],
    ids=" ".join,
)
def test_an_unusable_uri_is_one_line_for_every_command(
    args: list[str], uri: str, expected: str
) -> None:
    result = CliRunner().invoke(cli, ["--uri", uri, *args], catch_exceptions=False)
    assert expected in _one_error_line(result)


def test_a_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "lots")
    result = CliRunner().invoke(cli, ["experiments", "list"], catch_exceptions=False)
    assert "Setting 'flush_size'" in _one_error_line(result)


def test_an_unexpected_error_is_one_line_with_a_debug_hint(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: shipyard.Client) -> None:
        raise RuntimeError("the disk\nis on fire")

    monkeypatch.setattr(shipyard.Client, "list_experiments", broken)
    line = _one_error_line(invoke("experiments", "list"))
    assert line == (
        "error: unexpected RuntimeError: the disk is on fire "
        "(rerun with --debug to see the traceback)"
    )


def test_debug_lets_the_traceback_through(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: shipyard.Client) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(shipyard.Client, "list_experiments", broken)
    result = CliRunner().invoke(cli, ["--debug", "--uri", store_uri, "experiments", "list"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


# ------------------------------------------------------------- the real console script


def _script() -> str:
    found = shutil.which("shipyard", path=str(Path(sys.executable).parent))
    assert found, "the shipyard console script is not installed next to this Python"
    return found


def _run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_console_script_runs_a_command(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    result = _run_script("--uri", uri, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "audit chain OK: 0 events\n"


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "show", "no-such-run"],
        ["runs", "list", "--filter", "metrics.auc >"],
        ["runs", "list", "--max-results", "x"],
    ],
    ids=" ".join,
)
def test_console_script_error_is_one_line_without_traceback(
    tmp_path: Path, args: list[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    result = _run_script("--uri", uri, *args, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_console_script_store_path_that_cannot_exist(tmp_path: Path) -> None:
    """Even an error the library does not anticipate is one line, with a --debug hint."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'shipyard.db'}"
    result = _run_script("--uri", uri, "experiments", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    debug = _run_script("--debug", "--uri", uri, "experiments", "list", cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


# ----------------------------------------------------------------------- thin and fast


def test_importing_the_cli_loads_no_rendering_or_server_stack() -> None:
    code = (
        "import sys, shipyard.cli; "
        "heavy = [m for m in ('rich', 'fastapi', 'pandas', 'ray', 'boto3', 'alembic') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("source", CLI_SOURCES, ids=lambda p: p.name)
def test_the_cli_has_no_sql_and_never_reaches_into_the_store(source: Path) -> None:
    tree = ast.parse(source.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    forbidden = {m for m in imported if m.split(".")[0] == "sqlalchemy"}
    forbidden |= {m for m in imported if m.startswith("shipyard.store")}
    assert forbidden == set()
