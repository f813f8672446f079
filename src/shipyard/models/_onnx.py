"""Export a registered scikit-learn model to ONNX, checked, and to a self-contained folder.

:func:`export_onnx` converts with skl2onnx, runs the result with onnxruntime
on the version's input example, and stores it only when it predicts what the
original predicts. :func:`export_folder` writes a folder that someone without
Shipyard can run: the model, its signature and example, a ``predict.py``
needing only onnxruntime and numpy, and a README.

Choices, and why
----------------
- **Inputs.** A model whose columns are all numbers (or booleans) gets one
  ``float32`` tensor ``input`` of shape ``[None, n_columns]``, columns in
  signature order: the layout every ONNX runtime and tool expects. A model with
  text columns gets one input per column, named as the column, ``[None, 1]``,
  ``float32`` or ``string``: skl2onnx's ColumnTransformer finds its columns by
  those names. ``float32`` rather than ``double`` because tree ensembles (the
  most exported models) run only in ``float32`` in onnxruntime, and
  scikit-learn's own trees compare in ``float32`` too, so their labels match
  exactly. Integers above 2**24 lose precision in ``float32``.
- **Opset.** ONNX opset :data:`TARGET_OPSET` and ``ai.onnx.ml`` 3: every
  converter used here needs nothing newer, and any onnxruntime from 1.13 (2022)
  runs it, which the check below proves for the installed one.
- **Classifiers** output ``label`` and a plain ``probabilities`` tensor
  (skl2onnx's ``zipmap=False``) in ``classes_`` order.
- **The check.** Class labels must be equal; every other output (probabilities,
  regression values) must satisfy ``|onnx - native| <= tolerance * max(1,
  |native|)``: an absolute bound for values up to 1, a relative one above,
  because ``float32`` keeps about seven significant digits and a price of
  250,000 cannot be within 1e-5 of anything in ``float32``. The example holds
  only a few rows (``EXAMPLE_ROWS``), so the check catches a wrong conversion
  (a dropped step, columns swapped), not a rare row on a decision boundary.
- **Failures** are :class:`~shipyard.errors.InvalidInput`: the model cannot be
  exported as it is, which is a property of what was given, not a damaged
  store. A disagreement is the subclass :class:`OnnxMismatch`, with fields.
  Nothing is stored then.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import _files
from shipyard.errors import AlreadyExists, InvalidInput
from shipyard.models import _api, _flavors
from shipyard.models._signature import Signature
from shipyard.store.entities import ModelFile, ModelVersion

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import pandas as pd

    from shipyard.tracking import Client

__all__ = ["OnnxMismatch", "export_folder", "export_onnx"]

TARGET_OPSET = 17
ML_OPSET = 3
#: Key of the ONNX metadata entry that tells ``predict.py`` how to feed the model.
META_KEY = "shipyard"
FOLDER_FORMATS = ("onnx", "native")
_NATIVE_FILE_NAMES = {"skops": "model.skops", "pickle": "model.pkl", "onnx": "model.onnx"}
_NUMERIC_TYPES = ("int", "uint", "float", "double", "halffloat", "bool")


class OnnxMismatch(InvalidInput):
    """The ONNX model predicts differently from the original on the input example."""

    code = "onnx_mismatch"

    def __init__(
        self, message: str, *, output: str, row: int, difference: float, hint: str
    ) -> None:
        self.output = output
        self.row = row
        self.difference = difference
        super().__init__(message, hint=hint)


def export_onnx(
    uri: str,
    *,
    tolerance: float = 1e-5,
    allow_pickle: bool = False,
    client: Client | None = None,
) -> ModelVersion:
    """Convert the scikit-learn model at ``uri`` to ONNX, check it, store it; return the version.

    The ONNX model is run on the version's input example and must give the
    same labels, and other outputs within ``tolerance`` (see the module
    docstring), or :class:`OnnxMismatch` is raised and nothing is stored. A
    second export replaces the first. ``allow_pickle`` is needed, as for
    :func:`~shipyard.models.load_model`, when the version is stored as a pickle.
    Afterwards ``load_model(uri, format="onnx")`` runs it with onnxruntime.
    """
    import onnx

    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not (0 <= tolerance < float("inf"))
    ):
        raise InvalidInput(f"tolerance must be a finite number >= 0; got {tolerance!r}.")
    client, _ = _api._client_and_run(client)
    version = _api.resolve(uri, client=client)  # an alias is resolved once, here
    _require_exportable(version)
    signature = _require_example(version)
    example = signature.validate(version.input_example)
    inputs = _input_layout(signature, version)
    loaded = _api.load_model(version.uri, allow_pickle=allow_pickle, client=client)
    proto = _convert(loaded.model, inputs, version)
    meta = _runtime_meta(loaded.model, inputs, proto)
    onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta)})
    data = proto.SerializeToString()
    difference = _check(data, loaded, example, meta, tolerance, version)
    meta |= {
        "opset": {"ai.onnx": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
        "converter": f"skl2onnx {importlib.metadata.version('skl2onnx')}",
        "checked": {"rows": len(example), "tolerance": tolerance, "max_difference": difference},
    }
    # Against a server: converted and checked here, uploaded, and checked again there.
    return client._add_model_file(version, data, format="onnx", serialization="onnx", meta=meta)


#: The keys of an ONNX file's meta: what a runtime needs, then how it was made and checked.
_RUNTIME_KEYS = ("inputs", "outputs", "predict_output", "proba_output", "classes")
_META_KEYS = (*_RUNTIME_KEYS, "opset", "converter", "checked")


def add_stored_onnx(
    client: Client, name: str, version: int, *, digest: str, size: int, meta: Mapping[str, Any]
) -> ModelVersion:
    """Record an uploaded ONNX file as the ``onnx`` format of ``name``/``version`` (a
    remote :func:`export_onnx`); return the version.

    The client converted and checked it against the original model. The server
    does not run that check again: it would have to load the native model, maybe
    a pickle, which a server never does. It checks what it can without that: the
    version may be exported, the file is stored, ``size`` long and hashes to
    ``digest``, it parses as ONNX, and ``meta`` is whole and describes the same
    inputs and outputs as the ``shipyard`` entry inside the file, which is what
    ``load_model(uri, format="onnx")`` will feed it by.
    """
    import onnx

    found = client.get_model_version(name, version)
    _require_exportable(found)
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise InvalidInput(
            f"The meta of the ONNX file for {found.uri} lacks {', '.join(missing)}.",
            hint="Send the meta export_onnx writes; shipyard.export_onnx(uri) does.",
        )
    data = client.blobs.get(digest)  # NotFound if absent, IntegrityError if it does not hash
    if len(data) != size:
        raise InvalidInput(f"The stored file {digest} has {len(data):,} bytes, not {size:,}.")
    try:
        proto = onnx.load_model_from_string(data)
        inside = json.loads({p.key: p.value for p in proto.metadata_props}[META_KEY])
    except Exception as exc:  # protobuf's DecodeError, a missing entry, bad JSON
        raise InvalidInput(
            f"The file {digest} is not an ONNX model made by export_onnx for {found.uri} "
            f"({type(exc).__name__}: {exc}).",
            hint="Export with shipyard.export_onnx(uri), which uploads the file it converted.",
        ) from exc
    differing = [key for key in _RUNTIME_KEYS if inside.get(key) != meta[key]]
    if differing:
        raise InvalidInput(
            f"The meta sent for the ONNX file of {found.uri} disagrees with the file's own "
            f"'{META_KEY}' entry in {', '.join(differing)}.",
            hint="Send the meta export_onnx wrote along with this file.",
        )
    return client._record_model_file(
        found.name, found.version, ModelFile("onnx", "onnx", digest, size, dict(meta))
    )


def _require_exportable(version: ModelVersion) -> None:
    if version.flavor == "sklearn":
        return
    why = {
        "onnx": "It is an ONNX model already: load_model(uri) runs it with onnxruntime.",
        "python": "A PythonModel runs arbitrary Python, which ONNX cannot express.",
    }
    raise InvalidInput(
        f"Only scikit-learn models (flavor 'sklearn', which includes XGBoost and LightGBM "
        f"through their scikit-learn API) can be exported to ONNX; {version.uri} has flavor "
        f"{version.flavor!r}.",
        hint=why.get(version.flavor, "Log a scikit-learn estimator or Pipeline to export it."),
    )


def _require_example(version: ModelVersion) -> Signature:
    """The version's signature; it has one, and an input example, or it cannot be exported."""
    if not version.input_example or version.signature is None:
        raise InvalidInput(
            f"{version.uri} has no input example; the export needs one to name and type the "
            "ONNX inputs and to check the ONNX model's predictions against the original.",
            hint="Log the model again with input_example=... (a few training rows, e.g. "
            "X.head()), then export that version.",
        )
    return Signature.from_dict(version.signature)


