"""Flavors: every supported kind of model round-trips, and loading refuses what it should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from xgboost import XGBClassifier

from shipyard.errors import IntegrityError, InvalidInput, PermissionDenied
from shipyard.models import _flavors
from shipyard.models._flavors import OnnxPredictor, SavedModel, flavor_for, get_flavor
from shipyard.models._python_model import PythonModel
from unit.models._models_for_tests import Threshold, WithSetState, Wrapper


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 5)), columns=[f"f{i}" for i in range(5)])
    y_class = (X["f0"] + X["f1"] > 0).astype(np.int64).to_numpy()
    y_reg = (2 * X["f0"] - X["f2"]).to_numpy()
    return X, y_class, y_reg


def save_and_load(model: Any, tmp_path: Path, **save: Any) -> tuple[SavedModel, Any]:
    flavor = flavor_for(model)
    saved = flavor.save(model, tmp_path, allow_pickle=save.pop("allow_pickle", False), **save)
    assert saved.path.parent == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.path.name]  # one file, no temp
    json.dumps(saved.meta)  # stored as JSON by the registry
    loaded = flavor.load(saved.path, saved.meta, allow_pickle=saved.serialization == "pickle")
    return saved, loaded


CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "logistic": LogisticRegression,
    "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
    "pipeline": lambda: Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]),
    "xgboost": lambda: XGBClassifier(n_estimators=5),
    "lightgbm": lambda: LGBMClassifier(n_estimators=5, verbose=-1),
}
REGRESSORS: dict[str, Callable[[], Any]] = {
    "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=5, random_state=0),
    "lightgbm_pipeline": lambda: Pipeline(
        [("scale", StandardScaler()), ("lgbm", LGBMRegressor(n_estimators=5, verbose=-1))]
    ),
}


@pytest.mark.parametrize("make", CLASSIFIERS.values(), ids=CLASSIFIERS.keys())
def test_classifiers_round_trip_through_skops(make: Callable[[], Any], data, tmp_path) -> None:
    X, y, _ = data
    model = make().fit(X, y)
    saved, loaded = save_and_load(model, tmp_path)
    assert saved.serialization == "skops"
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("make", REGRESSORS.values(), ids=REGRESSORS.keys())
def test_regressors_round_trip_through_skops(make: Callable[[], Any], data, tmp_path) -> None:
    X, _, y = data
    model = make().fit(X, y)
    saved, loaded = save_and_load(model, tmp_path)
    assert saved.serialization == "skops"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_sklearn_packages_name_the_libraries_of_every_step() -> None:
    sklearn = get_flavor("sklearn")
    plain = sklearn.packages(LogisticRegression())
    assert {"scikit-learn", "skops", "numpy"} <= set(plain)
    assert not any(name.startswith(("xgboost", "lightgbm")) for name in plain)
    assert any(name.startswith("xgboost") for name in sklearn.packages(XGBClassifier()))
    assert "lightgbm" in sklearn.packages(REGRESSORS["lightgbm_pipeline"]())


def test_the_trusted_types_recorded_are_what_skops_needed(data, tmp_path) -> None:
    X, y, _ = data
    saved, _ = save_and_load(RandomForestClassifier(n_estimators=2).fit(X, y), tmp_path)
    assert saved.meta["trusted_types"] == ["sklearn.tree._tree.Tree"]


def test_a_numpy_ufunc_skops_trusts_itself_needs_no_trusted_types(data, tmp_path) -> None:
    X, y, _ = data
    model = Pipeline([("f", FunctionTransformer(np.abs)), ("lr", LogisticRegression())])
    model.fit(X, y)
    saved, loaded = save_and_load(model, tmp_path)
    assert saved.meta["trusted_types"] == []
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_numpy_function_is_not_trusted_by_its_module_alone(tmp_path) -> None:
    model = FunctionTransformer(np.savetxt)
    with pytest.raises(
        InvalidInput, match=r"\['numpy\.savetxt'\].*trusted_types=\['numpy\.savetxt'\]"
    ):
        flavor_for(model).save(model, tmp_path, allow_pickle=False)
    assert list(tmp_path.iterdir()) == []


def test_a_type_the_caller_trusts_is_saved_and_loads(tmp_path) -> None:
    model = FunctionTransformer(os.path.join)
    with pytest.raises(InvalidInput, match=r"posixpath\.join|ntpath\.join"):
        flavor_for(model).save(model, tmp_path, allow_pickle=False)
    name = f"{os.path.join.__module__}.join"
    saved, loaded = save_and_load(model, tmp_path, trusted_types=[name])
    assert saved.meta["trusted_types"] == [name]
    assert loaded.func is os.path.join


def test_a_skops_file_holding_a_type_its_record_did_not_trust_is_refused(data, tmp_path) -> None:
    X, y, _ = data
    model = RandomForestClassifier(n_estimators=2).fit(X, y)
    saved = flavor_for(model).save(model, tmp_path, allow_pickle=False)
    tampered = {**saved.meta, "trusted_types": []}
    with pytest.raises(IntegrityError, match=r"sklearn\.tree\._tree\.Tree"):
        get_flavor("sklearn").load(saved.path, tampered, allow_pickle=True)


def test_a_file_that_is_not_skops_is_an_integrity_error(tmp_path) -> None:
    path = tmp_path / "model"
    path.write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match="not a readable skops file"):
        get_flavor("sklearn").load(path, {"serialization": "skops"}, allow_pickle=False)


def test_an_estimator_skops_cannot_store_needs_allow_pickle(data, tmp_path) -> None:
    X, y, _ = data
    model = Pipeline([("f", FunctionTransformer(lambda x: x)), ("lr", LogisticRegression())])
    model.fit(X, y)
    with pytest.raises(InvalidInput, match=r"skops cannot save.*<lambda>.*allow_pickle=True"):
        flavor_for(model).save(model, tmp_path, allow_pickle=False)
    saved, loaded = save_and_load(model, tmp_path, allow_pickle=True)
    assert saved.serialization == "pickle"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# --------------------------------------------------------------------- onnx


def to_onnx(model: Any, X: pd.DataFrame, options: dict[int, Any] | None = None) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    initial = [("input", FloatTensorType([None, X.shape[1]]))]
    return convert_sklearn(model, initial_types=initial, options=options)


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
def test_an_onnx_classifier_round_trips_with_probabilities(zipmap: bool, data, tmp_path) -> None:
    X, y, _ = data
    model = LogisticRegression().fit(X.to_numpy(np.float32), y)
    proto = to_onnx(model, X, None if zipmap else {id(model): {"zipmap": False}})
    saved, loaded = save_and_load(proto, tmp_path)
    assert saved.serialization == "onnx"
    assert isinstance(loaded, OnnxPredictor)
    assert loaded.input_names == ["input"]
    np.testing.assert_array_equal(loaded.classes_, [0, 1])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X.to_numpy(np.float32)))
    proba = loaded.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, model.predict_proba(X.to_numpy(np.float32)), atol=1e-5)


def test_an_onnx_regressor_predicts_a_1d_array_and_has_no_predict_proba(data, tmp_path) -> None:
    X, _, y = data
    model = LinearRegression().fit(X.to_numpy(np.float32), y)
    _, loaded = save_and_load(to_onnx(model, X), tmp_path)
    assert not hasattr(loaded, "predict_proba")
    assert not hasattr(loaded, "classes_")
    prediction = loaded.predict(X)
    assert prediction.shape == (len(X),)
    np.testing.assert_allclose(prediction, model.predict(X.to_numpy(np.float32)), rtol=1e-4)


def test_a_loaded_onnx_model_leaves_the_cpu_between_runs(data, tmp_path) -> None:
    """Its worker threads sleep after a run rather than spin, taking cores a server needs."""
    X, _, y = data
    model = LinearRegression().fit(X.to_numpy(np.float32), y)
    _, loaded = save_and_load(to_onnx(model, X), tmp_path)
    options = loaded._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_an_onnx_model_with_one_input_per_column_gets_each_column(data) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    X, y, _ = data
    frame = X[["f0", "f1"]].astype(np.float32)
    model = Pipeline(
        [
            ("cols", ColumnTransformer([("s", StandardScaler(), ["f0", "f1"])])),
            ("lr", LogisticRegression()),
        ]
    ).fit(frame, y)
    initial = [(name, FloatTensorType([None, 1])) for name in frame.columns]
    predictor = OnnxPredictor(convert_sklearn(model, initial_types=initial))
    assert predictor.input_names == ["f0", "f1"]
    np.testing.assert_array_equal(predictor.predict(frame), model.predict(frame))
    with pytest.raises(InvalidInput, match=r"missing \['f1'\]"):
        predictor.predict(frame[["f0"]])


def test_onnx_input_of_the_wrong_width_is_invalid_input(data) -> None:
    X, y, _ = data
    model = LogisticRegression().fit(X.to_numpy(np.float32), y)
    predictor = OnnxPredictor(to_onnx(model, X))
    with pytest.raises(InvalidInput, match="refused the input"):
        predictor.predict(X.iloc[:, :3])


def test_an_invalid_onnx_graph_is_refused_at_save(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Add", ["x", "undefined"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(graph)
    assert isinstance(model, onnx.ModelProto)
    with pytest.raises(InvalidInput, match="ONNX model is not valid"):
        flavor_for(model).save(model, tmp_path, allow_pickle=False)


# ------------------------------------------------------------------- python


def test_a_python_model_round_trips_by_class_path(data, tmp_path) -> None:
    X, _, _ = data
    model = Threshold("f0", 0.25)
    saved, loaded = save_and_load(model, tmp_path)
    assert saved.serialization == "skops"
    assert saved.meta["class"] == f"{Threshold.__module__}:Threshold"
    assert type(loaded) is Threshold
    assert loaded.__dict__.keys() == model.__dict__.keys()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_python_model_holding_an_estimator_round_trips(data, tmp_path) -> None:
    X, y, _ = data
    model = Wrapper(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y))
    saved, loaded = save_and_load(model, tmp_path)
    assert saved.meta["trusted_types"] == ["sklearn.tree._tree.Tree"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert "scikit-learn" in get_flavor("python").packages(model)


def test_a_python_model_with_setstate_is_restored_through_it(data, tmp_path) -> None:
    X, _, _ = data
    _, loaded = save_and_load(WithSetState(3.0), tmp_path)
    assert loaded.factor == 3.0
    np.testing.assert_allclose(loaded.predict(X), WithSetState(3.0).predict(X))


def test_python_flavor_is_chosen_before_sklearn() -> None:
    assert _flavors.FLAVORS == ("onnx", "python", "sklearn")
    assert flavor_for(Threshold("a", 1)).name == "python"


def test_a_python_model_that_cannot_be_imported_needs_allow_pickle(data, tmp_path) -> None:
    X, _, _ = data

    class Local(PythonModel):
        def __init__(self) -> None:
            self.scale = 2.0

        def predict(self, data: Any) -> Any:
            return data["f0"].to_numpy() * self.scale

    with pytest.raises(InvalidInput, match=r"Local.*cannot be imported.*allow_pickle=True"):
        flavor_for(Local()).save(Local(), tmp_path, allow_pickle=False)
    saved, loaded = save_and_load(Local(), tmp_path, allow_pickle=True)
    assert saved.serialization == "pickle"
    np.testing.assert_array_equal(loaded.predict(X), Local().predict(X))


def test_a_pickle_does_not_load_or_run_without_allow_pickle(tmp_path) -> None:
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    class Evil(PythonModel):
        def __init__(self) -> None:
            self.payload = Payload()

    folder = tmp_path / "saved"
    folder.mkdir()
    saved = get_flavor("python").save(Evil(), folder, allow_pickle=True)
    assert saved.serialization == "pickle"
    for name in ("python", "sklearn"):
        with pytest.raises(PermissionDenied, match="can run code when loaded") as info:
            get_flavor(name).load(saved.path, saved.meta, allow_pickle=False)
        assert "allow_pickle=True only if you trust" in str(info.value)
    assert not marker.exists()
    get_flavor("python").load(saved.path, saved.meta, allow_pickle=True)
    assert marker.exists()  # the payload was real: only allow_pickle=True runs it


def test_loading_a_python_model_whose_class_is_gone_names_it(tmp_path) -> None:
    saved = get_flavor("python").save(Threshold("a", 1.0), tmp_path, allow_pickle=False)
    meta = {**saved.meta, "class": f"{Threshold.__module__}:Vanished"}
    with pytest.raises(InvalidInput, match=r"Vanished.*cannot be imported now"):
        get_flavor("python").load(saved.path, meta, allow_pickle=False)
    meta = {**saved.meta, "class": "collections:OrderedDict"}
    with pytest.raises(IntegrityError, match="not a PythonModel subclass"):
        get_flavor("python").load(saved.path, meta, allow_pickle=False)


def test_python_model_predict_must_be_overridden() -> None:
    with pytest.raises(NotImplementedError, match="must define predict"):
        PythonModel().predict(None)


# ------------------------------------------------------------ registry


@pytest.mark.parametrize(
    ("obj", "name"),
    [(object(), "object"), ({"a": 1}, "dict"), (lambda x: x, "function"), (3, "int")],
    ids=["object", "dict", "lambda", "int"],
)
def test_an_object_of_no_known_flavor_is_refused_naming_its_type(obj: object, name: str) -> None:
    with pytest.raises(InvalidInput, match=rf"No known flavor saves a {name} object") as info:
        flavor_for(obj)
    assert "PythonModel" in str(info.value)


def test_a_class_is_not_a_model() -> None:
    with pytest.raises(InvalidInput, match=r"No known flavor saves a (abc\.ABCMeta|type) object"):
        flavor_for(LogisticRegression)


def test_an_unknown_flavor_name_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"Unknown model flavor 'keras'; known: onnx, python"):
        get_flavor("keras")


def test_importing_the_flavors_loads_no_model_library() -> None:
    code = (
        "import sys, shipyard.models._flavors, shipyard.models._signature, "
        "shipyard.models._environment\n"
        "heavy = {'sklearn', 'numpy', 'pandas', 'onnx', 'onnxruntime', 'skops', 'pyarrow', "
        "'cloudpickle', 'xgboost', 'lightgbm'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
