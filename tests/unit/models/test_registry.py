"""The model registry from Python: log, version, alias, load safely, lineage; SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied
from shipyard.models import EnvironmentMismatchWarning, _environment


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    return sy.Client()


def credit(rows: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
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


@pytest.fixture(scope="module")
def trained() -> tuple[object, pd.DataFrame]:
    features, label = credit()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, label)
    return model, features


def blob_path(tmp_path: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return tmp_path / "blobs" / "sha256" / hexdigest[:2] / hexdigest[2:4] / hexdigest


def model_count(client: sy.Client) -> int:
    return len(client.search_models())


# ----------------------------------------------------------------------- logging


def test_log_model_in_a_run_records_run_signature_environment_and_datasets(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    sy.register_dataset("credit", features)
    with sy.start_run(experiment="risk") as run:
        sy.load_dataset("credit")
        version = sy.log_model(
            model, "credit", input_example=features.head(), description="first try"
        )
    assert (version.name, version.version, version.uri) == ("credit", 1, "models:/credit/1")
    assert (version.flavor, version.status, version.run_id) == ("sklearn", "ready", run.run_id)
    assert version.datasets == (("credit", 1),)
    assert version.description == "first try"
    assert [c["name"] for c in version.signature["inputs"]] == ["income", "age", "debt"]
    assert version.signature["outputs"]["classes"] == [0, 1]
    assert version.environment["packages"]["scikit-learn"]
    assert version.files["native"].serialization == "skops"
    assert len(version.input_example) == 5

    graph = sy.lineage("model:credit/1")
    assert ("dataset:credit@1", f"run:{run.run_id}", "input") in {
        (e.source, e.target, e.relation) for e in graph.edges
    }
    assert (f"run:{run.run_id}", "model:credit/1", "produced") in {
        (e.source, e.target, e.relation) for e in graph.edges
    }


def test_a_model_logged_in_a_nested_run_records_the_data_its_parent_read(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    sy.register_dataset("credit", features)
    with sy.start_run(experiment="risk"):
        sy.load_dataset("credit")
        with sy.start_run(nested=True), sy.start_run(nested=True):
            version = sy.log_model(model, "credit", input_example=features.head())
    assert version.datasets == (("credit", 1),)
    downstream = sy.lineage("dataset:credit@1").downstream("dataset:credit@1")
    assert ("model:credit/1", "input") in {(e.target, e.relation) for e in downstream}


def test_versions_count_up_and_load_by_number_alias_and_latest(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    other = LinearRegression().fit(features, features["income"] * 2)
    assert sy.log_model(model, "credit", input_example=features.head()).version == 1
    assert sy.log_model(other, "credit", input_example=features.head()).version == 2
    sy.set_alias("credit", "champion", 1)

    champion = sy.load_model("models:/credit@champion")
    assert champion.version.version == 1
    np.testing.assert_array_equal(champion.predict(features), model.predict(features))
    np.testing.assert_allclose(champion.predict_proba(features), model.predict_proba(features))
    latest = sy.load_model("models:/credit@latest")
    assert latest.version.version == 2
    assert not hasattr(latest, "predict_proba")  # a regressor has none
    np.testing.assert_allclose(
        sy.load_model("models:/credit/2").predict(features), other.predict(features)
    )

    client.set_model_version_status("credit", 2, "archived")
    assert sy.load_model("models:/credit@latest").version.version == 1
    assert sy.load_model("models:/credit/2").version.status == "archived"


def test_predict_checks_input_against_the_signature(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    sy.log_model(model, "credit", input_example=features.head())
    loaded = sy.load_model("models:/credit/1")
    # Column order and extra columns do not matter; records work as well as frames.
    shuffled = features[["debt", "income", "age"]].assign(extra=1)
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(features))
    assert list(loaded.predict(features.head(2).to_dict("records"))) == list(
        model.predict(features.head(2))
    )
    with pytest.raises(InvalidInput, match="age"):
        loaded.predict(features.drop(columns=["age"]))


def test_aliases_move_and_delete_with_audited_history(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    for _ in range(3):
        sy.log_model(model, "credit", input_example=features.head())
    sy.set_alias("credit", "champion", 1)
    sy.set_alias("credit", "champion", 3)
    client.set_alias("credit", "challenger", 2)
    assert client.get_model("credit").aliases == {"challenger": 2, "champion": 3}
    assert client.get_model_version("models:/credit@champion").aliases == ("champion",)
    sy.delete_alias("credit", "champion")
    assert client.get_model("credit").aliases == {"challenger": 2}

    history = [(h["alias"], h["previous"], h["version"]) for h in client.alias_history("credit")]
    assert history == [
        ("champion", None, 1),
        ("champion", 1, 3),
        ("challenger", None, 2),
        ("champion", 3, None),
    ]
    events = client.audit_events(object_type="model", object_id="credit")
    assert [e.action for e in events if e.action.startswith("model.alias")] == [
        "model.alias.set",
        "model.alias.set",
        "model.alias.set",
        "model.alias.delete",
    ]
    assert {e.actor for e in events} == {client.actor}
    assert client.verify_audit().ok
    with pytest.raises(NotFound, match="champion"):
        sy.load_model("models:/credit@champion")


def test_search_models_by_name_tag_and_alias(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    for name in ("credit", "credit-eu", "fraud"):
        sy.log_model(model, name, input_example=features.head())
    client.update_model("credit-eu", description="EU book", tags={"team": "risk"})
    sy.set_alias("fraud", "champion", 1)
    assert [m.name for m in client.search_models("credit")] == ["credit", "credit-eu"]
    assert [m.name for m in client.search_models(tags={"team": "risk"})] == ["credit-eu"]
    assert [m.name for m in client.search_models(alias="champion")] == ["fraud"]
    assert client.get_model("credit-eu").description == "EU book"
    assert client.search_models("%") == []  # the name filter is literal text, not a pattern


# --------------------------------------------------------------------- safety


def test_a_tampered_byte_fails_the_digest_before_loading(
    client: sy.Client, trained: tuple[object, pd.DataFrame], tmp_path: Path
) -> None:
    model, features = trained
    version = sy.log_model(model, "credit", input_example=features.head())
    path = blob_path(tmp_path, version.files["native"].digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        sy.load_model("models:/credit/1")


class Payload:
    """Unpickling this runs ``os.system``: what a planted malicious pickle does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_planted_malicious_pickle_never_runs(
    client: sy.Client, tmp_path: Path, trained: tuple[object, pd.DataFrame]
) -> None:
    """An attacker swaps a pickled version's blob: the digest check stops it before unpickling."""

    class Local(sy.PythonModel):  # defined here, so only a pickle can carry it
        def predict(self, data: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(data))

    _, features = trained
    version = sy.log_model(Local(), "local", input_example=features.head(), allow_pickle=True)
    assert version.files["native"].serialization == "pickle"
    marker = tmp_path / "pwned"
    path = blob_path(tmp_path, version.files["native"].digest)
    os.chmod(path, 0o644)
    path.write_bytes(pickle.dumps(Payload(marker)))

    with pytest.raises(PermissionDenied, match="allow_pickle"):
        sy.load_model("models:/local/1")
    with pytest.raises(IntegrityError):
        sy.load_model("models:/local/1", allow_pickle=True)
    assert not marker.exists()