def _input_layout(signature: Signature, version: ModelVersion) -> list[dict[str, Any]]:
    """The ONNX inputs: ``[{"name", "columns", "type": "float32" | "string"}]``."""
    kinds: dict[str, str] = {}
    for spec in signature.inputs:
        if spec.type.startswith(_NUMERIC_TYPES):
            kinds[spec.name] = "float32"
        elif spec.type == "string":
            kinds[spec.name] = "string"
        else:
            raise InvalidInput(
                f"Column {spec.name!r} of {version.uri} is {spec.type}; the ONNX export takes "
                "only number, boolean and string columns.",
                hint="Turn it into numbers (e.g. a timestamp into days since a date) in the "
                "data before fitting, and log the model again.",
            )
    if all(kind == "float32" for kind in kinds.values()):
        return [{"name": "input", "columns": list(kinds), "type": "float32"}]
    return [{"name": name, "columns": [name], "type": kind} for name, kind in kinds.items()]


def _feed(frame: pd.DataFrame, inputs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    import numpy as np

    return {
        spec["name"]: (
            frame[spec["columns"]].to_numpy(dtype=np.float32, na_value=np.nan)
            if spec["type"] == "float32"
            else frame[spec["columns"]].to_numpy(dtype=object)
        )
        for spec in inputs
    }


def _convert(
    model: Any, inputs: Sequence[Mapping[str, Any]], version: ModelVersion
) -> onnx.ModelProto:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.base import is_classifier

    _register_booster_converters(model)
    model = _without_xgboost_feature_names(model)
    initial_types = [
        (
            spec["name"],
            (FloatTensorType if spec["type"] == "float32" else StringTensorType)(
                [None, len(spec["columns"])]
            ),
        )
        for spec in inputs
    ]
    try:
        return to_onnx(
            model,
            initial_types=initial_types,
            options={"zipmap": False}
            if is_classifier(model) and hasattr(model, "predict_proba")
            else None,
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
        )
    except Exception as exc:  # converters raise RuntimeError, TypeError, KeyError...: any type
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidInput(
            f"skl2onnx cannot convert {version.uri} ({_flavors._type_name(model)}): {message}",
            hint="Replace the step it names with one skl2onnx supports (see "
            "onnx.ai/sklearn-onnx/supported.html), or serve the native format.",
        ) from exc


#: module -> [(class name, alias skl2onnx registers it under, is a classifier)]
_BOOSTERS = {
    "lightgbm": [
        ("LGBMClassifier", "LightGbmLGBMClassifier", True),
        ("LGBMRegressor", "LightGbmLGBMRegressor", False),
    ],
    "xgboost": [
        ("XGBClassifier", "XGBoostXGBClassifier", True),
        ("XGBRegressor", "XGBoostXGBRegressor", False),
    ],
}


def _without_xgboost_feature_names(model: Any) -> Any:
    """A copy whose XGBoost boosters forget their column names, or ``model`` itself.

    onnxmltools' XGBoost converter reads features only by the names f0, f1, ...
    The graph takes one tensor with the columns in signature order, so the
    names carry nothing the converter needs.
    """
    if not any(type(p).__module__.startswith("xgboost.") for p in _flavors._estimators_in(model)):
        return model
    import copy

    model = copy.deepcopy(model)
    for part in _flavors._estimators_in(model):
        if type(part).__module__.startswith("xgboost."):
            part.get_booster().feature_names = None
    return model


def _register_booster_converters(model: Any) -> None:
    """Teach skl2onnx the XGBoost/LightGBM estimators in ``model``, with onnxmltools' converters."""
    found = sorted(
        {
            type(part).__module__.partition(".")[0]
            for part in _flavors._estimators_in(model)
            if type(part).__module__.partition(".")[0] in _BOOSTERS
        }
    )
    for module in found:
        try:
            _register_booster(module)
        except ImportError as exc:
            raise InvalidInput(
                f"Converting a {module} model to ONNX needs onnxmltools, which cannot be "
                f"imported ({exc}).",
                hint="pip install onnxmltools, then export again.",
            ) from exc


@functools.cache
def _register_booster(module: str) -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    if module == "lightgbm":
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
            convert_lightgbm as converter,
        )
    else:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import (
            convert_xgboost as converter,
        )
    library = importlib.import_module(module)
    for class_name, alias, classifier in _BOOSTERS[module]:
        update_registered_converter(
            getattr(library, class_name),
            alias,
            calculate_linear_classifier_output_shapes
            if classifier
            else calculate_linear_regressor_output_shapes,
            converter,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]}
            if classifier
            else None,
        )


