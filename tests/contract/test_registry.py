"""Datasets and models through the public API, with lineage: the same both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.data import ContractViolation
from shipyard.errors import IntegrityError, InvalidInput, NotFound


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
        lambda: any_client.authenticate("sy_0123456789ab_secret"),
        lambda: any_client.as_actor("ann"),
    ):
        with pytest.raises(ConfigError, match="needs direct store access"):
            call()


STRICT = """\
mode: strict
columns:
  income: {type: double, nullable: false}
  age: {type: int64, nullable: false, min: 18, max: 60}
  region: {type: string, nullable: false, categories: [north, south]}
"""


def test_register_with_a_contract(any_client: sy.Client) -> None:
    first = sy.register_dataset("credit", frame())
    strict = sy.data.Contract.from_yaml(STRICT)
    old_people = frame(30, seed=2).assign(age=70)
    with pytest.raises(ContractViolation, match=r"age: expected values <= 60") as refused:
        sy.register_dataset("credit", old_people, contract=strict)
    assert "strict contract" in refused.value.message
    assert [v.version for v in sy.data.dataset_versions("credit")] == [1]
    assert sy.data.get_dataset("credit").contract_version == first.contract_version

    kept = sy.register_dataset("credit", frame(30, seed=2).assign(age=40), contract=strict)
    assert kept.version == 2
    assert kept.contract_version == first.contract_version + 1
    assert sy.data.Contract.from_yaml(sy.data.dataset_contract("credit")) == strict
    # The stored strict contract now refuses by itself; strict=False overrides it once.
    with pytest.raises(ContractViolation):
        sy.register_dataset("credit", old_people)
    warned = sy.register_dataset("credit", old_people, strict=False)
    assert (warned.version, warned.status) == (3, "warn")
    # A new dataset may start with a contract of its own.
    fresh = sy.register_dataset("fresh", frame().assign(age=30), contract=strict.to_yaml())
    assert fresh.contract_version == 1
    assert "max: 60" in sy.data.dataset_contract("fresh")

    with pytest.raises(InvalidInput, match="not valid YAML"):
        sy.register_dataset("credit", frame(), contract="mode: [strict")
    with pytest.raises(InvalidInput, match="Contract"):
        sy.register_dataset("credit", frame(), contract=42)
    with pytest.raises(InvalidInput, match="mode"):
        sy.register_dataset("credit", frame(), contract="mode: sometimes\ncolumns: {}\n")
    assert [v.version for v in sy.data.dataset_versions("credit")] == [1, 2, 3]


def test_diff_datasets(any_client: sy.Client) -> None:
    sy.register_dataset("credit", frame())
    sy.register_dataset("credit", frame(80, seed=1).assign(income=lambda f: f.income + 3))
    found = sy.data.diff_datasets("credit", 1, 2)
    assert isinstance(found, sy.data.DatasetDiff)
    assert (found.name, found.old, found.new, found.rows_old, found.rows_new) == (
        "credit",
        1,
        2,
        60,
        80,
    )
    by_column = {c.column: c for c in found.columns}
    assert by_column["income"].test == "ks"
    assert by_column["income"].drift
    assert by_column["region"].test == "psi"
    assert found.retyped_columns == {}
    assert found == sy.data.diff_datasets("credit", 1, 2, client=any_client)

    with pytest.raises(NotFound):
        sy.data.diff_datasets("credit", 1, 9)
    with pytest.raises(NotFound):
        sy.data.diff_datasets("nothing", 1, 2)
    for old in (0, -1, "1", True, 1.5):
        with pytest.raises(InvalidInput, match="old must be a dataset version"):
            sy.data.diff_datasets("credit", old, 2)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="dataset name"):
        sy.data.diff_datasets("bad name!", 1, 2)


def test_export_onnx(any_client: sy.Client, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    data = frame()
    X = data[["income", "age"]]
    model = LogisticRegression(max_iter=500).fit(X, data["income"] > 5)
    version = sy.log_model(model, "credit", input_example=X.head())
    exported = sy.export_onnx(version.uri)
    onnx_file = exported.files["onnx"]
    assert (onnx_file.format, onnx_file.serialization) == ("onnx", "onnx")
    assert onnx_file.meta["checked"]["rows"] == 5
    assert any_client.get_model_version("credit", 1).files["onnx"] == onnx_file
    loaded = sy.load_model(version.uri, format="onnx")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    folder = sy.models.export_folder(version.uri, tmp_path / "onnx-folder")
    assert (folder / "model.onnx").stat().st_size == onnx_file.size

    with pytest.raises(InvalidInput, match="input example"):
        sy.export_onnx(sy.log_model(model, "credit").uri)  # no input example: nothing to check
    with pytest.raises(NotFound):
        sy.export_onnx("models:/credit/9")
    with pytest.raises(InvalidInput, match="tolerance"):
        sy.export_onnx(version.uri, tolerance=-1)
    assert "onnx" not in any_client.get_model_version("credit", 2).files


def test_an_onnx_upload_that_does_not_match_its_digest_is_not_stored(
    any_client: sy.Client, mode: str
) -> None:
    if mode != "remote":
        pytest.skip("only a remote export uploads")
    from sklearn.linear_model import LogisticRegression

    from shipyard.tracking import _remote

    data = frame()
    X = data[["income", "age"]]
    version = sy.log_model(
        LogisticRegression().fit(X, data["income"] > 5), "credit", input_example=X.head()
    )
    real_hash = _remote._hash_file

    def lying_hash(path: Path) -> tuple[str, int]:
        _, size = real_hash(path)
        return "sha256:" + "0" * 64, size

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_remote, "_hash_file", lying_hash)
        with pytest.raises(IntegrityError, match="nothing was stored"):
            sy.export_onnx(version.uri)
    assert "onnx" not in any_client.get_model_version("credit", 1).files
