"""Model cards: what the registry knows about a version, as Markdown and as safe HTML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.errors import InvalidInput, NotFound
from shipyard.models import _api
from shipyard.models._card import model_card
from shipyard.models._onnx import export_onnx


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    # start_run reads the settings: point them at the same store as the client.
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    monkeypatch.setenv("SHIPYARD_ACTOR", "alice")
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


def credit(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, rows),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["north", "south", "east"], rows),
        }
    )
    label = (frame["income"] / 10_000 + rng.normal(0, 1, rows) > 5).astype(int)
    return frame, label


def train_and_log(client: sy.Client, *, description: str = "scores loan applications") -> str:
    """A run that reads dataset credit@1, logs params and metrics, and registers a model."""
    frame, label = credit()
    sy.register_dataset("credit", frame, client=client)
    features = frame[["income", "age"]]
    with sy.start_run(experiment="risk", name="train-lr"):
        sy.load_dataset("credit")
        sy.log_params({"C": 0.5, "solver": "lbfgs"})
        sy.log_metric("auc", 0.875)
        sy.log_metric("accuracy", 0.81)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(features, label)
        version = _api.log_model(
            model,
            "credit",
            input_example=features.head(),
            description=description,
            tags={"team": "risk"},
            client=client,
        )
    return version.uri


def test_the_card_tells_what_the_registry_knows(client: sy.Client) -> None:
    uri = train_and_log(client)
    client.update_model("credit", description="Credit risk models", tags={"owner": "risk-team"})
    export_onnx(uri, client=client)
    card = model_card(uri, client=client)
    assert card.startswith("# credit version 1\n")
    assert "scores loan applications" in card
    assert "**credit**: Credit risk models" in card
    assert "| Flavor | sklearn |" in card
    assert "| Status | ready |" in card
    assert "by alice" in card
    assert "| team | risk |" in card
    assert "| owner | risk-team |" in card
    assert "- models:/credit/1" in card
    assert "- models:/credit@latest" in card
    # the training run: name, status, params and the latest metrics
    assert re.search(r"Run train-lr \(\w+\), FINISHED\.", card)
    assert "| C | 0.5 |" in card
    assert "| solver | lbfgs |" in card
    assert "| auc | 0.875 | 0 |" in card
    assert "| accuracy | 0.81 | 0 |" in card
    # the dataset the run read, with its profile
    assert "### credit@1" in card
    assert "200 rows, 3 columns" in card
    assert re.search(r"\| income \| double \| 0 \| 200 \| [\d.e+]+ to [\d.e+]+, mean ", card)
    assert re.search(r"\| region \| string \| 0 \| 3 \| (north|south|east) \(\d+\)", card)
    # the signature
    assert "| income | double | no |" in card
    assert "| age | int64 | no |" in card
    assert "| predict\\_proba | double | n x 2 |" in card
    assert "Classes: 0, 1." in card
    # environment, stored formats, lineage
    assert re.search(r"\| scikit-learn \| [\d.]+ \|", card)
    assert re.search(r"\| native \| skops \| [\d,]+ bytes \| `sha256:[0-9a-f]{64}` \|", card)
    assert re.search(r"\| onnx \| onnx \| .* \| checked on 5 example rows", card)
    assert re.search(r"dataset credit@1 → run train-lr \(\w+\) → models:/credit/1", card)
    assert "## Alias history\n\nNone recorded." in card


def test_the_card_lists_every_alias_move(client: sy.Client) -> None:
    uri = train_and_log(client)
    frame, label = credit(seed=1)
    model = LogisticRegression().fit(frame[["income", "age"]], label)
    _api.log_model(model, "credit", input_example=frame[["income", "age"]].head(), client=client)
    client.set_alias("credit", "champion", 1)
    client.set_alias("credit", "champion", 2)
    client.delete_alias("credit", "champion")
    card = model_card("models:/credit/2", client=client)
    history = card.split("## Alias history", 1)[1]
    rows = [line for line in history.splitlines() if line.startswith("| 20")]
    assert len(rows) == 3
    assert rows[0].endswith("| alice | champion | none → version 1 |")
    assert rows[1].endswith("| alice | champion | version 1 → version 2 |")
    assert rows[2].endswith("| alice | champion | version 2 → removed |")
    assert re.match(r"\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \|", rows[0])
    # version 1 was logged in a run, version 2 outside one
    assert "## Training run" in model_card(uri, client=client)
    assert "## Training run" not in card
    assert "## Training data\n\nNone recorded." in card


def test_the_card_follows_an_alias(client: sy.Client) -> None:
    train_and_log(client)
    client.set_alias("credit", "champion", 1)
    card = model_card("models:/credit@champion", client=client)
    assert card.startswith("# credit version 1\n")
    assert "- models:/credit@champion" in card


def test_user_text_cannot_add_html_or_markdown(client: sy.Client) -> None:
    description = (
        "<script>alert('x')</script> [click](javascript:alert(1)) | cell\n"
        "# not a heading\n"
        "1. not a list\n"
        "<img src=x onerror=alert(1)>"
    )
    uri = train_and_log(client, description=description)
    client.update_model("credit", tags={"<b>tag</b>": "a | b"})
    page = model_card(uri, format="html", client=client)
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>credit version 1 · model card</title>" in page
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "href" not in page
    assert "<h1>" in page
    assert page.count("<h1>") == 1
    assert "<ol>" not in page
    assert "<td>&lt;b&gt;tag&lt;/b&gt;</td>\n<td>a | b</td>" in page
    markdown = model_card(uri, client=client)
    assert "\\<script\\>" in markdown
    assert "\\# not a heading" in markdown


def test_an_unknown_format_or_version_is_refused(client: sy.Client) -> None:
    with pytest.raises(InvalidInput, match="one of markdown, html; got 'pdf'"):
        model_card("models:/credit/1", format="pdf", client=client)
    with pytest.raises(NotFound):
        model_card("models:/credit/1", client=client)
