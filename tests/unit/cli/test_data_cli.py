"""``shipyard data ...`` and ``shipyard lineage``: output, and one line for every bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from shipyard.cli import cli

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(store_uri: str, tmp_path: Path) -> Invoke:
    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--uri", store_uri, "--home", str(tmp_path / "home"), *args],
            catch_exceptions=False,
        )

    return run


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    rows = 2000
    base = pd.DataFrame(
        {
            "id": np.arange(rows),
            "income": rng.normal(50_000, 10_000, rows),
            "region": rng.choice(["n", "s"], rows),
        }
    )
    shifted = base.assign(income=base.income + 40_000, region=rng.choice(["n", "s", "w"], rows))
    paths = {"v1": tmp_path / "v1.csv", "v2": tmp_path / "v2.csv"}
    base.to_csv(paths["v1"], index=False)
    shifted.to_csv(paths["v2"], index=False)
    return paths


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_add_list_show_and_add_again(invoke: Invoke, files: dict[str, Path]) -> None:
    added = invoke("data", "add", "credit", str(files["v1"]), "-d", "loan book")
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("dataset:credit@1: 2,000 rows")
    assert invoke("data", "add", "credit", str(files["v1"])).stdout.startswith("dataset:credit@1:")
    listed = invoke("data", "list").stdout
    assert "credit" in listed
    assert "loan book" in listed
    shown = invoke("data", "show", "credit@1").stdout
    for expected in ("dataset:credit@1", "income", "region", "int64", "valid"):
        assert expected in shown
    record = json.loads(invoke("data", "show", "credit", "--json").stdout)
    assert record["version"] == 1
    assert record["rows"] == 2000


def test_warn_stores_a_failing_version_and_show_lists_the_failures(
    invoke: Invoke, files: dict[str, Path]
) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    added = invoke("data", "add", "credit", str(files["v2"]), "--warn")
    assert added.exit_code == 0
    assert "FAILED contract check" in added.stdout
    shown = invoke("data", "show", "credit@2").stdout
    assert "failed expectations" in shown
    assert "in_categories" in shown


def test_strict_refuses_with_one_line(invoke: Invoke, files: dict[str, Path]) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    line = one_error_line(invoke("data", "add", "credit", str(files["v2"]), "--strict"))
    assert "strict contract" in line
    assert json.loads(invoke("data", "show", "credit", "--json").stdout)["version"] == 1


def test_diff_shows_drifted_columns(invoke: Invoke, files: dict[str, Path]) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    invoke("data", "add", "credit", str(files["v2"]), "--warn")
    out = invoke("data", "diff", "credit", "1", "2").stdout
    income = next(line for line in out.splitlines() if "income" in line)
    assert "DRIFT" in income
    assert "0 / 0 / 2,000" in out  # keyed by id: every row changed


def test_validate_exits_1_with_the_report_and_stores_nothing(
    invoke: Invoke, files: dict[str, Path]
) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    ok = invoke("data", "validate", "credit", str(files["v1"]))
    assert ok.exit_code == 0
    assert "meet the contract" in ok.stdout
    failed = invoke("data", "validate", "credit", str(files["v2"]))
    assert failed.exit_code == 1
    assert "region" in failed.stderr
    assert json.loads(invoke("data", "show", "credit", "--json").stdout)["version"] == 1


def test_export_and_contract_round_trip(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    out = tmp_path / "export" / "credit.csv"
    assert invoke("data", "export", "credit@1", str(out)).exit_code == 0
    assert len(pd.read_csv(out)) == 2000
    contract = invoke("data", "contract", "credit").stdout
    assert "income:" in contract
    edited = tmp_path / "contract.yaml"
    edited.write_text(contract.replace("mode: warn", "mode: strict"))
    assert "version 2" in invoke("data", "contract", "credit", "--set", str(edited)).stdout
    assert "mode: strict" in invoke("data", "contract", "credit").stdout


def test_lineage_prints_trees_and_json(invoke: Invoke, files: dict[str, Path]) -> None:
    invoke("data", "add", "credit", str(files["v1"]))
    text = invoke("lineage", "dataset:credit@1").stdout
    assert "upstream of dataset:credit@1" in text
    assert "downstream of dataset:credit@1" in text
    graph = json.loads(invoke("lineage", "dataset:credit@1", "--json").stdout)
    assert graph["root"] == "dataset:credit@1"


@pytest.mark.parametrize(
    "args",
    [
        ("data", "add", "credit", "missing.csv"),
        ("data", "add", "bad/name", "{v1}"),
        ("data", "add", "credit", "{v1}", "--contract", "missing.yaml"),
        ("data", "show", "nope"),
        ("data", "show", "credit@x"),
        ("data", "diff", "nope", "1", "2"),
        ("data", "validate", "nope", "{v1}"),
        ("data", "export", "credit", "out.parquet"),
        ("data", "export", "nope@1", "out.parquet"),
        ("data", "contract", "nope"),
        ("lineage", "dataset:credit"),
        ("lineage", "model:x"),
        ("lineage", "run:" + "0" * 32),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    invoke: Invoke, files: dict[str, Path], args: tuple[str, ...]
) -> None:
    one_error_line(invoke(*(a.format(v1=files["v1"]) for a in args)))