def test_a_registered_pickle_needs_the_opt_in_to_load(
    client: sy.Client, tmp_path: Path, trained: tuple[object, pd.DataFrame]
) -> None:
    class Local(sy.PythonModel):
        def predict(self, data: pd.DataFrame) -> np.ndarray:
            return np.full(len(data), 7.0)

    _, features = trained
    with pytest.raises(InvalidInput, match="allow_pickle"):
        sy.log_model(Local(), "local", input_example=features.head())
    assert model_count(client) == 0
    sy.log_model(Local(), "local", input_example=features.head(), allow_pickle=True)
    with pytest.raises(PermissionDenied):
        sy.load_model("models:/local/1")
    loaded = sy.load_model("models:/local/1", allow_pickle=True)
    assert list(loaded.predict(features.head(3))) == [7.0, 7.0, 7.0]


def test_an_environment_mismatch_warns_once_with_both_versions(
    client: sy.Client, trained: tuple[object, pd.DataFrame], store_uri: str
) -> None:
    model, features = trained
    sy.log_model(model, "credit", input_example=features.head())
    recorded = {"python": "3.11.7", "packages": {"scikit-learn": "0.20.0"}}
    with client.store.write("test") as tx:
        tx.conn.execute(
            sa.text("UPDATE model_versions SET environment = :env"), {"env": json.dumps(recorded)}
        )
    _environment._warned.clear()
    with pytest.warns(EnvironmentMismatchWarning, match=r"0\.20\.0") as caught:
        sy.load_model("models:/credit/1")
    assert len([w for w in caught if issubclass(w.category, EnvironmentMismatchWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sy.load_model("models:/credit/1")  # once per version and process


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "thing", [object(), {"weights": [1, 2]}, lambda x: x, "model.pkl"], ids=type
)
def test_an_object_of_no_known_flavor_is_refused(client: sy.Client, thing: object) -> None:
    with pytest.raises(InvalidInput, match=type(thing).__name__):
        sy.log_model(thing, "credit")
    assert model_count(client) == 0


def test_an_input_example_that_does_not_fit_the_model_stores_nothing(
    client: sy.Client, trained: tuple[object, pd.DataFrame], tmp_path: Path
) -> None:
    model, features = trained
    with pytest.raises(InvalidInput, match="input example"):
        sy.log_model(model, "credit", input_example=features[["income", "age"]].head())
    assert model_count(client) == 0
    assert not (tmp_path / "blobs" / "sha256").exists()


@pytest.mark.parametrize(
    "name", ["../credit", "credit/1", "a\\b", "..", "", "credit@x", " credit", "x" * 129, None]
)
def test_a_name_with_path_characters_is_refused(
    client: sy.Client, trained: tuple[object, pd.DataFrame], name: object
) -> None:
    model, _ = trained
    with pytest.raises(InvalidInput, match="model name"):
        sy.log_model(model, name)  # type: ignore[arg-type]
    assert model_count(client) == 0


def test_unknown_models_versions_aliases_and_formats_are_not_found(
    client: sy.Client, trained: tuple[object, pd.DataFrame]
) -> None:
    model, features = trained
    sy.log_model(model, "credit", input_example=features.head())
    with pytest.raises(NotFound, match="'nope'"):
        sy.load_model("models:/nope/1")
    with pytest.raises(NotFound, match="credit/9"):
        sy.load_model("models:/credit/9")
    with pytest.raises(NotFound, match="credit@champion"):
        sy.load_model("models:/credit@champion")
    with pytest.raises(NotFound, match="onnx"):
        sy.load_model("models:/credit/1", format="onnx")
    with pytest.raises(NotFound, match="credit/4"):
        sy.set_alias("credit", "champion", 4)
    with pytest.raises(NotFound, match="champion"):
        sy.delete_alias("credit", "champion")


@pytest.mark.parametrize("alias", ["latest", "3", "with space", "", "a/b", "x" * 65])
def test_bad_aliases_are_refused(
    client: sy.Client, trained: tuple[object, pd.DataFrame], alias: str
) -> None:
    model, features = trained
    sy.log_model(model, "credit", input_example=features.head())
    with pytest.raises(InvalidInput):
        sy.set_alias("credit", alias, 1)
    assert client.get_model("credit").aliases == {}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(uri=st.text(max_size=40) | st.from_regex(r"models:/[a-z./@]{0,12}(/|@)?[0-9a-z]{0,4}"))
def test_any_uri_gives_a_model_or_a_typed_error(client: sy.Client, uri: str) -> None:
    with contextlib.suppress(InvalidInput, NotFound):
        sy.load_model(uri)
