"""``shipyard drift REF CURRENT``: table, JSON, HTML, exit codes, and one line per bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from shipyard.cli import cli
from shipyard.cli._monitoring import EXIT_DRIFT, drift

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(store_uri: str, tmp_path: Path) -> Iterator[Invoke]:
    # `drift` is not in the shipped group yet: add it for these tests only.
    added = "drift" not in cli.commands
    if added:
        cli.add_command(drift)

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--uri", store_uri, "--home", str(tmp_path / "home"), *args],
            catch_exceptions=False,
        )

    yield run
    if added:
        cli.commands.pop("drift")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    rows = 2000
    base = pd.DataFrame(
        {"income": rng.normal(50_000, 10_000, rows), "region": rng.choice(["n", "s"], rows)}
    )
    shifted = base.assign(income=base.income + 40_000)
    paths = {"v1": tmp_path / "v1.csv", "v2": tmp_path / "v2.parquet"}
    base.to_csv(paths["v1"], index=False)
    shifted.to_parquet(paths["v2"], index=False)
    return paths


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_drift_between_files_prints_a_table_and_exits_0(
    invoke: Invoke, files: dict[str, Path]
) -> None:
    result = invoke("drift", str(files["v1"]), str(files["v2"]))
    assert result.exit_code == 0, result.stderr
    assert "income" in result.stdout
    assert "wasserstein" in result.stdout
    assert "DRIFT" in result.stdout
    assert "drift in 1 of 2 tested columns (share 0.50)" in result.stdout


def test_fail_on_drift_exits_3_only_when_a_column_drifted(
    invoke: Invoke, files: dict[str, Path]
) -> None:
    drifted = invoke("drift", str(files["v1"]), str(files["v2"]), "--fail-on-drift")
    assert drifted.exit_code == EXIT_DRIFT == 3
    calm = invoke("drift", str(files["v1"]), str(files["v1"]), "--fail-on-drift")
    assert calm.exit_code == 0, calm.stderr


def test_json_columns_tests_and_html(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    page = tmp_path / "drift.html"
    result = invoke(
        "drift",
        str(files["v1"]),
        str(files["v2"]),
        "--columns",
        "income,region",
        "--test",
        "income=ks,region=chi_square",
        "--json",
        "--html",
        str(page),
    )
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["drift_share"] == 0.5
    assert found["columns"]["income"]["test"] == "ks"
    assert found["columns"]["region"]["test"] == "chi_square"
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_dataset_versions_as_ref_and_current(invoke: Invoke, files: dict[str, Path]) -> None:
    assert invoke("data", "add", "credit", str(files["v1"])).exit_code == 0
    assert invoke("data", "add", "credit", str(files["v2"])).exit_code == 0
    result = invoke("drift", "dataset:credit@1", "credit@2", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["columns"]["income"]["drift"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test", "kolmogorov"], "Unknown drift test 'kolmogorov'"),
        (["--columns", "salary"], "['salary'] are not in the reference"),
        (["--test", "region=ks"], "column 'region' is categorical"),
    ],
)
def test_bad_input_is_one_error_line(
    invoke: Invoke, files: dict[str, Path], args: list[str], message: str
) -> None:
    line = one_error_line(invoke("drift", str(files["v1"]), str(files["v2"]), *args))
    assert message in line


def test_a_missing_file_or_dataset_is_one_error_line(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    assert "No file or folder" in one_error_line(
        invoke("drift", str(files["v1"]), str(tmp_path / "nope.csv"))
    )
    assert "credit" in one_error_line(invoke("drift", "credit@3", str(files["v1"])))