def _runtime_meta(
    model: Any, inputs: Sequence[Mapping[str, Any]], proto: onnx.ModelProto
) -> dict[str, Any]:
    """What a runtime needs to feed the model and read its outputs (see ``predict.py``)."""
    import numpy as np
    from sklearn.base import is_classifier

    outputs = [item.name for item in proto.graph.output]
    classifier = is_classifier(model)
    return {
        "inputs": [dict(spec) for spec in inputs],
        "outputs": outputs,
        "predict_output": outputs[0],
        "proba_output": outputs[1]
        if classifier and hasattr(model, "predict_proba") and len(outputs) > 1
        else None,
        "classes": np.asarray(model.classes_).tolist() if classifier else None,
    }


def _check(
    data: bytes,
    loaded: _api.LoadedModel,
    example: pd.DataFrame,
    meta: Mapping[str, Any],
    tolerance: float,
    version: ModelVersion,
) -> float:
    """Run the ONNX bytes on ``example`` against the original; return the largest difference."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        results = dict(
            zip(meta["outputs"], session.run(None, _feed(example, meta["inputs"])), strict=True)
        )
    except Exception as exc:  # onnxruntime's errors share no base class but Exception
        raise InvalidInput(
            f"onnxruntime {ort.__version__} cannot run the ONNX conversion of {version.uri}: "
            f"{type(exc).__name__}: {exc}",
            hint="Serve the native format, or report the model type to skl2onnx.",
        ) from exc
    labels = meta["classes"] is not None
    worst = _compare(
        meta["predict_output"],
        loaded.predict(example),
        results[meta["predict_output"]],
        exact=labels,
        tolerance=tolerance,
        version=version,
    )
    if meta["proba_output"] is not None:
        worst = max(
            worst,
            _compare(
                meta["proba_output"],
                loaded.predict_proba(example),
                results[meta["proba_output"]],
                exact=False,
                tolerance=tolerance,
                version=version,
            ),
        )
    return worst


def _compare(
    output: str,
    native: Any,
    converted: Any,
    *,
    exact: bool,
    tolerance: float,
    version: ModelVersion,
) -> float:
    """The largest scaled difference in one output; :class:`OnnxMismatch` beyond ``tolerance``."""
    import numpy as np

    expected = np.asarray(native)
    got = np.asarray(converted)
    if got.size != expected.size:
        raise OnnxMismatch(
            f"The ONNX conversion of {version.uri} returns {got.shape} values in {output!r}; "
            f"the original returns {expected.shape}. Nothing was stored.",
            output=output,
            row=0,
            difference=float("inf"),
            hint="Serve the native format, or report the model type to skl2onnx.",
        )
    rows = len(expected)
    expected = expected.reshape(rows, -1)
    got = got.reshape(rows, -1)
    if exact:
        wrong = np.flatnonzero((expected != got).any(axis=1))
        if wrong.size == 0:
            return 0.0
        row = int(wrong[0])
        raise OnnxMismatch(
            f"The ONNX conversion of {version.uri} predicts another label in {output!r} for "
            f"{wrong.size} of {rows} example rows; first row {row}: expected "
            f"{expected[row].tolist()}, got {got[row].tolist()}. Nothing was stored.",
            output=output,
            row=row,
            difference=float("inf"),
            hint="ONNX computes in float32, and a row this close to a decision boundary can "
            "flip. Serve the native format, or log the model with other example rows.",
        )
    got = got.astype(np.float64)
    scaled = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    # NaN on both sides agrees; NaN on one side only is as far off as it gets.
    scaled[np.isnan(got) & np.isnan(expected)] = 0.0
    scaled = np.nan_to_num(scaled, nan=np.inf)
    worst = float(scaled.max()) if scaled.size else 0.0
    if worst <= tolerance:
        return worst
    row, column = divmod(int(np.argmax(scaled)), scaled.shape[1])
    where = f"row {row}" + (f", column {column}" if scaled.shape[1] > 1 else "")
    if math.isfinite(worst):
        enough = 10 ** math.ceil(math.log10(worst))
        suggestion = (
            f"If that precision is enough, export again with tolerance={enough:g}; otherwise "
            "serve the native format."
        )
    else:
        suggestion = "Serve the native format."
    raise OnnxMismatch(
        f"The ONNX conversion of {version.uri} differs from the original in {output!r} by "
        f"{worst:.3g} (|onnx - native| / max(1, |native|)) at {where} of the input example: "
        f"expected {expected[row, column].item()!r}, got {got[row, column].item()!r}; the "
        f"tolerance is "
        f"{tolerance:g}. Nothing was stored.",
        output=output,
        row=row,
        difference=worst,
        hint=suggestion,
    )


# ------------------------------------------------------------------ folders


def export_folder(
    uri: str,
    out: str | os.PathLike[str],
    *,
    format: str = "onnx",
    allow_pickle: bool = False,
    client: Client | None = None,
) -> Path:
    """Write a folder holding the model at ``uri`` and what is needed to run it; return its path.

    ``format="onnx"``: ``model.onnx``, ``signature.json``, ``input_example.json``,
    ``requirements.txt``, ``predict.py`` (onnxruntime, numpy and the standard
    library only) and ``README.md``. The version is exported with
    :func:`export_onnx` first when it has no ONNX file yet (``allow_pickle``
    is passed on), so one call always gives a runnable folder.
    ``format="native"``: the file as logged, its signature and example, and a
    README (loading it needs ``shipyard.load_model``).

    The folder is built next to ``out`` and renamed into place: ``out`` appears
    complete or not at all. ``out`` must not exist, or be an empty folder.
    """
    if format not in FOLDER_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FOLDER_FORMATS)}; got {format!r}.")
    target = Path(out)
    _require_free(target)
    client, _ = _api._client_and_run(client)
    version = _api.resolve(uri, client=client)
    if format == "onnx" and "onnx" not in version.files:
        version = export_onnx(version.uri, allow_pickle=allow_pickle, client=client)
    _files.make_dirs(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        _write_folder(staging, version, format, client)
        _files.fsync_dir(staging)
        _require_free(target)  # checked again: the export may have taken a while
        os.replace(staging, target)  # fails if a file appeared in an empty ``out`` meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _files.fsync_dir(target.parent)
    return target


def _require_free(target: Path) -> None:
    if target.is_dir() and not any(target.iterdir()):
        return
    if target.exists() or target.is_symlink():
        raise AlreadyExists(
            "export folder",
            str(target),
            hint="Choose a new folder, or remove this one (an empty folder is reused).",
        )


def _write_folder(folder: Path, version: ModelVersion, file_format: str, client: Client) -> None:
    file = version.files[file_format]
    name = (
        "model.onnx"
        if file_format == "onnx"
        else _NATIVE_FILE_NAMES.get(file.serialization, "model.bin")
    )
    client._download_model_file(version, file, folder / name)  # verified against the digest

    def write(relative: str, text: str) -> None:
        _files.atomic_write(folder / relative, text.encode("utf-8"))

    if version.signature is not None:
        write("signature.json", json.dumps(version.signature, indent=2) + "\n")
    if version.input_example is not None:
        write("input_example.json", json.dumps(version.input_example, indent=2) + "\n")
    if file_format == "onnx":
        write(
            "requirements.txt",
            "".join(f"{dist}>={_major_minor(dist)}\n" for dist in ("onnxruntime", "numpy")),
        )
        write("predict.py", PREDICT_SCRIPT)
    write("README.md", _readme(version, file, name))


def _major_minor(distribution: str) -> str:
    return ".".join(importlib.metadata.version(distribution).split(".")[:2])


def _readme(version: ModelVersion, file: ModelFile, name: str) -> str:
    lines = [
        f"# {version.uri}",
        "",
        f"Exported from the Shipyard model registry: model `{version.name}`, version "
        f"{version.version}, flavor `{version.flavor}`.",
        "",
        f"- `{name}`: {file.serialization}, {file.size} bytes, `{file.digest}`",
    ]
    if version.signature is not None:
        lines.append(
            "- `signature.json`: the input columns (name, Arrow type, nullable) and outputs"
        )
    if version.input_example is not None:
        lines.append("- `input_example.json`: a few input rows, as records")
    if file.format == "onnx":
        checked = file.meta["checked"]
        lines += [
            "- `requirements.txt`: what `predict.py` needs",
            "- `predict.py`: predictions from the command line",
            "",
            "## Run it",
            "",
            "    python -m pip install -r requirements.txt",
            "    python predict.py input_example.json     # or a CSV file with a header row",
            "",
            '`predict.py` prints one JSON line per input row: `{"prediction": ...}`, plus',
            '`"probabilities"` (class -> probability) for a classifier. Input: a JSON list of',
            "objects (or one object) or a CSV file, with the columns of `signature.json`.",
            "",
            "## Inputs",
            "",
            "The graph's inputs, in order, are described by the `shipyard` entry of the ONNX",
            "metadata (numbers are fed as float32):",
            "",
            *(
                f"- `{spec['name']}` ({spec['type']}): columns {', '.join(spec['columns'])}"
                for spec in file.meta["inputs"]
            ),
            "",
            f"The conversion was checked against the original model on the {checked['rows']} "
            "example rows: equal labels, and every other output within "
            f"{checked['tolerance']:g} x max(1, |value|) (largest difference "
            f"{checked['max_difference']:.3g}).",
        ]
    else:
        lines += [
            "",
            "## Load it",
            "",
            f"This is the model as logged ({file.serialization}); it is loaded with Shipyard,",
            "which checks the digest and the signature:",
            "",
            "    import shipyard as sy",
            f'    model = sy.load_model("{version.uri}")',
            "",
            'For a folder that runs without Shipyard, export it with format="onnx".',
        ]
    return "\n".join(lines) + "\n"


#: The folder's ``predict.py``: onnxruntime, numpy and the standard library, nothing else.
PREDICT_SCRIPT = '''\
"""Predict with the ONNX model next to this file.

    python predict.py input.json     # a list of objects, or one object
    python predict.py input.csv      # a header row, then one row per example

