"""Datasets and models through the public API, with lineage: the same both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.errors import InvalidInput, NotFound


def frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(5, 1, rows),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["north", "south"], rows),
        }
    )


def test_datasets_register_load_and_lineage(any_client: sy.Client, tmp_path: Path) -> None:
    first = sy.register_dataset("credit", frame(), description="loans")
    assert (first.name, first.version, first.rows) == ("credit", 1, 60)
    assert sy.register_dataset("credit", frame()).version == 1  # equal rows: the same version
    csv = tmp_path / "more.csv"
    frame(40, seed=1).to_csv(csv, index=False)
    second = sy.register_dataset("credit", csv)
    assert second.version == 2
    assert second.rows == 40

    assert [v.version for v in sy.data.dataset_versions("credit")] == [1, 2]
    assert sy.data.get_dataset("credit").version == 2
    assert sy.data.get_dataset("credit@1").profile["columns"]["age"]
    assert [d.name for d in sy.data.list_datasets()] == ["credit"]
    assert "income" in sy.data.dataset_contract("credit")

    with sy.start_run(experiment="train") as run:
        loaded = sy.load_dataset("credit@1")
        pd.testing.assert_frame_equal(loaded, frame())
        made = sy.register_dataset("features", loaded.assign(score=1.0))
    table = sy.load_dataset("credit", format="arrow")
    assert table.num_rows == 40

    graph = sy.lineage(f"run:{run.run_id}")
    assert {(e.source, e.target, e.relation) for e in graph.edges} == {
        ("dataset:credit@1", f"run:{run.run_id}", "input"),
        (f"run:{run.run_id}", "dataset:features@1", "produced"),
    }
    assert made.run_id == run.run_id

    with pytest.raises(NotFound):
        sy.load_dataset("credit@9")
    with pytest.raises(InvalidInput):
        sy.register_dataset("bad name!", frame())
    with pytest.raises(InvalidInput):
        sy.register_dataset("credit", 42)


def test_models_log_load_predict_alias(any_client: sy.Client, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    data = frame()
    X, y = data[["income", "age"]], data["income"] > 5
    model = LogisticRegression(max_iter=500).fit(X, y)
    with sy.start_run(experiment="train") as run:
        v1 = sy.log_model(model, "credit", input_example=X.head(), tags={"algo": "lr"})
        v2 = sy.log_model(model, "credit", description="again")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.run_id == run.run_id
    assert v1.flavor == "sklearn"
    assert v1.signature is not None
    assert v1.tags == {"algo": "lr"}

    loaded = sy.load_model("models:/credit/1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert sy.load_model("models:/credit@latest").version.version == 2

    sy.set_alias("credit", "champion", 1)
    assert any_client.get_model_version("models:/credit@champion").version == 1
    assert any_client.get_model_version("credit", 2).description == "again"
    assert [m.name for m in any_client.search_models(alias="champion")] == ["credit"]
    assert any_client.get_model("credit").aliases == {"champion": 1}
    assert any_client.set_alias("credit", "champion", 2) == 1
    sy.delete_alias("credit", "champion")
    history = any_client.alias_history("credit")
    assert [(h["alias"], h["version"], h["previous"]) for h in history] == [
        ("champion", 1, None),
        ("champion", 2, 1),
        ("champion", None, 2),
    ]
    any_client.set_model_version_status("credit", 2, "archived")
    assert sy.models.resolve("models:/credit@latest").version == 1
    assert [v.version for v in any_client.model_versions("credit")] == [1, 2]
    assert any_client.update_model("credit", description="d").description == "d"

    card = sy.models.model_card("models:/credit/1")
    assert "credit" in card
    assert "algo" in card
    folder = sy.models.export_folder("models:/credit/1", tmp_path / "export", format="native")
    assert any(p.is_file() for p in folder.rglob("*"))

    graph = sy.lineage("model:credit/1")
    assert (f"run:{run.run_id}", "model:credit/1", "produced") in {
        (e.source, e.target, e.relation) for e in graph.edges
    }

    with pytest.raises(NotFound):
        sy.load_model("models:/credit/7")
    with pytest.raises(NotFound):
        sy.load_model("models:/credit@nobody")
    with pytest.raises(InvalidInput):
        sy.load_model("credit")


def test_a_model_whose_blob_changed_is_refused(any_client: sy.Client, backing: sy.Client) -> None:
    from sklearn.linear_model import LogisticRegression

    data = frame()
    version = sy.log_model(LogisticRegression().fit(data[["age"]], data["age"] > 50), "m")
    digest = version.files["native"].digest.removeprefix("sha256:")
    (blob,) = [p for p in Path(backing.settings.artifacts).rglob(f"*{digest}*") if p.is_file()]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(sy.errors.IntegrityError):
        sy.load_model("models:/m/1")


def test_what_needs_the_store_says_so_remotely(any_client: sy.Client, mode: str) -> None:
    if mode != "remote":
        pytest.skip("embedded clients have the store")
    from shipyard.errors import ConfigError

    for call in (
        lambda: any_client.store,
        lambda: any_client.blobs,
        any_client.upgrade_db,
        lambda: any_client.create_user("ann", "viewer"),
        lambda: any_client.create_token("ann"),
    ):
        with pytest.raises(ConfigError, match="needs direct store access"):
            call()
