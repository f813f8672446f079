"""``shipyard deployments ...`` and ``shipyard serve --deployment``: output, and one line for
every bad input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.cli import cli
from shipyard.cli._deployments import deployments
from shipyard.cli._serving import serve

Invoke = Callable[..., Result]


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    """``credit`` versions 1 and 2: champion -> 1, challenger -> 2."""
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    client = sy.Client()
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"income": rng.normal(5, 1, 40), "age": rng.integers(18, 90, 40)})
    model = LogisticRegression().fit(features, features["income"] > 5)
    for _ in range(2):
        sy.log_model(model, "credit", input_example=features.head(), client=client)
    client.set_alias("credit", "champion", 1)
    client.set_alias("credit", "challenger", 2)
    return client


@pytest.fixture
def invoke(client: sy.Client, store_uri: str, tmp_path: Path) -> Invoke:
    # A copy of the root group with the commands under test, whether or not they are registered.
    root = copy.copy(cli)
    root.commands = {**cli.commands, "deployments": deployments, "serve": serve}

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            root,
            ["--uri", store_uri, "--home", str(tmp_path / "home"), *args],
            catch_exceptions=False,
        )

    return run


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_create_list_show_update_delete(invoke: Invoke, client: sy.Client) -> None:
    made = invoke(
        "deployments",
        "create",
        "credit",
        "--model",
        "models:/credit@champion",
        "--canary",
        "models:/credit@challenger",
        "--canary-percent",
        "10",
        "--shadow",
        "models:/credit/2",
        "--description",
        "loans",
    )
    assert made.exit_code == 0, made.stderr
    assert "created deployment credit: models:/credit@champion, canary" in made.stdout
    assert client.get_deployment("credit").canary_percent == 10.0

    listed = invoke("deployments", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "1 deployment" in listed.stdout
    assert "models:/credit@challenger (10%)" in listed.stdout
    as_json = json.loads(invoke("deployments", "list", "--json").stdout)
    assert [(d["name"], d["shadow_uri"]) for d in as_json] == [("credit", "models:/credit/2")]

    shown = invoke("deployments", "show", "credit")
    assert shown.exit_code == 0, shown.stderr
    assert "models:/credit@champion (now models:/credit/1)" in shown.stdout
    assert "10%" in shown.stdout
    assert json.loads(invoke("deployments", "show", "credit", "--json").stdout)["description"] == (
        "loans"
    )

    updated = invoke("deployments", "update", "credit", "--no-canary", "--no-shadow")
    assert updated.exit_code == 0, updated.stderr
    assert updated.stdout.strip() == "updated deployment credit: models:/credit@champion"
    again = invoke(
        "deployments", "update", "credit", "--canary", "models:/credit/2", "--canary-percent", "5"
    )
    assert again.exit_code == 0, again.stderr
    assert client.get_deployment("credit").canary_percent == 5.0
    assert invoke("deployments", "update", "credit", "--model", "models:/credit/1").exit_code == 0
    assert client.get_deployment("credit").model_uri == "models:/credit/1"

    deleted = invoke("deployments", "delete", "credit")
    assert deleted.exit_code == 0, deleted.stderr
    assert "deleted deployment credit" in deleted.stdout
    assert client.list_deployments() == []


def test_bad_input_is_one_error_line(invoke: Invoke, client: sy.Client) -> None:
    model = ("--model", "models:/credit@champion")
    assert "deployment name" in one_error_line(invoke("deployments", "create", "a/b", *model))
    assert "model URI" in one_error_line(
        invoke("deployments", "create", "credit", "--model", "credit")
    )
    assert "needs canary_percent" in one_error_line(
        invoke("deployments", "create", "credit", *model, "--canary", "models:/credit/2")
    )
    assert "needs a canary" in one_error_line(
        invoke("deployments", "create", "credit", *model, "--canary-percent", "3")
    )
    assert "own model" in one_error_line(
        invoke("deployments", "create", "credit", *model, "--shadow", "models:/credit@champion")
    )
    assert "No registered model 'nope'" in one_error_line(
        invoke("deployments", "create", "credit", "--model", "models:/nope/1")
    )
    for percent in ("0", "100", "ten", "-5"):
        line = one_error_line(
            invoke(
                "deployments",
                "create",
                "x",
                *model,
                "--canary",
                "models:/credit/2",
                "--canary-percent",
                percent,
            ),
            code=2,
        )
        assert "--canary-percent" in line
    assert "Missing option '--model'" in one_error_line(
        invoke("deployments", "create", "credit"), code=2
    )
    assert client.list_deployments() == []

    assert invoke("deployments", "create", "credit", *model).exit_code == 0
    assert "already" in one_error_line(invoke("deployments", "create", "credit", *model))
    assert "No deployment 'other'" in one_error_line(invoke("deployments", "show", "other"))
    assert "No deployment 'other'" in one_error_line(invoke("deployments", "delete", "other"))
    assert "Nothing to change" in one_error_line(invoke("deployments", "update", "credit"), code=2)
    assert "--no-canary cannot go with" in one_error_line(
        invoke("deployments", "update", "credit", "--no-canary", "--canary", "models:/credit/2"),
        code=2,
    )
    assert "--no-shadow cannot go with" in one_error_line(
        invoke("deployments", "update", "credit", "--no-shadow", "--shadow", "models:/credit/2"),
        code=2,
    )
    assert "needs a canary" in one_error_line(
        invoke("deployments", "update", "credit", "--canary-percent", "5")
    )
    assert "credit@gold" in one_error_line(
        invoke("deployments", "update", "credit", "--model", "models:/credit@gold")
    )


def test_serve_needs_a_uri_or_a_stored_deployment(invoke: Invoke) -> None:
    assert "Nothing to serve" in one_error_line(invoke("serve"))
    assert "No deployment 'credit'" in one_error_line(invoke("serve", "--deployment", "credit"))
    assert "deployment name" in one_error_line(invoke("serve", "--deployment", "a/b"))