Prints one JSON line per row: {"prediction": ...}, plus "probabilities"
(class -> probability) for a classifier. Needs onnxruntime and numpy only.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime

MODEL = Path(__file__).resolve().parent / "model.onnx"


def read_rows(path):
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    data = json.loads(path.read_text(encoding="utf-8"))
    return [data] if isinstance(data, dict) else data


def number(value):
    """A float from JSON or CSV text; booleans count as 1 and 0, blanks as missing."""
    if value is None or value == "":
        return np.nan
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return float(value.lower() == "true")
    return float(value)


def column(rows, name, kind):
    """One column as an (n, 1) array of the type the model's input takes."""
    if kind == "string":
        return np.array([[row[name]] for row in rows], dtype=object)
    return np.array([[number(row[name])] for row in rows], dtype=np.float32)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["shipyard"])
    rows = read_rows(Path(argv[1]))
    wanted = [name for spec in meta["inputs"] for name in spec["columns"]]
    missing = sorted({name for row in rows for name in wanted if name not in row})
    if missing:
        print(f"The input lacks the column(s) {missing}; the model takes {wanted}.", file=sys.stderr)
        return 2
    feed = {
        spec["name"]: np.hstack([column(rows, name, spec["type"]) for name in spec["columns"]])
        for spec in meta["inputs"]
    }
    results = dict(zip(meta["outputs"], session.run(None, feed)))
    predictions = np.asarray(results[meta["predict_output"]]).reshape(len(rows), -1)
    probabilities = results.get(meta["proba_output"]) if meta["proba_output"] else None
    for number, prediction in enumerate(predictions.tolist()):
        line = {"prediction": prediction[0] if len(prediction) == 1 else prediction}
        if probabilities is not None:
            line["probabilities"] = dict(
                zip(map(str, meta["classes"]), np.asarray(probabilities[number]).tolist())
            )
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''
