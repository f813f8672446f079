"""``shipyard monitors create|list|show|run|delete``, and one line per bad input."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import shipyard as sy
from shipyard.cli import cli
from shipyard.cli._monitors import monitors
from shipyard.config import Settings
from unit.monitoring.test_monitors import with_dataset, write

Invoke = Callable[..., Result]
HOUR = 3_600_000


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return store(store_uri, tmp_path)


def store(uri: str, root: Path) -> sy.Client:
    settings = Settings.load(
        uri=uri, artifacts=str(root / "home" / "blobs"), home=str(root / "home")
    )
    return with_dataset(sy.Client(settings=settings))


@pytest.fixture
def invoke(client: sy.Client, store_uri: str, tmp_path: Path) -> Iterator[Invoke]:
    yield from invoker(store_uri, tmp_path)


@pytest.fixture
def sqlite_client(tmp_path: Path) -> sy.Client:
    return store(f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path)


@pytest.fixture
def sqlite_invoke(sqlite_client: sy.Client, tmp_path: Path) -> Iterator[Invoke]:
    """``invoke`` on SQLite only, where the backend makes no difference."""
    yield from invoker(sqlite_client.settings.uri, tmp_path)


def invoker(uri: str, root: Path) -> Iterator[Invoke]:
    # `monitors` is registered in shipyard.cli by the coordinator: add it here until then.
    added = "monitors" not in cli.commands
    if added:
        cli.add_command(monitors)

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--uri", uri, "--home", str(root / "home"), "monitors", *args],
            catch_exceptions=False,
        )

    yield run
    if added:
        cli.commands.pop("monitors")


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_create_list_run_show_and_delete(invoke: Invoke, client: sy.Client) -> None:
    made = invoke(
        "create",
        "credit",
        "--reference",
        "dataset:credit@1",
        "--window",
        "1h",
        "--target",
        "default",
        "--test",
        "income=ks",
        "--threshold",
        "ks=0.01",
    )
    assert made.exit_code == 0, made.stderr
    assert (
        "created monitor credit of deployment credit: dataset:credit@1, windows of 1h"
        in made.stdout
    )
    rows = invoke(
        "create",
        "credit",
        "--reference",
        "dataset:credit@1",
        "--rows",
        "50",
        "--name",
        "by-rows",
        "--column",
        "income",
    )
    assert rows.exit_code == 0, rows.stderr

    listed = invoke("list")
    assert listed.exit_code == 0
    assert "by-rows" in listed.stdout
    assert "50 rows" in listed.stdout

    now = time.time_ns() // 1_000_000
    start = now // HOUR * HOUR - 2 * HOUR
    write(client, start, 100)
    write(client, start + HOUR, 100, shift=3, seed=2)
    ran = invoke("run")
    assert ran.exit_code == 0, ran.stderr
    assert "[1/2] by-rows" in ran.stderr
    assert "credit: 2 new window(s), 1 with drift" in ran.stdout
    assert "drift in income, prediction" in ran.stdout
    assert "by-rows: 4 new window(s)" in ran.stdout
    again = invoke("run", "credit")
    assert "credit: nothing new to evaluate" in again.stdout

    shown = invoke("show", "credit")
    assert shown.exit_code == 0, shown.stderr
    assert "dataset:credit@1" in shown.stdout
    assert "income=ks" in shown.stdout
    assert "last 2 windows" in shown.stdout
    assert "income, prediction" in shown.stdout

    deleted = invoke("delete", "by-rows")
    assert deleted.stdout.strip() == "deleted monitor by-rows (4 windows)"
    assert "by-rows" not in invoke("list").stdout


def test_show_before_any_run(sqlite_invoke: Invoke) -> None:
    invoke = sqlite_invoke
    invoke("create", "credit", "--reference", "dataset:credit@1", "--rows", "10")
    shown = invoke("show", "credit")
    assert "no window evaluated yet" in shown.stdout
    assert "not known yet" in shown.stdout  # no target: the task is learnt from labels


def test_run_without_monitors(sqlite_invoke: Invoke) -> None:
    assert "no monitors" in sqlite_invoke("run").stdout


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("create", "credit", "--reference", "dataset:credit@1"), 1, "exactly one of window"),
        (
            ("create", "credit", "--reference", "dataset:credit@1", "--window", "fortnight"),
            1,
            "window must be",
        ),
        (("create", "credit", "--reference", "dataset:credit@1", "--rows", "0"), 1, "rows must be"),
        (("create", "credit", "--reference", "dataset:nope@1", "--rows", "5"), 1, "No dataset"),
        (("create", "credit", "--reference", "credit", "--rows", "5"), 1, "dataset:credit@3"),
        (
            (
                "create",
                "credit",
                "--reference",
                "dataset:credit@1",
                "--rows",
                "5",
                "--test",
                "ks",
                "--test",
                "psi",
            ),
            2,
            "one test name",
        ),
        (
            (
                "create",
                "credit",
                "--reference",
                "dataset:credit@1",
                "--rows",
                "5",
                "--test",
                "ks",
                "--test",
                "age=psi",
            ),
            2,
            "mix of",
        ),
        (
            ("create", "credit", "--reference", "dataset:credit@1", "--rows", "5", "--test", "=ks"),
            2,
            "COLUMN=NAME",
        ),
        (
            (
                "create",
                "credit",
                "--reference",
                "dataset:credit@1",
                "--rows",
                "5",
                "--threshold",
                "psi",
            ),
            2,
            "KEY=NUMBER",
        ),
        (
            (
                "create",
                "credit",
                "--reference",
                "dataset:credit@1",
                "--rows",
                "5",
                "--threshold",
                "psi=high",
            ),
            2,
            "KEY=NUMBER",
        ),
        (
            ("create", "credit", "--reference", "dataset:credit@1", "--rows", "x"),
            2,
            "not a valid integer",
        ),
        (("create", "credit"), 2, "--reference"),
        (("show", "nope"), 1, "No monitor 'nope'"),
        (("show", "credit", "--last", "0"), 2, "--last"),
        (("run", "nope"), 1, "No monitor 'nope'"),
        (("delete", "nope"), 1, "No monitor 'nope'"),
    ],
)
def test_bad_input_is_one_line(
    sqlite_invoke: Invoke, args: tuple[str, ...], code: int, expected: str
) -> None:
    assert expected in one_error_line(sqlite_invoke(*args), code)


def test_one_broken_monitor_does_not_stop_the_others(
    sqlite_invoke: Invoke, sqlite_client: sy.Client
) -> None:
    invoke, client = sqlite_invoke, sqlite_client
    invoke(
        "create", "credit", "--reference", "dataset:credit@1", "--rows", "10", "--name", "broken"
    )
    fine = ("--rows", "10", "--name", "fine", "--column", "age")  # another reference blob
    invoke("create", "credit", "--reference", "dataset:credit@1", *fine)
    digest = client.get_monitor("broken").reference_digest
    assert digest is not None
    blob = next(p for p in Path(client.settings.artifacts).rglob("*") if digest[7:] in p.name)
    blob.chmod(0o644)
    blob.write_bytes(b"damaged")
    write(client, 1_790_000_000_000, 20)
    ran = invoke("run")
    assert ran.exit_code == 1, ran.stderr
    assert "error: broken:" in ran.stderr
    assert "fine: 2 new window(s)" in ran.stdout
    assert ran.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 monitors failed: broken.")
