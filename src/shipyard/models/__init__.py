"""The model registry: log, version, alias, load safely, export to ONNX, describe.

    import shipyard as sy

    with sy.start_run(experiment="credit"):
        version = sy.log_model(model, name="credit", input_example=X.head())
    sy.set_alias("credit", "champion", version.version)
    model = sy.load_model("models:/credit@champion")   # digest verified first
    model.predict(X)

Flavors (scikit-learn, XGBoost and LightGBM through their scikit-learn API,
ONNX, :class:`PythonModel`) register by name in ``_flavors`` and import their
libraries only when used. Names here load on first use, so importing this
package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        ["LoadedModel", "delete_alias", "load_model", "log_model", "resolve", "set_alias"],
        "shipyard.models._api",
    ),
    "EnvironmentMismatchWarning": "shipyard.models._environment",
    "model_card": "shipyard.models._card",
    **dict.fromkeys(["OnnxMismatch", "export_folder", "export_onnx"], "shipyard.models._onnx"),
    "PythonModel": "shipyard.models._python_model",
    **dict.fromkeys(["ColumnSpec", "Signature", "infer_signature"], "shipyard.models._signature"),
}

__all__ = [
    "ColumnSpec",
    "EnvironmentMismatchWarning",
    "LoadedModel",
    "OnnxMismatch",
    "PythonModel",
    "Signature",
    "delete_alias",
    "export_folder",
    "export_onnx",
    "infer_signature",
    "load_model",
    "log_model",
    "model_card",
    "resolve",
    "set_alias",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from shipyard.models._api import (
        LoadedModel,
        delete_alias,
        load_model,
        log_model,
        resolve,
        set_alias,
    )
    from shipyard.models._card import model_card
    from shipyard.models._environment import EnvironmentMismatchWarning
    from shipyard.models._onnx import OnnxMismatch, export_folder, export_onnx
    from shipyard.models._python_model import PythonModel
    from shipyard.models._signature import ColumnSpec, Signature, infer_signature
