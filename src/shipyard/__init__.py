"""Shipyard: the whole MLOps loop in one install.

    import shipyard as sy

    with sy.start_run(experiment="credit"):
        sy.log_params({"model": "lr", "C": 0.1})
        sy.log_metric("auc", 0.91)

Names are imported on first use, so ``import shipyard`` (and the CLI) starts
fast and loads no database driver until one is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard._version import __version__

_SUBPACKAGES = frozenset({"data", "errors", "models", "monitoring", "serving"})
_EXPORTS: dict[str, str] = {
    "Settings": "shipyard.config",
    **dict.fromkeys(["load_dataset", "register_dataset", "lineage"], "shipyard.data"),
    **dict.fromkeys(
        ["create_monitor", "drift_report", "monitor_results", "prepare_reference", "run_monitor"],
        "shipyard.monitoring",
    ),
    **dict.fromkeys(["log_labels", "predictions"], "shipyard.serving"),
    **dict.fromkeys(
        ["PythonModel", "delete_alias", "export_onnx", "load_model", "log_model", "set_alias"],
        "shipyard.models",
    ),
    **dict.fromkeys(
        [
            "Artifact",
            "AuditEvent",
            "DatasetVersion",
            "Experiment",
            "Metric",
            "ModelVersion",
            "Run",
            "RunPage",
            "RunStatus",
        ],
        "shipyard.store.entities",
    ),
    **dict.fromkeys(
        [
            "ActiveRun",
            "Client",
            "active_run",
            "end_run",
            "flush",
            "log_artifact",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "set_tag",
            "set_tags",
            "start_run",
        ],
        "shipyard.tracking",
    ),
}

__all__ = [
    "ActiveRun",
    "Artifact",
    "AuditEvent",
    "Client",
    "DatasetVersion",
    "Experiment",
    "Metric",
    "ModelVersion",
    "PythonModel",
    "Run",
    "RunPage",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "create_monitor",
    "delete_alias",
    "drift_report",
    "end_run",
    "export_onnx",
    "flush",
    "lineage",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_labels",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "monitor_results",
    "predictions",
    "prepare_reference",
    "register_dataset",
    "run_monitor",
    "set_alias",
    "set_tag",
    "set_tags",
    "start_run",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:  # ``sy.models.model_card`` works without importing it first
        return importlib.import_module(f"shipyard.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.data import lineage, load_dataset, register_dataset
    from shipyard.models import (
        PythonModel,
        delete_alias,
        export_onnx,
        load_model,
        log_model,
        set_alias,
    )
    from shipyard.monitoring import (
        create_monitor,
        drift_report,
        monitor_results,
        prepare_reference,
        run_monitor,
    )
    from shipyard.serving import log_labels, predictions
    from shipyard.store.entities import (
        Artifact,
        AuditEvent,
        DatasetVersion,
        Experiment,
        Metric,
        ModelVersion,
        Run,
        RunPage,
        RunStatus,
    )
    from shipyard.tracking import (
        ActiveRun,
        Client,
        active_run,
        end_run,
        flush,
        log_artifact,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_tag,
        set_tags,
        start_run,
    )
