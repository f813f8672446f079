"""ONNX export: conversion checked against the original, stored as a second format, and a
folder that runs with onnxruntime alone; on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import shipyard as sy
from shipyard.errors import AlreadyExists, InvalidInput
from shipyard.models import _api, _onnx
from shipyard.models._onnx import OnnxMismatch, export_folder, export_onnx

from ._models_for_tests import Threshold

PYTHON = str(Path(sys.executable))


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


def credit(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, rows),
            "age": rng.integers(18, 90, rows),
            "debt": rng.normal(10_000, 3_000, rows),
        }
    )
    label = (frame["debt"] / frame["income"] + rng.normal(0, 0.05, rows) > 0.2).astype(int)
    return frame, label


FEATURES, LABEL = credit()
RATIO = FEATURES["debt"] / FEATURES["income"]

#: name -> (fitted model, is a classifier)
MODELS: dict[str, Callable[[], tuple[object, bool]]] = {
    "logistic": lambda: (LogisticRegression(max_iter=1000).fit(FEATURES, LABEL), True),
    "forest": lambda: (
        RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(FEATURES, LABEL),
        True,
    ),
    "pipeline": lambda: (
        make_pipeline(StandardScaler(), LogisticRegression()).fit(FEATURES, LABEL),
        True,
    ),
    "regressor": lambda: (
        RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(FEATURES, RATIO),
        False,
    ),
}


def blob_count(tmp_path: Path) -> int:
    return sum(1 for p in (tmp_path / "blobs").rglob("*") if p.is_file() and "sha256" in p.parts)


# -------------------------------------------------------------------- export


@pytest.mark.parametrize("kind", list(MODELS))
def test_export_predicts_what_the_original_predicts(client: sy.Client, kind: str) -> None:
    model, classifier = MODELS[kind]()
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    version = export_onnx(logged.uri, client=client)
    onnx_file = version.files["onnx"]
    assert (onnx_file.format, onnx_file.serialization) == ("onnx", "onnx")
    assert version.files["native"] == logged.files["native"]
    assert onnx_file.meta["inputs"] == [
        {"name": "input", "columns": ["income", "age", "debt"], "type": "float32"}
    ]
    assert onnx_file.meta["checked"]["rows"] == 5
    assert onnx_file.meta["checked"]["max_difference"] <= 1e-5
    loaded = _api.load_model(logged.uri, format="onnx", client=client)
    assert loaded.format == "onnx"
    if classifier:
        assert onnx_file.meta["classes"] == [0, 1]
        np.testing.assert_array_equal(loaded.predict(FEATURES), model.predict(FEATURES))
        np.testing.assert_allclose(
            loaded.predict_proba(FEATURES), model.predict_proba(FEATURES), rtol=0, atol=1e-5
        )
    else:
        np.testing.assert_allclose(
            loaded.predict(FEATURES), model.predict(FEATURES), rtol=0, atol=1e-5
        )


def test_text_columns_get_one_input_each(client: sy.Client) -> None:
    frame = FEATURES.assign(region=np.random.default_rng(1).choice(["n", "s", "e"], len(FEATURES)))
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["income", "age", "debt"]),
                ("cat", OneHotEncoder(), ["region"]),
            ]
        ),
        LogisticRegression(),
    ).fit(frame, LABEL)
    logged = _api.log_model(model, "credit", input_example=frame.head(), client=client)
    meta = export_onnx(logged.uri, client=client).files["onnx"].meta
    assert [(i["name"], i["type"]) for i in meta["inputs"]] == [
        ("income", "float32"),
        ("age", "float32"),
        ("debt", "float32"),
        ("region", "string"),
    ]
    loaded = _api.load_model(logged.uri, format="onnx", client=client)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_export_by_alias_and_again_replaces_the_onnx_file(client: sy.Client) -> None:
    model, _ = MODELS["logistic"]()
    _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    client.set_alias("credit", "champion", 1)
    first = export_onnx("models:/credit@champion", client=client)
    second = export_onnx("models:/credit/1", tolerance=1e-3, client=client)
    assert first.version == second.version == 1
    assert second.files["onnx"].meta["checked"]["tolerance"] == 1e-3
    assert sorted(client.get_model_version("credit", 1).files) == ["native", "onnx"]
    actions = [e.action for e in client.audit_events() if e.action == "model.version.add_format"]
    assert len(actions) == 2


def test_large_values_are_compared_relative_to_their_size(
    client: sy.Client, tmp_path: Path
) -> None:
    # float32 keeps ~7 digits: an income-sized output is off by ~1e-3 in absolute terms.
    model = LinearRegression().fit(FEATURES, FEATURES["income"] * 3 + FEATURES["debt"])
    logged = _api.log_model(model, "income", input_example=FEATURES.head(), client=client)
    assert "onnx" in export_onnx(logged.uri, client=client).files
    before = blob_count(tmp_path)
    with pytest.raises(OnnxMismatch, match=r"differs from the original in 'variable'") as caught:
        export_onnx(logged.uri, tolerance=1e-12, client=client)
    assert caught.value.output == "variable"
    assert 1e-12 < caught.value.difference < 1e-5
    assert "tolerance=" in str(caught.value.hint)
    assert blob_count(tmp_path) == before


def test_a_version_without_an_input_example_cannot_be_exported(client: sy.Client) -> None:
    model, _ = MODELS["logistic"]()
    logged = _api.log_model(model, "credit", client=client)
    with pytest.raises(InvalidInput, match=r"no input example.*input_example=") as caught:
        export_onnx(logged.uri, client=client)
    assert "models:/credit/1" in str(caught.value)
    assert "onnx" not in client.get_model_version("credit", 1).files


def test_only_the_sklearn_flavor_can_be_exported(client: sy.Client) -> None:
    frame = pd.DataFrame({"income": [10.0, 60.0]})
    logged = _api.log_model(Threshold("income", 50.0), "rule", input_example=frame, client=client)
    with pytest.raises(InvalidInput, match=r"flavor 'sklearn'.*has flavor 'python'"):
        export_onnx(logged.uri, client=client)


def test_an_unsupported_step_is_refused_and_nothing_is_stored(
    client: sy.Client, tmp_path: Path
) -> None:
    model = make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression())
    model.fit(FEATURES, LABEL)
    logged = _api.log_model(
        model, "credit", input_example=FEATURES.head(), allow_pickle=True, client=client
    )
    before = blob_count(tmp_path)
    with pytest.raises(
        InvalidInput, match=r"skl2onnx cannot convert .*Pipeline.*FunctionTransformer"
    ):
        export_onnx(logged.uri, allow_pickle=True, client=client)
    assert "onnx" not in client.get_model_version("credit", 1).files
    assert blob_count(tmp_path) == before


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf"), "0.1", True])
def test_tolerance_must_be_a_finite_number(client: sy.Client, tolerance: object) -> None:
    with pytest.raises(InvalidInput, match="tolerance must be a finite number"):
        export_onnx("models:/credit/1", tolerance=tolerance, client=client)  # type: ignore[arg-type]


def test_boosters_need_onnxmltools(client: sy.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=5, verbose=-1).fit(FEATURES, LABEL)
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    monkeypatch.setitem(sys.modules, "onnxmltools", None)  # as if it were not installed
    with pytest.raises(InvalidInput, match=r"lightgbm model to ONNX needs onnxmltools"):
        export_onnx(logged.uri, client=client)
    assert "onnx" not in client.get_model_version("credit", 1).files


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_boosters_convert_with_onnxmltools(client: sy.Client, library: str) -> None:
    if library == "lightgbm":
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(n_estimators=5, verbose=-1)
    else:
        from xgboost import XGBClassifier

        model = XGBClassifier(n_estimators=5, max_depth=3)
    model.fit(FEATURES, LABEL)
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    export_onnx(logged.uri, client=client)
    loaded = _api.load_model(logged.uri, format="onnx", client=client)
    np.testing.assert_allclose(
        loaded.predict_proba(FEATURES), model.predict_proba(FEATURES), rtol=0, atol=1e-5
    )


# -------------------------------------------------------------------- folders


def run_predict(folder: Path, input_file: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [PYTHON, "-I", "predict.py", str(input_file)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_folder_runs_without_shipyard(client: sy.Client, tmp_path: Path) -> None:
    model, _ = MODELS["pipeline"]()
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    out = export_folder(logged.uri, tmp_path / "export", client=client)  # exports ONNX first
    assert out == tmp_path / "export"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "input_example.json",
        "model.onnx",
        "predict.py",
        "requirements.txt",
        "signature.json",
    ]
    assert "onnx" in client.get_model_version("credit", 1).files
    requirements = (out / "requirements.txt").read_text().split()
    assert [line.split(">=")[0] for line in requirements] == ["onnxruntime", "numpy"]
    imported = {
        alias.name.partition(".")[0]
        for node in ast.walk(ast.parse((out / "predict.py").read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported == {"csv", "json", "sys", "pathlib", "numpy", "onnxruntime"}

    rows = FEATURES.iloc[:20]
    (tmp_path / "rows.json").write_text(rows.to_json(orient="records"))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    onnx_model = _api.load_model(logged.uri, format="onnx", client=client)
    expected_labels = onnx_model.predict(rows).tolist()
    expected_proba = onnx_model.predict_proba(rows)
    for source in ("rows.json", "rows.csv"):
        lines = run_predict(out, tmp_path / source)
        assert [line["prediction"] for line in lines] == expected_labels
        proba = np.array(
            [[line["probabilities"]["0"], line["probabilities"]["1"]] for line in lines]
        )
        np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-6)
    assert expected_labels == model.predict(rows).tolist()


def test_a_regressor_folder_prints_values(client: sy.Client, tmp_path: Path) -> None:
    model, _ = MODELS["regressor"]()
    logged = _api.log_model(model, "ratio", input_example=FEATURES.head(), client=client)
    out = export_folder(logged.uri, tmp_path / "export", client=client)
    lines = run_predict(out, out / "input_example.json")
    values = [line["prediction"] for line in lines]
    np.testing.assert_allclose(values, model.predict(FEATURES.head()), rtol=0, atol=1e-5)
    assert all(set(line) == {"prediction"} for line in lines)


def test_a_folder_that_is_not_empty_is_left_alone(client: sy.Client, tmp_path: Path) -> None:
    model, _ = MODELS["logistic"]()
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="export folder"):
        export_folder(logged.uri, out, client=client)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert "onnx" not in client.get_model_version("credit", 1).files  # refused before any work
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (export_folder(logged.uri, empty, client=client) / "model.onnx").is_file()


def test_a_failed_export_leaves_no_folder(client: sy.Client, tmp_path: Path) -> None:
    model, _ = MODELS["logistic"]()
    logged = _api.log_model(model, "credit", client=client)  # no example: cannot export
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InvalidInput, match="no input example"):
        export_folder(logged.uri, tmp_path / "export", client=client)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_failure_while_writing_removes_the_staging_folder(
    client: sy.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = MODELS["logistic"]()
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    export_onnx(logged.uri, client=client)

    def broken_readme(*args: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(_onnx, "_readme", broken_readme)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError, match="disk full"):
        export_folder(logged.uri, tmp_path / "export", client=client)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_native_folder_holds_the_logged_file(client: sy.Client, tmp_path: Path) -> None:
    model, _ = MODELS["logistic"]()
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    out = export_folder(logged.uri, tmp_path / "native", format="native", client=client)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "input_example.json",
        "model.skops",
        "signature.json",
    ]
    assert "sy.load_model" in (out / "README.md").read_text()
    assert json.loads((out / "signature.json").read_text()) == logged.signature
    assert "onnx" not in client.get_model_version("credit", 1).files


def test_an_unknown_folder_format_is_refused(client: sy.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="format must be one of onnx, native; got 'pickle'"):
        export_folder("models:/credit/1", tmp_path / "x", format="pickle", client=client)


def test_a_classifier_without_probabilities_exports_without_them(client: sy.Client) -> None:
    from sklearn.svm import LinearSVC

    model = LinearSVC().fit(FEATURES, LABEL)
    logged = _api.log_model(model, "credit", input_example=FEATURES.head(), client=client)
    export_onnx(logged.uri, client=client)
    loaded = _api.load_model(logged.uri, format="onnx", client=client)
    assert not hasattr(loaded, "predict_proba")  # the decision scores are not probabilities
    np.testing.assert_array_equal(loaded.predict(FEATURES), model.predict(FEATURES))
