"""Model serving: a prediction app per deployment, its durable prediction log, and labels.

    shipyard serve models:/credit@champion            # POST /predict, /labels; /metrics
    shipyard serve --deployment credit                # a stored deployment: canary, shadow

    import shipyard.serving as serving
    table = serving.predictions("credit")             # pyarrow.Table, labels joined
    shadowed = serving.predictions("credit", shadow=True)  # and the shadow's predictions
    serving.log_labels("credit", [{"prediction_id": pid, "label": 1}])

``create_serving_app`` builds the FastAPI app ``shipyard serve`` runs (it
imports FastAPI); the main server predicts through stored deployments with the
same code. ``predictions`` and ``log_labels`` read and append the log without
it. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "create_serving_app": "shipyard.serving._app",
    **dict.fromkeys(["PredictionLog", "log_labels", "predictions"], "shipyard.serving._log"),
    **dict.fromkeys(["Router", "Served"], "shipyard.serving._router"),
}

__all__ = ["PredictionLog", "Router", "Served", "create_serving_app", "log_labels", "predictions"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from shipyard.serving._app import create_serving_app
    from shipyard.serving._log import PredictionLog, log_labels, predictions
    from shipyard.serving._router import Router, Served
