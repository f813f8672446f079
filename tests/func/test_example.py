"""The end-to-end example runs on a fresh store and leaves the runs it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard as sy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "end_to_end.py"
CANDIDATES = {"logistic-regression", "random-forest"}
FOLDS = 5


def run_example(home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # it promises to finish well under a minute
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.mark.slow
def test_example_tracks_a_model_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    result = run_example(home, cwd=tmp_path)
    assert str(home / "shipyard.db") in result.stdout
    assert not (tmp_path / ".shipyard").exists()  # SHIPYARD_HOME is where it all goes

    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    client = sy.Client()
    runs = client.search_runs("breast-cancer", max_results=100).runs
    parents = [r for r in runs if r.parent_run_id is None]
    children = [r for r in runs if r.parent_run_id is not None]

    assert len(parents) == 1
    parent = parents[0]
    assert parent.name == "model-selection"
    assert parent.status is sy.RunStatus.FINISHED
    assert parent.tags["best_model"] in CANDIDATES
    assert parent.metrics["best_roc_auc"].value > 0.95
    assert parent.run_id in result.stdout

    assert {r.name for r in children} == CANDIDATES
    for run in children:
        assert run.parent_run_id == parent.run_id
        assert run.status is sy.RunStatus.FINISHED
        assert run.tags["role"] == "candidate"
        assert run.params["cv_folds"] == str(FOLDS)
        assert "model" in run.params
        assert 0.9 < run.metrics["accuracy"].value <= 1
        assert 0.95 < run.metrics["roc_auc"].value <= 1
        assert 0 < run.metrics["log_loss"].value < 0.5
        history = client.get_metric_history(run.run_id, "cv_roc_auc")
        assert [m.step for m in history] == list(range(1, FOLDS + 1))
        assert {a.path for a in client.list_artifacts(run.run_id)} == {
            "predictions.csv",
            "report/confusion_matrix.txt",
            "report/classification_report.txt",
        }
        csv = client.download_artifacts(run.run_id, "predictions.csv", tmp_path / run.run_id)
        assert csv.read_text().splitlines()[0] == "row,label,probability,prediction"
        assert run.run_id in result.stdout  # in the table of best runs

    best = client.search_runs(
        "breast-cancer", filter="tags.role = 'candidate'", order_by=["metrics.roc_auc DESC"]
    ).runs[0]
    assert best.name == parent.tags["best_model"]

    # Each candidate became a model version trained on the dataset; the best is the champion.
    versions = client.model_versions("breast-cancer")
    assert len(versions) == len(CANDIDATES)
    assert {v.run_id for v in versions} == {r.run_id for r in children}
    assert {v.datasets for v in versions} == {(("breast-cancer", 1),)}
    champion = client.get_model_version("models:/breast-cancer@champion")
    assert champion.run_id == best.run_id
    assert set(champion.files) == {"native", "onnx"}
    assert "models:/breast-cancer/" in result.stdout


@pytest.mark.slow
def test_example_runs_again_on_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    run_example(home, cwd=tmp_path)
    run_example(home, cwd=tmp_path)

    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    runs = sy.Client().search_runs("breast-cancer", max_results=100).runs
    assert len([r for r in runs if r.parent_run_id is None]) == 2
    assert len([r for r in runs if r.tags.get("role") == "candidate"]) == 4
    assert sy.Client().verify_audit().ok
