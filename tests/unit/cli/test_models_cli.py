"""``shipyard models ...``: output, and one line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.cli import cli

Invoke = Callable[..., Result]


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    """A store holding model ``credit`` with versions 1 and 2, logged in one run."""
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    client = sy.Client()
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"income": rng.normal(5, 1, 80), "age": rng.integers(18, 90, 80)})
    model = LogisticRegression().fit(features, features["income"] > 5)
    with sy.start_run(experiment="risk") as run:
        sy.log_params({"C": 1.0})
        sy.log_metric("auc", 0.9)
        for _ in range(2):
            sy.log_model(model, "credit", input_example=features.head(), client=client)
    client.run_id = run.run_id  # type: ignore[attr-defined]
    return client


@pytest.fixture
def invoke(client: sy.Client, store_uri: str, tmp_path: Path) -> Invoke:
    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--uri", store_uri, "--home", str(tmp_path / "home"), *args],
            catch_exceptions=False,
        )

    return run


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    if code == 1:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
    return lines[-1]


def test_list_and_show(invoke: Invoke, client: sy.Client) -> None:
    listed = invoke("models", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [(m["name"], m["latest_version"]) for m in json.loads(listed.stdout)] == [("credit", 2)]

    shown = invoke("models", "show", "credit")
    assert shown.exit_code == 0, shown.stderr
    assert "sklearn" in shown.stdout
    assert client.run_id in shown.stdout

    one = json.loads(invoke("models", "show", "credit/2", "--json").stdout)
    assert (one["uri"], one["flavor"], one["run_id"]) == (
        "models:/credit/2",
        "sklearn",
        client.run_id,
    )  # type: ignore[attr-defined]
    assert [c["name"] for c in one["signature"]["inputs"]] == ["income", "age"]
    text = invoke("models", "show", "models:/credit/1").stdout
    assert "sha256:" in text
    assert "income" in text


def test_alias_unalias_and_archive(invoke: Invoke, client: sy.Client) -> None:
    assert invoke("models", "alias", "credit", "champion", "1").stdout.strip() == (
        "models:/credit@champion -> 1"
    )
    assert invoke("models", "alias", "credit", "champion", "2").stdout.strip() == (
        "models:/credit@champion -> 2 (was 1)"
    )
    assert json.loads(invoke("models", "show", "credit@champion", "--json").stdout)["version"] == 2
    assert invoke("models", "list", "--alias", "champion").stdout.count("credit") == 1
    assert "was 2" in invoke("models", "unalias", "credit", "champion").stdout
    assert client.get_model("credit").aliases == {}

    assert invoke("models", "archive", "credit", "2").exit_code == 0
    assert client.get_model_version("models:/credit@latest").version == 1
    assert invoke("models", "archive", "credit", "2", "--undo").exit_code == 0
    assert client.get_model_version("models:/credit@latest").version == 2


def test_card_and_export(invoke: Invoke, tmp_path: Path) -> None:
    card = invoke("models", "card", "models:/credit/1")
    assert card.exit_code == 0, card.stderr
    assert "credit" in card.stdout
    assert "income" in card.stdout
    assert "auc" in card.stdout
    html = tmp_path / "card.html"
    assert (
        invoke(
            "models", "card", "models:/credit/1", "--format", "html", "--out", str(html)
        ).exit_code
        == 0
    )
    assert html.read_text().lstrip().lower().startswith("<!doctype html>")

    out = tmp_path / "bundle"
    exported = invoke("models", "export", "models:/credit/1", "--out", str(out))
    assert exported.exit_code == 0, exported.stderr
    example = out / "input_example.json"
    done = subprocess.run(
        [sys.executable, "-I", "predict.py", str(example)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(done.stdout.splitlines()) == 5


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("models", "show", "nope"), "No registered model 'nope'"),
        (("models", "show", "credit/9"), "credit/9"),
        (("models", "show", "../etc"), "model name"),
        (("models", "show", "credit@champion"), "No alias 'credit@champion'"),
        (("models", "alias", "credit", "champion", "9"), "credit/9"),
        (("models", "alias", "credit", "latest", "1"), "reserved"),
        (("models", "alias", "credit", "bad alias", "1"), "alias"),
        (("models", "alias", "../x", "champion", "1"), "model name"),
        (("models", "unalias", "credit", "champion"), "credit@champion"),
        (("models", "archive", "credit", "0"), "version"),
        (("models", "card", "credit"), "Bad model URI"),
        (("models", "export", "models:/credit/9", "--out", "x"), "credit/9"),
    ],
)
def test_bad_input_is_one_line(invoke: Invoke, args: tuple[str, ...], says: str) -> None:
    assert says in one_error_line(invoke(*args))


def test_usage_errors_exit_2(invoke: Invoke) -> None:
    assert "VERSION" in one_error_line(invoke("models", "alias", "credit", "champion", "x"), 2)
    assert "KEY=VALUE" in one_error_line(invoke("models", "list", "--tag", "novalue"), 2)


def test_export_into_a_folder_with_files_leaves_it_alone(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    one_error_line(invoke("models", "export", "models:/credit/1", "--out", str(out)))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
