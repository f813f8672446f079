"""``shipyard alerts ...``: tables, and one error line for every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import shipyard as sy
from shipyard.cli import cli
from shipyard.cli._alerts import alerts
from shipyard.monitoring._alerts import evaluate_rules
from unit.monitoring.test_alerts import add_monitor, add_window, make_client

Invoke = Callable[..., Result]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """SQLite only: the CLI is a face, the store's kinds are tested under tests/unit/monitoring."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


@pytest.fixture
def client(uri: str, tmp_path: Path) -> sy.Client:
    return make_client(uri, tmp_path)


@pytest.fixture
def invoke(client: sy.Client, uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setitem(cli.commands, "alerts", alerts)  # registered in shipyard.cli too
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "hooks.example.com")

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--uri", uri, "--home", str(tmp_path / "home"), *args],
            catch_exceptions=False,
        )

    return run


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    if code == 1:
        assert len(lines) == 1, result.stderr
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_rules_are_created_listed_and_deleted(invoke: Invoke, client: sy.Client) -> None:
    add_monitor(client)
    made = invoke("alerts", "rules", "create", "credit-drift", "drift_share > 0.3 for 2 windows")
    assert made.exit_code == 0, made.stderr
    assert made.stdout.startswith("created alert rule 1 on monitor credit-drift")
    made = invoke(
        "alerts",
        "rules",
        "create",
        "credit-drift",
        "roc_auc < 0.8",
        "--name",
        "auc",
        "--webhook",
        "https://hooks.example.com/t/SECRET",
    )
    assert made.exit_code == 0, made.stderr
    listed = invoke("alerts", "rules", "list", "--monitor", "credit-drift")
    assert listed.exit_code == 0
    for text in ("drift_share > 0.3 for 2 windows", "auc", "https://hooks.example.com/..."):
        assert text in listed.stdout
    assert "SECRET" not in listed.stdout
    gone = invoke("alerts", "rules", "delete", "1")
    assert gone.stdout.startswith("deleted alert rule 1")
    assert "drift_share" not in invoke("alerts", "rules", "list").stdout
    invoke("alerts", "rules", "delete", "2")
    assert invoke("alerts", "rules", "list").stdout == "No alert rules.\n"


def test_alerts_list_shows_open_and_closed_alerts(invoke: Invoke, client: sy.Client) -> None:
    monitor_id = add_monitor(client)
    assert invoke("alerts", "list").stdout == "No alerts.\n"
    invoke("alerts", "rules", "create", "credit-drift", "drift_share > 0.3")
    add_window(client, monitor_id, 1, drift_share=0.45)
    evaluate_rules(client, monitor_id)
    shown = invoke("alerts", "list", "--status", "open", "--monitor", "credit-drift")
    assert shown.exit_code == 0
    assert "open" in shown.stdout
    assert "0.45" in shown.stdout
    assert "fired" in shown.stdout
    assert invoke("alerts", "list", "--status", "closed").stdout == "No closed alerts.\n"
    add_window(client, monitor_id, 2, drift_share=0.1)
    evaluate_rules(client, monitor_id)
    shown = invoke("alerts", "list", "--status", "closed")
    assert "closed" in shown.stdout
    assert "1-2" in shown.stdout


BAD_INPUT = [
    (("alerts", "rules", "create", "nope", "roc_auc < 0.8"), "No monitor 'nope'"),
    (("alerts", "rules", "create", "credit-drift", "auc < 0.8"), "got 'auc'"),
    (("alerts", "rules", "create", "credit-drift", "roc_auc < high"), "must be a number"),
    (
        ("alerts", "rules", "create", "credit-drift", "r2 < 0", "--webhook", "ftp://x/"),
        "scheme 'ftp'",
    ),
    (
        ("alerts", "rules", "create", "credit-drift", "r2 < 0", "--webhook", "http://evil/"),
        "not on the allow-list",
    ),
    (("alerts", "rules", "delete", "7"), "No alert rule 7"),
    (("alerts", "rules", "delete", "0"), "positive whole number"),
    (("alerts", "list", "--monitor", "nope"), "No monitor 'nope'"),
]


def test_bad_input_is_one_line_and_exit_1(invoke: Invoke, client: sy.Client) -> None:
    add_monitor(client)
    for args, says in BAD_INPUT:
        assert says in one_error_line(invoke(*args)), args


@pytest.mark.parametrize(
    "args",
    [
        ("alerts", "list", "--status", "shut"),
        ("alerts", "rules", "delete", "one"),
        ("alerts", "rules", "create", "credit-drift"),
    ],
)
def test_usage_errors_exit_2(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(cli.commands, "alerts", alerts)
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), *args], catch_exceptions=False)
    one_error_line(result, code=2)
