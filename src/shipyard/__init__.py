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

_EXPORTS: dict[str, str] = {
    "Settings": "shipyard.config",
    **dict.fromkeys(["load_dataset", "register_dataset", "lineage"], "shipyard.data"),
    **dict.fromkeys(
        [
            "Artifact",
            "AuditEvent",
            "DatasetVersion",
            "Experiment",
            "Metric",
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
    "Run",
    "RunPage",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "end_run",
    "flush",
    "lineage",
    "load_dataset",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_dataset",
    "set_tag",
    "set_tags",
    "start_run",
]


def __getattr__(name: str) -> Any:
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
    from shipyard.store.entities import (
        Artifact,
        AuditEvent,
        DatasetVersion,
        Experiment,
        Metric,
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
